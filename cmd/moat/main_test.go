package main

import (
	"os"
	"path/filepath"
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
// package's realistic projects and $WILD the published-modules corpus.
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
