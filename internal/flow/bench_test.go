//go:build unix

package flow

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"
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
			recs := make([]Record, batch)
			svcs := []string{"web", "api", "db", "cache", "auth", "queue", "billing", "search"}
			ctx := context.Background()
			b.ResetTimer()
			cpu := newCPUMeter()
			n := 0
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				for j := range recs {
					n++
					recs[j] = netRecord(fmt.Sprintf("%016x", n), svcs[n%len(svcs)], svcs[(n/7)%len(svcs)], VerdictAllow, "rule", int64(n%5000), t0.Add(time.Duration(n)*time.Millisecond))
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
