package mesh

import (
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// countingConn counts the writes that reach the transport.
type countingConn struct {
	net.Conn
	mu     sync.Mutex // guards writes
	writes int
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *countingConn) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// TestFrameLeavesInOneWrite: a yamux data frame (header, then a body of
// four TLS records) reaches the transport in one write, and a small one
// in one TLS record with its header.
func TestFrameLeavesInOneWrite(t *testing.T) {
	f := newFixture(t)
	cert := f.issue(t, "api", time.Hour)
	a, b := net.Pipe()
	raw := &countingConn{Conn: a}
	bc := &batchConn{Conn: raw}
	client := tls.Client(bc, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, DynamicRecordSizingDisabled: true})
	server := tls.Server(b, &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS13})
	got := make(chan []byte, 1)
	go func() {
		_ = server.Handshake()
		buf, _ := io.ReadAll(server)
		got <- buf
	}()
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	fc := &frameConn{Conn: client, raw: bc}
	frame := func(body []byte) {
		hdr := make([]byte, yamuxHeaderLen)
		hdr[1] = yamuxTypeData
		binary.BigEndian.PutUint32(hdr[8:], uint32(len(body)))
		if _, err := fc.Write(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := fc.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	for _, size := range []int{1024, 64 << 10} {
		before := raw.count()
		frame(make([]byte, size))
		if n := raw.count() - before; n != 1 {
			t.Errorf("a frame with a %d-byte body took %d writes", size, n)
		}
	}
	client.Close()
	if n := len(<-got); n != 2*yamuxHeaderLen+1024+64<<10 {
		t.Fatalf("the peer read %d bytes", n)
	}
}
