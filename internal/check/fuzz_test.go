package check

import (
	"os"
	"testing"
	"testing/fstest"

	"moat/internal/check/tf"
)

// FuzzCheckHCL runs the whole pipeline (read, model, reachability, rules)
// over arbitrary HCL: it must never panic.
func FuzzCheckHCL(f *testing.F) {
	for _, name := range []string{"testdata/paths/db-public/main.tf", "testdata/paths/transitive-peering/main.tf", "testdata/rules/AWS-NET-003/fail/main.tf"} {
		src, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Add([]byte(network + acl("", "")))
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := tf.LoadDir(fstest.MapFS{"main.tf": {Data: src}}, ".", tf.Options{})
		if err != nil {
			return
		}
		CheckProject(p)
	})
}

// FuzzMoatConfig: any YAML either checks or fails with an error naming the
// file; it never panics.
func FuzzMoatConfig(f *testing.F) {
	f.Add([]byte("default: allow\nrules:\n  - from: [\"*\"]\n    to: api\n"))
	f.Add([]byte("trust_domain: x\nlisten: 0.0.0.0:1\nsvid_ttl: 48h\nadmin: {}\n"))
	f.Add([]byte("hsts: {enabled: true, max_age: 1h}\nwaf: {enabled: true, mode: detect}\nroutes: []\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		fs := newFindings()
		if _, err := moatFile("x.yaml", src, fs); err != nil && !containsName(err.Error()) {
			t.Errorf("error names no file: %v", err)
		}
		suppress(fs.list, map[string][]byte{"x.yaml": src})
	})
}

func containsName(s string) bool {
	for i := 0; i+6 <= len(s); i++ {
		if s[i:i+6] == "x.yaml" {
			return true
		}
	}
	return false
}
