package mesh

import (
	"encoding/binary"
	"net"
)

// yamux frame header: version(1) type(1) flags(2) stream(4) length(4).
const (
	yamuxHeaderLen = 12
	yamuxTypeData  = 0
	// coalesceMax is the largest body merged with its header: a TLS record
	// holds 16 KB, so larger bodies gain nothing from the copy.
	coalesceMax = 16 << 10
)

// frameConn sits between a yamux session and its TLS connection and writes
// each data frame's header together with its body. yamux writes them in
// two calls, which over TLS costs two records and two system calls for
// every small frame. Only the session's send loop writes, so frameConn
// needs no lock.
type frameConn struct {
	net.Conn
	hdr  [yamuxHeaderLen]byte
	held bool
	buf  []byte
}

func (c *frameConn) Write(p []byte) (int, error) {
	if c.held {
		c.held = false
		if len(p) <= coalesceMax {
			c.buf = append(append(c.buf[:0], c.hdr[:]...), p...)
			n, err := c.Conn.Write(c.buf)
			return max(n-yamuxHeaderLen, 0), err
		}
		if _, err := c.Conn.Write(c.hdr[:]); err != nil {
			return 0, err
		}
		return c.Conn.Write(p)
	}
	if len(p) == yamuxHeaderLen && p[1] == yamuxTypeData && binary.BigEndian.Uint32(p[8:]) > 0 {
		copy(c.hdr[:], p)
		c.held = true
		return len(p), nil
	}
	return c.Conn.Write(p)
}
