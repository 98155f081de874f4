// Command flow measures moat's flow store: batched ingestion and top
// talkers over a large store. See README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"sort"
	"syscall"
	"time"

	"moat/internal/flow"
	"moat/internal/flow/flowstore"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/flow:", err)
		os.Exit(1)
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func run() error {
	dir := flag.String("dir", "", "store directory (reused when it already holds the records)")
	total := flag.Int("records", 10_000_000, "records to generate")
	services := flag.Int("services", 200, "distinct services")
	edges := flag.Int("edges", 2000, "distinct source-destination pairs")
	hours := flag.Int("hours", 24, "hours the records span, ending at -end")
	batch := flag.Int("batch", 10000, "records per Ingest call")
	runs := flag.Int("runs", 5, "runs of each query")
	end := flag.String("end", "2026-11-23T12:00:00Z", "time of the newest record")
	sealed := flag.Bool("sealed", false, "seal the store (bodies, keyed query columns, sealed counts), as a server does")
	mem := flag.Bool("mem", false, "measure the store's memory under load, bounded against unbounded (see README)")
	memSide := flag.String("mem-child", "", "internal: one side of -mem")
	days := flag.Int("days", 30, "-mem: days of records")
	perDay := flag.Int("per-day", 20000, "-mem: records per day")
	idle := flag.Duration("idle", 75*time.Second, "-mem: how long to idle before the last sample")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the queries to this file")
	flag.Parse()
	if *mem {
		return benchMem(*days, *perDay, *idle)
	}
	if *memSide != "" {
		return memChild(*memSide, *dir, *days, *perDay, *idle)
	}
	if *dir == "" {
		return fmt.Errorf("-dir is required")
	}
	endT, err := time.Parse(time.RFC3339, *end)
	if err != nil {
		return err
	}
	now := func() time.Time { return endT }
	cfg := flowstore.StoreConfig{Dir: *dir, Now: now}
	if *sealed {
		if cfg.Sealer, err = benchSealer(*dir); err != nil {
			return err
		}
	}
	st, err := flowstore.OpenStore(cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()

	top, err := st.TopTalkers(ctx, flow.Filter{}, 1<<30)
	if err != nil {
		return err
	}
	var have int64
	for _, t := range top {
		have += t.Flows
	}
	if have < int64(*total) {
		if have > 0 {
			return fmt.Errorf("%s holds %d records, fewer than %d: use an empty directory", *dir, have, *total)
		}
		if err := generate(ctx, st, *total, *services, *edges, *hours, *batch, endT); err != nil {
			return err
		}
	} else {
		fmt.Printf("store holds %d records; not generating\n", have)
	}

	svc := func(i int) string { return fmt.Sprintf("svc-%03d", i) }
	queries := []struct {
		name string
		f    flow.Filter
	}{
		{"all time", flow.Filter{}},
		{"verdict deny", flow.Filter{Verdict: flow.VerdictDeny}},
		{"from one service", flow.Filter{From: svc(7)}},
		{"since 6h (whole hours)", flow.Filter{Since: endT.Add(-6 * time.Hour).Truncate(time.Hour)}},
		{"since 1h, not hour-aligned", flow.Filter{Since: endT.Add(-time.Hour - 17*time.Minute)}},
		{"since 10m, not hour-aligned", flow.Filter{Since: endT.Add(-10*time.Minute - 7*time.Second)}},
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Printf("\nTopTalkers(n=10), %d runs each: min / median wall, CPU of the median run\n", *runs)
	for _, q := range queries {
		var walls, cpus []time.Duration
		var first []flow.Talker
		for range *runs {
			c0, t0 := cpuTime(), time.Now()
			ts, err := st.TopTalkers(ctx, q.f, 10)
			if err != nil {
				return err
			}
			walls = append(walls, time.Since(t0))
			cpus = append(cpus, cpuTime()-c0)
			first = ts
		}
		idx := make([]int, len(walls))
		for i := range idx {
			idx[i] = i
		}
		sort.Slice(idx, func(a, b int) bool { return walls[idx[a]] < walls[idx[b]] })
		med := idx[len(idx)/2]
		var flows int64
		for _, t := range first {
			flows += t.Flows
		}
		fmt.Printf("  %-30s min %8.1f ms  median %8.1f ms  cpu %8.1f ms  (top pair %d flows)\n", q.name,
			ms(walls[idx[0]]), ms(walls[med]), ms(cpus[med]), topFlows(first))
	}
	return clusterCosts(ctx, st, endT)
}

// clusterCosts times what a cluster's talkers add to each server's part:
// the node cells every query reads, and weighing one node's hour record by
// record, what a failover costs (every generated record is node-1's, so
// this is the worst case: the whole hour).
func clusterCosts(ctx context.Context, st *flowstore.Store, end time.Time) error {
	c0, t0 := cpuTime(), time.Now()
	cells, err := st.NodeCells(ctx, flow.Filter{})
	if err != nil {
		return err
	}
	fmt.Printf("\ncluster: node cells, all time: %.1f ms wall, %.1f ms CPU (%d nodes)\n", ms(time.Since(t0)), ms(cpuTime()-c0), len(cells))
	h := end.Add(-2*time.Hour).UnixMilli() / int64(time.Hour/time.Millisecond)
	c0, t0 = cpuTime(), time.Now()
	ws, err := st.TalkerWeights(ctx, flow.Filter{}, flow.NodeHours{Node: "node-1", Hours: [][2]int64{{h, h + 1}}})
	if err != nil {
		return err
	}
	fmt.Printf("cluster: weighing one hour of a node (a failover's cell): %.1f ms wall, %.1f ms CPU (%d records)\n", ms(time.Since(t0)), ms(cpuTime()-c0), len(ws))
	return nil
}

func topFlows(ts []flow.Talker) int64 {
	if len(ts) == 0 {
		return 0
	}
	return ts[0].Flows
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// generate ingests total records over the given hours between edges of a
// random service graph; a tenth of the flows are denied.
func generate(ctx context.Context, st *flowstore.Store, total, services, edges, hours, batch int, end time.Time) error {
	rng := rand.New(rand.NewPCG(1, 2))
	type edge struct{ src, dst, rule string }
	es := make([]edge, edges)
	for i := range es {
		s, d := rng.IntN(services), rng.IntN(services)
		es[i] = edge{fmt.Sprintf("svc-%03d", s), fmt.Sprintf("svc-%03d", d), fmt.Sprintf("rule-%d", i%50)}
	}
	start := end.Add(-time.Duration(hours) * time.Hour)
	span := end.Sub(start)
	recs := make([]flow.Record, batch)
	fmt.Printf("generating %d records over %d hours, %d services, %d edges, batches of %d\n", total, hours, services, edges, batch)
	var wall, cpu time.Duration
	for done := 0; done < total; {
		n := min(batch, total-done)
		for i := range n {
			k := done + i
			e := es[rng.IntN(len(es))]
			// Records arrive roughly in time order, as they do from agents.
			at := start.Add(time.Duration(int64(span) / int64(total) * int64(k)))
			r := flow.Header(flow.ClassNetworkActivity, flow.ActivityClose, "moat-agent", at)
			r.Metadata.UID = fmt.Sprintf("%016x%016x", rng.Uint64(), k)
			verdict, ruleName := flow.VerdictAllow, e.rule
			if rng.IntN(10) == 0 {
				verdict, ruleName = flow.VerdictDeny, "default-deny"
			}
			r.SrcEndpoint = &flow.Endpoint{IP: "10.0.0.1", Port: 30000 + rng.IntN(30000), UID: "spiffe://bench.example/svc/" + e.src, SvcName: e.src}
			r.DstEndpoint = &flow.Endpoint{IP: "10.0.0.2", Port: 8443, UID: "spiffe://bench.example/svc/" + e.dst, SvcName: e.dst}
			r.ConnectionInfo = &flow.ConnectionInfo{ProtocolName: "tcp", ProtocolNum: 6, DirectionID: flow.DirectionInbound}
			b := int64(rng.IntN(100000))
			r.Traffic = &flow.Traffic{BytesIn: b / 3, BytesOut: b - b/3, Bytes: b}
			r.FirewallRule = &flow.Rule{Name: ruleName}
			r.Unmapped = &flow.Moat{Verdict: verdict, Node: "node-1"}
			recs[i] = r
		}
		c0, t0 := cpuTime(), time.Now()
		if _, err := st.Ingest(ctx, recs[:n]); err != nil {
			return err
		}
		wall += time.Since(t0)
		cpu += cpuTime() - c0
		done += n
		if done%max(total/10, 1) < n {
			fmt.Printf("  %d records: %.0f records/s wall, %.0f records per CPU-second\n", done, float64(done)/wall.Seconds(), float64(done)/cpu.Seconds())
		}
	}
	return nil
}
