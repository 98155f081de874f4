// Command moat-agent runs moat's node agent, as "moat agent" does, from an
// executable that links the agent alone: see "moat-agent -h".
//
// It is built as
//
//	CGO_ENABLED=0 go build -tags grpcnotrace -o moat-agent ./cmd/moat-agent
//
// Without cgo the executable maps no C library (the agent needs none: Go's
// own resolver and user database serve it); grpcnotrace keeps gRPC (the
// Workload API's server) from linking golang.org/x/net/trace, which brings
// html/template and text/template and registers its debug pages at start-up
// in every process. Together they take 3 MB of code and tables out of the
// executable, all of which an agent would otherwise map (bench/mesh).
// agentdeps_test.go checks that this build links neither.
package main

import (
	"os"

	"moat/internal/cli/agentcli"
	"moat/internal/cli/cmdline"
)

func main() {
	os.Exit(cmdline.Main(agentcli.Root(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
