package audit

import (
	"context"
	"fmt"
	"testing"
)

func benchEntry(i int) Entry {
	return Entry{Actor: "spiffe://example.org/admin", Role: "admin", Action: "policy.apply",
		Target: fmt.Sprintf("policy-%d", i), Result: "ok", Detail: map[string]string{"rules": "12"}}
}

// BenchmarkRecord is the durable single-entry path the control plane takes:
// entry, hashes and a signed checkpoint, three fsyncs.
func BenchmarkRecord(b *testing.B) {
	s, v, _ := testKey(b, "bench")
	l, err := Open(Config{Dir: b.TempDir(), Signer: s, Verifier: v, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := l.Record(ctx, benchEntry(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkAppendBatch1000 appends batches of 1000 entries, one checkpoint
// and one fsync per file per batch.
func BenchmarkAppendBatch1000(b *testing.B) {
	s, v, _ := testKey(b, "bench")
	l, err := Open(Config{Dir: b.TempDir(), Signer: s, Verifier: v, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	batch := make([]Entry, 1000)
	for i := range batch {
		batch[i] = benchEntry(i)
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := l.AppendBatch(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkVerify100k verifies a log of 100,000 entries (in batches of 100).
func BenchmarkVerify100k(b *testing.B) {
	const n, per = 100_000, 100
	s, v, _ := testKey(b, "bench")
	l, err := Open(Config{Dir: b.TempDir(), Signer: s, Verifier: v, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	batch := make([]Entry, per)
	for i := 0; i < n; i += per {
		for j := range batch {
			batch[j] = benchEntry(i + j)
		}
		if _, err := l.AppendBatch(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := l.Verify(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "entries/s")
}
