package detect

import (
	"context"
	"fmt"
	"testing"
	"time"

	"moat/internal/flow"
)

// BenchmarkProcess measures rule evaluation per record on a mix of allowed
// flows between 50 services, denies from 1000 sources and WAF blocks.
func BenchmarkProcess(b *testing.B) {
	clk := newClock()
	e, err := New(Config{Rules: DefaultRules(), Now: clk.Now})
	if err != nil {
		b.Fatal(err)
	}
	recs := make([]flow.Record, 0, 4096)
	for i := range cap(recs) {
		switch i % 4 {
		case 0, 1:
			recs = append(recs, *allowFlow(fmt.Sprintf("svc%d", i%50), fmt.Sprintf("svc%d", (i/50)%50)))
		case 2:
			recs = append(recs, *denyFlow(fmt.Sprintf("10.%d.%d.1", i%7, i%1000/7), "10.0.1.5", 1+i%300))
		default:
			recs = append(recs, *wafEvent(fmt.Sprintf("192.0.2.%d", i%200), true))
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%1000 == 0 {
			clk.Advance(time.Millisecond * 100)
		}
		e.process(item{rec: recs[i%len(recs)]})
	}
}

// BenchmarkWrite measures what the data plane pays per record: one
// non-blocking enqueue, with Run draining.
func BenchmarkWrite(b *testing.B) {
	e, err := New(Config{Rules: DefaultRules(), Queue: 1 << 16})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = e.Run(ctx) }()
	r := *denyFlow("10.0.0.1", "10.0.1.5", 22)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = e.Write(r)
	}
	b.StopTimer()
	b.ReportMetric(float64(e.Stats().Dropped)/float64(b.N), "dropped/op")
}
