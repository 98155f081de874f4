//go:build !unix

package gateway

import "syscall"

// socketAlive: no kernel to ask without waiting here; ok false.
func socketAlive(syscall.Conn) (alive, ok bool) { return false, false }
