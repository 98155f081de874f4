//go:build !linux && !darwin && !freebsd

package agent

import (
	"errors"
	"runtime"
)

// peerCredentials is unavailable here: the Workload API decides who may
// fetch an SVID by the caller's uid, which only Linux, macOS and FreeBSD
// tell a Unix socket server. Refusing is the closed failure.
func peerCredentials(int) (callerInfo, error) {
	return callerInfo{}, errors.New("the SPIFFE Workload API needs Unix peer credentials, which " + runtime.GOOS + " does not give (run the agent on Linux, macOS or FreeBSD)")
}
