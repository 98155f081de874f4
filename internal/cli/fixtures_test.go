package cli

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"moat/internal/check"
)

// validateArgs is how each kind of moat file is validated by the command
// that owns it.
var validateArgs = map[string]func(file string) []string{
	"server":  func(f string) []string { return []string{"server", "run", "--config", f, "--validate"} },
	"agent":   func(f string) []string { return []string{"agent", "--config", f, "--validate"} },
	"gateway": func(f string) []string { return []string{"gateway", "--config", f, "--validate"} },
	"policy":  func(f string) []string { return []string{"policy", "apply", "-f", f, "--validate"} },
}

// checkFixturesRefused are the fixtures whose finding is about a file moat
// refuses to load: their owner's --validate must refuse them for the same
// reason the finding gives.
var checkFixturesRefused = map[string]string{
	"rules/MOAT-001/fail/policy.yaml": "default",
	"rules/MOAT-004/fail/server.yaml": "svid_ttl",
	// The server refuses plaintext to etcd across the network; moat check
	// reports it as a finding.
	"rules/MOAT-010/fail/server-plaintext.yaml": "store.endpoints[0]",
}

// TestCheckFixturesValidate runs every moat configuration file under
// internal/check/testdata through its owning command's --validate, so that
// "moat check" is never tested on a file moat itself would refuse.
func TestCheckFixturesValidate(t *testing.T) {
	root := filepath.Join("..", "check", "testdata")
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || (filepath.Ext(path) != ".yaml" && filepath.Ext(path) != ".yml") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		kind := check.MoatKind(src)
		if kind == "" {
			return nil
		}
		n++
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		t.Run(rel, func(t *testing.T) {
			file := path
			if tlsFile.Match(src) {
				// The certificates it names are made where the server
				// runs; here, in a copy of the file.
				dir := t.TempDir()
				file = filepath.Join(dir, filepath.Base(path))
				if err := os.WriteFile(file, []byte(withCertificates(t, dir, string(src))), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			code, stdout, stderr := runCLI(t, nil, validateArgs[kind](file)...)
			want, refused := checkFixturesRefused[rel]
			switch {
			case refused && (code == 0 || !strings.Contains(stderr, want)):
				t.Fatalf("%s (%s): exit %d, stderr %q; want a refusal naming %q", rel, kind, code, stderr, want)
			case !refused && code != 0:
				t.Fatalf("%s (%s): exit %d: %s%s", rel, kind, code, stdout, stderr)
			}
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("found %d moat files under %s; the walk is broken", n, root)
	}
}

// TestPolicyValidateWarns: --validate says what applying the file would
// warn about (a wildcard source here), not only whether it parses.
func TestPolicyValidateWarns(t *testing.T) {
	file := filepath.Join(t.TempDir(), "intentions.yaml")
	doc := "default: deny\nrules:\n  - name: anyone\n    from: [\"*\"]\n    to: api\n    ports: [9080]\n"
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, nil, "policy", "apply", "-f", file, "--validate")
	if code != 0 || !strings.Contains(stdout, ": ok (policy digest ") {
		t.Fatalf("exit %d: %s%s", code, stdout, stderr)
	}
	if want := `warning: rules[0] (anyone): from "*" lets every service reach api`; !strings.Contains(stderr, want) {
		t.Fatalf("stderr %q; want %q", stderr, want)
	}
}
