// Package sockdiag tells which local user owns a socket, from the
// kernel's socket diagnostics (NETLINK_SOCK_DIAG, as ss(8) asks them):
// the mesh and the egress proxy tell a local caller by the uid of its
// TCP socket, the DNS filter a local client by the uid of its UDP or TCP
// socket. Only Linux answers; elsewhere every question fails, and callers
// fail closed.
package sockdiag
