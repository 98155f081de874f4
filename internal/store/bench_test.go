package store

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
)

// BenchmarkStore compares the two implementations on the operations the
// server makes most: a durable Put, a Get, and a compare-and-swap Txn, each
// with a 256-byte value; PutWatched adds the delivery of the change to a
// watcher; PutParallel shows how concurrent writers batch.
// bbolt fsyncs every commit; the etcd server is a single local member that
// fsyncs its WAL. See bench/store/README.md for figures.
//
//	go test -run '^$' -bench BenchmarkStore -benchtime 2s ./internal/store
func BenchmarkStore(b *testing.B) {
	b.Run("bolt", func(b *testing.B) {
		benchStore(b, func(b *testing.B) Store { return openBolt(b, BoltConfig{Dir: b.TempDir()}) })
	})
	b.Run("bolt-sealed", func(b *testing.B) {
		benchStore(b, func(b *testing.B) Store {
			return openBolt(b, BoltConfig{Dir: b.TempDir(), Sealer: newSealer(b)})
		})
	})
	b.Run("etcd", func(b *testing.B) {
		url := startEtcd(b)
		var n atomic.Int64
		benchStore(b, func(b *testing.B) Store {
			return openEtcdPrefix(b, url, fmt.Sprintf("/moat/bench-%d/", n.Add(1)), nil)
		})
	})
}

func benchStore(b *testing.B, open func(b *testing.B) Store) {
	ctx := context.Background()
	value := make([]byte, 256)
	b.Run("Put", func(b *testing.B) {
		s := open(b)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := s.Put(ctx, fmt.Sprintf("svc/s%d", i%1000), value); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Get", func(b *testing.B) {
		s := open(b)
		for i := range 1000 {
			if _, err := s.Put(ctx, fmt.Sprintf("svc/s%d", i), value); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := s.Get(ctx, fmt.Sprintf("svc/s%d", i%1000)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Txn", func(b *testing.B) {
		s := open(b)
		mod, err := s.Put(ctx, "policy/current", value)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if mod, err = s.Txn(ctx, []Cond{{Key: "policy/current", ModRevision: mod}}, []Op{Put("policy/current", value)}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("PutWatched", func(b *testing.B) {
		// One op: a Put and its event reaching a watcher of the prefix.
		s := open(b)
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ch, err := s.Watch(ctx, "revoked/", 0)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := s.Put(ctx, fmt.Sprintf("revoked/s%d", i%1000), value); err != nil {
				b.Fatal(err)
			}
			if ev := <-ch; ev.Err != nil || ev.Type != EventPut {
				b.Fatalf("event %+v", ev)
			}
		}
	})
	b.Run("PutParallel", func(b *testing.B) {
		s := open(b)
		var n atomic.Int64
		b.SetParallelism(4)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Put(ctx, fmt.Sprintf("svc/s%d", n.Add(1)%1000), value); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
