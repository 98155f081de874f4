package check

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// wildDir is the corpus of published Terraform modules (see its README),
// read in place: shared/tf-wild beside the repository (../shared from its
// root in CI), found by walking up from the package directory.
func wildDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		c := filepath.Join(d, "shared", "tf-wild")
		if _, err := os.Stat(filepath.Join(c, "README.md")); err == nil {
			return c
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	t.Fatalf("no shared/tf-wild in %s or a folder above it", dir)
	return ""
}

// Every example root module of the published modules is read without an
// error, and what is not evaluated is only what needs a plan: registry
// modules without terraform init, values from data sources or computed by
// the provider, and what follows from them.
func TestWildExamples(t *testing.T) {
	dir := wildDir(t)
	roots, err := filepath.Glob(filepath.Join(dir, "*", "examples", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) < 41 {
		t.Fatalf("found %d example root modules, want the corpus's 41", len(roots))
	}
	for _, root := range roots {
		name, _ := filepath.Rel(dir, root)
		t.Run(name, func(t *testing.T) {
			rep, err := Run(context.Background(), Config{Paths: []string{root}, Root: dir})
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range rep.Findings {
				// What Terraform itself rejects in a module call (an
				// argument of the wrong type or without a variable, a
				// nested block, a missing required argument) is CHECK-003:
				// the corpus, which terraform plans, has none.
				if f.RuleID == RuleRejected && strings.Contains(f.Message, "Terraform rejects") {
					t.Errorf("%s:%d: %s", f.File, f.Line, f.Message)
				}
				if f.RuleID != RuleNotEvaluated {
					continue
				}
				for _, bad := range []string{"Call to unknown function", "Unsupported attribute", "is not a CIDR block",
					"does not have the declared type", "no non-null", "Inconsistent conditional", "Null condition",
					"is not a readable directory"} {
					if strings.Contains(f.Message, bad) && !knownWildGap(name, f) {
						t.Errorf("%s:%d: %s", f.File, f.Line, f.Message)
					}
				}
			}
		})
	}
}

// knownWildGap names the notes of the corpus that Terraform would also
// raise, or that come from files the corpus does not keep.
func knownWildGap(example string, f Finding) bool {
	// examples/issues reproduces an upstream bug report: a database route
	// table association whose tables all have count 0, which terraform
	// plan rejects the same way.
	return example == filepath.Join("terraform-aws-vpc", "examples", "issues") && strings.Contains(f.Message, "coalescelist")
}
