package moat_test

import (
	"os/exec"
	"strings"
	"testing"
)

// layers is the import order of docs/DESIGN.md, bottom first: a package may
// import only packages of a lower layer. Packages that share a layer (the
// services) may not import each other. A package below internal/X/ belongs
// to X's layer and may import X's own tree.
var layers = [][]string{
	{"config", "filelock", "metrics", "netlab", "testkit"},
	{"sockdiag", "idle"},
	{"identity"},
	{"policy"},
	{"seal"},
	{"backup"},
	{"store"},
	{"audit"},
	{"flow"},
	{"ca"},
	{"mtls"},
	{"mesh"},
	{"firewall"},
	{"dnsfilter"},
	{"egress"},
	{"waf"},
	{"detect"},
	{"api"},
	{"server", "agent", "gateway", "ui"},
	{"check"},
	{"cli"},
	{"e2e", "faults"},
}

func TestImportLayers(t *testing.T) {
	rank := map[string]int{}
	for i, l := range layers {
		for _, p := range l {
			rank[p] = i
		}
	}
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}} {{join .TestImports " "}}`, "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const prefix = "moat/internal/"
	top := func(pkg string) (string, bool) {
		rest, ok := strings.CutPrefix(pkg, prefix)
		if !ok {
			return "", false
		}
		name, _, _ := strings.Cut(rest, "/")
		return name, true
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		from, ok := top(fields[0])
		if !ok {
			if strings.HasPrefix(fields[0], "moat/cmd/") {
				for _, imp := range fields[1:] {
					if to, ok := top(imp); ok && to != "cli" {
						t.Errorf("%s imports %s: a command's main imports only internal/cli and packages under it", fields[0], imp)
					}
				}
			}
			continue
		}
		rf, known := rank[from]
		if !known {
			t.Errorf("package %s is not placed in a layer: add it to layers and docs/DESIGN.md", fields[0])
			continue
		}
		for _, imp := range fields[1:] {
			to, ok := top(imp)
			if !ok || to == from {
				continue
			}
			checked++
			rt, known := rank[to]
			switch {
			case !known:
				t.Errorf("%s imports %s, which is not placed in a layer", fields[0], imp)
			case rt == rf:
				t.Errorf("%s imports %s: packages of one layer never import each other", fields[0], imp)
			case rt > rf:
				t.Errorf("%s imports %s: imports flow downward only (see docs/DESIGN.md)", fields[0], imp)
			}
		}
	}
	t.Logf("checked %d imports between internal packages", checked)
}
