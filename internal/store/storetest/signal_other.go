//go:build !unix

package storetest

import "os"

// No process can be paused here: Pause and Continue fail their test,
// naming the signal the platform lacks.
var sigStop, sigCont os.Signal = unsupported("SIGSTOP"), unsupported("SIGCONT")

type unsupported string

func (s unsupported) String() string { return string(s) + " (not on this platform)" }
func (unsupported) Signal()          {}
