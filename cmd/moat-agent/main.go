// Command moat-agent runs moat's node agent, as "moat agent" does, from an
// executable that links the agent alone: see "moat-agent -h".
package main

import (
	"os"

	"moat/internal/cli/agentcli"
	"moat/internal/cli/cmdline"
)

func main() {
	os.Exit(cmdline.Main(agentcli.Root(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
