package cli

import (
	"context"
	"strings"
	"testing"

	"moat/internal/testkit"
)

// syncBuffer is a bytes.Buffer safe for a command writing while the test reads.
type syncBuffer = testkit.Buffer

// runCLI runs moat with args and returns its exit code, stdout and stderr.
func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb syncBuffer
	code := Run(context.Background(), &Env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(""),
		Getenv: func(k string) string { return env[k] }}, args)
	return code, out.String(), errb.String()
}

// ports are below the kernel's ephemeral range, split with internal/faults
// (which takes 20000-25999) so that the two packages' test binaries, run in
// parallel, never hand out the same one.
var ports = testkit.NewPorts(26000, 32000)

// freePorts returns n distinct ports that were free a moment ago, for ports
// a configuration must name before the listener exists (a registration's
// upstream port, a peer's mesh address); everything else listens on
// 127.0.0.1:0.
func freePorts(fatalf func(string, ...any), n int) []int {
	out, err := ports.Distinct(n)
	if err != nil {
		fatalf("%v", err)
	}
	return out
}

// freePortRun is freePorts for n consecutive ports (moat dev --port-base).
func freePortRun(fatalf func(string, ...any), n int) int {
	base, err := ports.Run(n)
	if err != nil {
		fatalf("%v", err)
	}
	return base
}
