package waf

import (
	"strings"
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

// TestArgFileOps: in a value that is not the requested path, an
// application's own file named bare is no attack; the same name reached
// through a traversal, a stream wrapper, a drive or a NUL is, and OS
// files, dot files and names with a directory count as before.
func TestArgFileOps(t *testing.T) {
	root := fstest.MapFS{"names.data": {Data: []byte("config.asp\nconfig.php\npackage.json\nweb.config\nwp-config.\nboot.ini\nmy.cnf\n.htpasswd\n.sql.gz\netc/passwd\nsites/default/settings.php\nprogram files\n")}}
	cases := map[string]bool{
		"/config.asp":                                            false,
		"config.php":                                             false,
		"see package.json for the scripts":                       false,
		"https://cdn.example.com/package.json":                   false,
		"C:/inetpub/wwwroot/web.config":                          true,
		"c:\\inetpub\\wwwroot\\web.config":                       true,
		"../../config.php":                                       true,
		"..\\web.config":                                         true,
		"file:///var/www/config.php":                             true,
		"php://filter/convert.base64-encode/resource=config.php": true,
		"config.php\x00.jpg":                                     true,
		"/srv/www/wp-config.php":                                 false,
		"../wp-config.php":                                       true,
		"boot.ini":                                               true,
		"/etc/my.cnf":                                            true,
		".htpasswd":                                              true,
		"backup.sql.gz":                                          true,
		"/etc/passwd":                                            true,
		"/sites/default/settings.php":                            true,
		"c:/program files/x":                                     true,
		"config.asp and ../../etc/hosts":                         true,
		"I would like the config.php please.":                    false,
	}
	for _, mk := range []func(plugintypes.OperatorOptions) (plugintypes.Operator, error){newArgFileNameOp, newArgOSFileOp} {
		op, err := mk(plugintypes.OperatorOptions{Arguments: "names.data", Root: root})
		if err != nil {
			t.Fatal(err)
		}
		for in, want := range cases {
			if got := op.Evaluate(nil, in); got != want {
				t.Errorf("Evaluate(%q) = %v, want %v", in, got, want)
			}
		}
	}
	// The requested path keeps every name.
	op, err := newFileNameOp(plugintypes.OperatorOptions{Arguments: "names.data", Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if !op.Evaluate(nil, "/config.asp") || !op.Evaluate(nil, "/app/.htpasswd/x") || !op.Evaluate(nil, "/etc/passwd/x") {
		t.Error("a listed file as the requested path passed")
	}
	for in, want := range map[string]bool{
		"/files/config.asp/view":                           false,
		"/package.json":                                    true,
		"/app/lib/package.json":                            true,
		"/a/b/c/package.json":                              false,
		"/public/extensions/v21/ext-1.0.2/package.json":    false,
		"/a/b/c/d/.htpasswd":                               true,
		"/a/b/c/d/e/etc/passwd":                            true,
		"/Release/pkgs/@ali/widget-search-box/config.json": false,
		"/static/package.json":                             true,
	} {
		if got := op.Evaluate(nil, in); got != want {
			t.Errorf("requested path %q: %v, want %v", in, got, want)
		}
	}
}

func TestReachesOut(t *testing.T) {
	for in, want := range map[string]bool{
		"":                   false,
		"config.php":         false,
		"/a/b/config.php":    false,
		"http://x/a":         false,
		"HTTPS://x/a":        false,
		"c:":                 false,
		"c:/x":               true,
		"d:\\x":              true,
		"ab:cd":              true, // a scheme
		"php://input":        true,
		"  file:/etc/hosts":  true,
		"a/../b":             true,
		"a\\..\\b":           true,
		"x\x00":              true,
		"1:2":                false,
		"note: config.php":   false,
		"ab:":                false,
		"the file config.js": false,
	} {
		if got := reachesOut(in); got != want {
			t.Errorf("reachesOut(%q) = %v, want %v", in, got, want)
		}
	}
}

func FuzzArgFileOp(f *testing.F) {
	root := fstest.MapFS{"names.data": {Data: []byte("config.php\n.htpasswd\netc/passwd\n")}}
	op, err := newArgOSFileOp(plugintypes.OperatorOptions{Arguments: "names.data", Root: root})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"config.php", "../config.php", "php://filter/resource=config.php", "c:\\config.php", "\x00config.php"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := op.Evaluate(nil, s)
		if strings.Contains(s, "../") && strings.Contains(strings.ToLower(s), "config.php") && !got {
			t.Errorf("%q: a traversal to a listed name passed", s)
		}
	})
}
