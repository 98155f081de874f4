//go:build !unix

package cli

import "os"

// notifyResize: without SIGWINCH the session keeps the size it started with.
func notifyResize(chan<- os.Signal) {}
