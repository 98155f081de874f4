package waf

import (
	"testing"
	"testing/fstest"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

func TestFileNameOp(t *testing.T) {
	root := fstest.MapFS{"names.data": {Data: []byte("# comment\nconfig.json\n.htaccess\n/package.json\netc/passwd\n")}}
	op, err := newFileNameOp(plugintypes.OperatorOptions{Arguments: "names.data", Root: root})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]bool{
		"/app/config.json":           true,
		"config.json":                true,
		"/x/old.config.json":         true,
		"/?f=CONFIG.JSON":            true,
		"/tsconfig.json":             false,
		"/getAppConfig.json":         false,
		"/old.htaccess":              true,
		"/a/node_modules/x.js":       false,
		"/lib/package.json":          true,
		"../../etc/passwd":           true,
		"/list.etc/passwd":           true,
		"/vetc/passwd":               false,
		"/tsconfig.json/config.json": true,
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
