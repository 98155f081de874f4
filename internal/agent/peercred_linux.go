package agent

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// peerCredentials reads the uid and pid of the process at the other end of
// the Unix socket fd (SO_PEERCRED).
func peerCredentials(fd int) (callerInfo, error) {
	cred, err := unix.GetsockoptUcred(fd, syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	if err != nil {
		return callerInfo{}, err
	}
	return callerInfo{UID: int(cred.Uid), PID: int(cred.Pid)}, nil
}
