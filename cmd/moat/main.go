// Command moat runs moat: see "moat -h".
package main

import (
	"os"

	"moat/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
