package mesh

import (
	"encoding/binary"
	"net"
	"sync"
)

// yamux frame header: version(1) type(1) flags(2) stream(4) length(4).
const (
	yamuxHeaderLen = 12
	yamuxTypeData  = 0
	// coalesceMax is the largest body merged with its header into one
	// TLS record: a record holds 16 KB.
	coalesceMax = 16 << 10
	// batchKeep is the most a batchConn keeps of its buffer between
	// frames; a larger one (a bulk frame) is let go.
	batchKeep = 128 << 10
)

// frameConn sits between a yamux session and its TLS connection. yamux
// writes each data frame's header and body in two calls; frameConn writes
// a small body together with its header (one TLS record instead of two),
// and has the TLS records of one frame (a 64 KB body is four) leave in one
// system call through the batchConn under the TLS connection. Only the
// session's send loop writes, so frameConn needs no lock.
type frameConn struct {
	net.Conn            // the TLS connection
	raw      *batchConn // under it
	hdr      [yamuxHeaderLen]byte
	held     bool
	buf      []byte
}

func (c *frameConn) Write(p []byte) (int, error) {
	if !c.held && len(p) == yamuxHeaderLen && p[1] == yamuxTypeData && binary.BigEndian.Uint32(p[8:]) > 0 {
		copy(c.hdr[:], p)
		c.held = true
		return len(p), nil
	}
	c.raw.hold()
	n, err := c.write(p)
	if ferr := c.raw.flush(); err == nil && ferr != nil {
		return 0, ferr
	}
	return n, err
}

func (c *frameConn) write(p []byte) (int, error) {
	if !c.held {
		return c.Conn.Write(p)
	}
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

// batchConn is the TCP connection under a tunnel's TLS. Between hold and
// flush, what TLS writes is gathered and then sent in one write; at other
// times (the handshake, alerts) writes go straight through.
type batchConn struct {
	net.Conn
	mu      sync.Mutex // guards holding and buf
	holding bool
	buf     []byte
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.holding {
		c.buf = append(c.buf, p...)
		c.mu.Unlock()
		return len(p), nil
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *batchConn) hold() {
	c.mu.Lock()
	c.holding = true
	c.mu.Unlock()
}

// flush sends what was gathered since hold.
func (c *batchConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holding = false
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	if cap(c.buf) > batchKeep {
		c.buf = nil
	} else {
		c.buf = c.buf[:0]
	}
	return err
}
