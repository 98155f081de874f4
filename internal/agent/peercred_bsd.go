//go:build darwin || freebsd

package agent

import "golang.org/x/sys/unix"

// peerCredentials reads the uid of the process at the other end of the
// Unix socket fd (LOCAL_PEERCRED), and its pid where the system tells it.
func peerCredentials(fd int) (callerInfo, error) {
	cred, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return callerInfo{}, err
	}
	return callerInfo{UID: int(cred.Uid), PID: peerPID(fd)}, nil
}
