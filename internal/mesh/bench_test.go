package mesh

import (
	"io"
	"net"
	"testing"
)

// BenchmarkBulk moves b.N × 1 MB through one mesh connection.
func BenchmarkBulk(b *testing.B) {
	p := newPair(b)
	c, err := net.Dial("tcp", p.a.local(b, "frontend", "api"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	go func() { _, _ = io.Copy(io.Discard, c) }()
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNewConnection opens a connection, sends one line and reads it
// back, through the mesh.
func BenchmarkNewConnection(b *testing.B) {
	p := newPair(b)
	addr := p.a.local(b, "frontend", "api")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := call(addr, "x"); err != nil {
			b.Fatal(err)
		}
	}
}
