// Command moat-agent runs moat's node agent, as "moat agent" does, from an
// executable that links the agent alone: see "moat-agent -h".
//
// It is built as
//
//	CGO_ENABLED=0 go build -o moat-agent ./cmd/moat-agent
//
// Without cgo the executable maps no C library (the agent needs none: Go's
// own resolver and user database serve it). The agent links no gRPC: it
// serves the SPIFFE Workload API with net/http's HTTP/2 server and encodes
// its messages by hand (internal/agent/workloadrpc.go). Every package
// linked is initialised and mapped in every agent (bench/mesh);
// agentdeps_test.go checks what this build leaves out.
package main

import (
	"os"

	"moat/internal/cli/agentcli"
	"moat/internal/cli/cmdline"
)

func main() {
	os.Exit(cmdline.Main(agentcli.Root(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
