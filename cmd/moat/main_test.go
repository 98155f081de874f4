package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"moat/internal/cli"
)

// TestMain lets the scripts run this test binary as the moat command, so
// they exercise the program as users run it: arguments, output and exit
// status of a separate process.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"moat": func() { os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// TestCheckScripts runs testdata/check/*.txtar; $PROJECTS is the check
// package's realistic projects.
func TestCheckScripts(t *testing.T) {
	projects, err := filepath.Abs(filepath.Join("..", "..", "internal", "check", "testdata", "projects"))
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("testdata", "check"),
		Setup: func(env *testscript.Env) error {
			env.Setenv("PROJECTS", projects)
			return nil
		},
	})
}

// TestCheckWildExamples runs the built program on every example root module
// of the published-modules corpus (shared/tf-wild beside the repository, as
// users lay it out: local modules outside the folder, registry modules
// without terraform init): each is read with exit status 0 under
// --fail-on none, nothing on standard error, and a JSON report. The check
// package's TestWildExamples asserts what the notes may say.
func TestCheckWildExamples(t *testing.T) {
	wild := ""
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; wild == "" && filepath.Dir(d) != d; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "shared", "tf-wild", "README.md")); err == nil {
			wild = filepath.Join(d, "shared", "tf-wild")
		}
	}
	if wild == "" {
		t.Fatalf("no shared/tf-wild in %s or a folder above it", dir)
	}
	roots, err := filepath.Glob(filepath.Join(wild, "*", "examples", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) < 41 {
		t.Fatalf("found %d example root modules, want the corpus's 41", len(roots))
	}
	scripts := t.TempDir()
	for _, root := range roots {
		rel, err := filepath.Rel(wild, root)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.ReplaceAll(rel, string(filepath.Separator), "_") + ".txtar"
		script := fmt.Sprintf("exec moat check --fail-on none --format json --root %s %s\n! stderr .\nstdout '^\\{'\nstdout '\"findings\": \\['\n", wild, root)
		if err := os.WriteFile(filepath.Join(scripts, name), []byte(script), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testscript.Run(t, testscript.Params{Dir: scripts})
}
