//go:build unix

package flowstore

import (
	"context"
	"fmt"
	"sort"
	"syscall"
	"testing"
	"time"

	"moat/internal/flow"
	"moat/internal/flow/flowtest"
)

// cpuMeter sums the process's user and system CPU time over start/stop
// intervals: on a shared machine, records per CPU-second is the figure that
// compares with "one core", while records/s depends on the neighbours.
type cpuMeter struct {
	at    time.Duration
	total time.Duration
}

func newCPUMeter() *cpuMeter { return &cpuMeter{} }

func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (m *cpuMeter) start() { m.at = cpuNow() }
func (m *cpuMeter) stop()  { m.total += cpuNow() - m.at }

// BenchmarkIngest measures batched ingestion into one partition; the
// records/s metric is the figure to compare with the 100,000/s target.
func BenchmarkIngest(b *testing.B) {
	for _, batch := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s, err := OpenStore(StoreConfig{Dir: b.TempDir(), Now: func() time.Time { return t0 }})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			recs := make([]flow.Record, batch)
			svcs := []string{"web", "api", "db", "cache", "auth", "queue", "billing", "search"}
			ctx := context.Background()
			b.ResetTimer()
			cpu := newCPUMeter()
			n := 0
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				for j := range recs {
					n++
					recs[j] = flowtest.NetRecord(fmt.Sprintf("%016x", n), svcs[n%len(svcs)], svcs[(n/7)%len(svcs)], flow.VerdictAllow, "rule", int64(n%5000), t0.Add(time.Duration(n)*time.Millisecond))
				}
				b.StartTimer()
				cpu.start()
				if _, err := s.Ingest(ctx, recs); err != nil {
					b.Fatal(err)
				}
				cpu.stop()
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(b.N*batch)/cpu.total.Seconds(), "records/cpu-s")
		})
	}
}

// BenchmarkIngestSealed compares ingestion into a plain store and into a
// sealed one (sealed bodies, keyed query columns, sealed rollup counts),
// alternating batches of both within one run, with 200 edges per batch
// (so 200 rollup rows to open and seal again). It reports each side's
// records per second and the median overhead (sealed/plain - 1).
func BenchmarkIngestSealed(b *testing.B) {
	const batch = 2000
	now := func() time.Time { return t0 }
	plain, err := OpenStore(StoreConfig{Dir: b.TempDir(), Now: now})
	if err != nil {
		b.Fatal(err)
	}
	defer plain.Close()
	sealed, err := OpenStore(StoreConfig{Dir: b.TempDir(), Now: now, Sealer: flowtest.NewAEAD(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer sealed.Close()
	ctx := context.Background()
	n := 0
	next := func() []flow.Record {
		recs := make([]flow.Record, batch)
		for j := range recs {
			n++
			src, dst := fmt.Sprintf("svc-%02d", n%20), fmt.Sprintf("svc-%02d", (n/20)%10)
			recs[j] = flowtest.NetRecord(fmt.Sprintf("%016x", n), src, dst, flow.VerdictAllow, "rule", int64(n%5000), t0.Add(time.Duration(n)*time.Millisecond))
		}
		return recs
	}
	run := func(s *Store, recs []flow.Record) time.Duration {
		t := time.Now()
		if _, err := s.Ingest(ctx, recs); err != nil {
			b.Fatal(err)
		}
		return time.Since(t)
	}
	var tp, ts []time.Duration
	for i := 0; b.Loop(); i++ {
		rp, rs := next(), next()
		if i%2 == 0 {
			tp = append(tp, run(plain, rp))
			ts = append(ts, run(sealed, rs))
		} else {
			ts = append(ts, run(sealed, rs))
			tp = append(tp, run(plain, rp))
		}
	}
	median := func(d []time.Duration) time.Duration {
		d = append([]time.Duration(nil), d...)
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	ratios := make([]float64, len(tp))
	for i := range tp {
		ratios[i] = float64(ts[i])/float64(tp[i]) - 1
	}
	sort.Float64s(ratios)
	b.ReportMetric(batch/median(tp).Seconds(), "plain-records/s")
	b.ReportMetric(batch/median(ts).Seconds(), "sealed-records/s")
	b.ReportMetric(ratios[len(ratios)/2], "overhead")
}
