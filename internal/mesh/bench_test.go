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

// BenchmarkRequests sends 1 KB requests, each echoed back, over 16
// kept-alive mesh connections in parallel, as the wrk phase of bench/mesh
// does: the per-request costs of the data path.
func BenchmarkRequests(b *testing.B) {
	p := newPair(b)
	addr := p.a.local(b, "frontend", "api")
	msg := make([]byte, 1024)
	b.SetParallelism(8) // 16 connections on 2 CPUs
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		buf := make([]byte, len(msg))
		for pb.Next() {
			if _, err := c.Write(msg); err != nil {
				b.Error(err)
				return
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
