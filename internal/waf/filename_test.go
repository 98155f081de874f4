package waf

import (
	"testing"
	"testing/fstest"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

func TestFileNameOp(t *testing.T) {
	root := fstest.MapFS{"names.data": {Data: []byte("# comment\nconfig.json\n.htaccess\n/package.json\netc/passwd\n.sql.z\n")}}
	op, err := newFileNameOp(plugintypes.OperatorOptions{Arguments: "names.data", Root: root})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]bool{
		"/app/config.json":    true,
		"config.json":         true,
		"/x/old.config.json":  true,
		"/?f=CONFIG.JSON":     true,
		"/tsconfig.json":      false,
		"/getAppConfig.json":  false,
		"/old.htaccess":       false,
		"/get/backup.sql.zip": true,
		"/.htaccess":          true,
		"/x/../.htaccess":     true,
		"..\\.htaccess":       true,
		"/x/..htaccess":       true,
		"?f=.htaccess":        true,
		"scope=https://id.example.com/auth/unified.htaccess": false,
		"/a/node_modules/x.js":                               false,
		"/lib/package.json":                                  true,
		"../../etc/passwd":                                   true,
		"/list.etc/passwd":                                   true,
		"/vetc/passwd":                                       false,
		"/tsconfig.json/config.json":                         true,
	}
	for in, want := range cases {
		if got := op.Evaluate(nil, in); got != want {
			t.Errorf("Evaluate(%q) = %v, want %v", in, got, want)
		}
	}
	if _, err := newFileNameOp(plugintypes.OperatorOptions{Arguments: "missing.data", Root: root}); err == nil {
		t.Error("a missing list loaded without an error")
	}
}

// TestOSFileOp: CRS 930120's matching, names anywhere in the value, but
// for a dot file's name at the tail of a longer name.
func TestOSFileOp(t *testing.T) {
	root := fstest.MapFS{"names.data": {Data: []byte(".profile\n.htaccess\nboot.ini\netc/passwd\n.sql.z\n")}}
	op, err := newOSFileOp(plugintypes.OperatorOptions{Arguments: "names.data", Root: root})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]bool{
		"/home/u/.profile": true,
		"../.profile":      true,
		".profile":         true,
		"..profile":        true,
		"x=.PROFILE":       true,
		"/auth/account/unified.profile https:/auth/risk.idstate": false,
		"openid email unified.profile":                           false,
		"/old.htaccess":                                          false,
		"/srv/www/.htaccess.bak":                                 true,
		"?.\xc0%9v?.\xc0%9vboot.ini":                             true, // "sboot.ini": CRS's matching anywhere stays
		"/tmp/myboot.ini":                                        true,
		"../../etc/passwd":                                       true,
		"/vetc/passwd":                                           true,
		"the profile page":                                       false,
		"/get?code=backup.sql.zip":                               true,
	}
	for in, want := range cases {
		if got := op.Evaluate(nil, in); got != want {
			t.Errorf("Evaluate(%q) = %v, want %v", in, got, want)
		}
	}
}
