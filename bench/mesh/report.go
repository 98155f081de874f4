package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// printReport prints the medians over repetitions of every figure, the
// added latencies (a path's minus direct's, per repetition), the ratios
// against HAProxy and the targets.
func printReport(w io.Writer, o options, reps []map[string]*result) {
	med := func(p string, f func(*result) float64) float64 {
		var v []float64
		for _, r := range reps {
			v = append(v, f(r[p]))
		}
		return median(v)
	}
	added := func(p string, f func(*result) float64) float64 {
		var v []float64
		for _, r := range reps {
			v = append(v, f(r[p])-f(r["direct"]))
		}
		return median(v)
	}
	proc := func(p string, f func(*result) []int64, i int) float64 {
		return med(p, func(r *result) float64 { return float64(f(r)[i]) / 1024 })
	}
	agents := "moat-agent (built as shipped: CGO_ENABLED=0)"
	switch {
	case o.oneBinary:
		agents = `"moat agent" (cmd/moat)`
	case o.agentDefaultBuild:
		agents = "moat-agent (go build's defaults)"
	}
	fmt.Fprintf(w, "meshbench: %d repetition(s), %v phases, medians; moat = two %s processes and moat server; HAProxy = two haproxy processes (mode tcp, TLS 1.3, resumption)\n\n", len(reps), o.dur, agents)
	fmt.Fprintln(w, "| metric | direct | moat | HAProxy | moat/HAProxy | target |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	row := func(name, format string, d, m, h float64, target string) {
		ratio := "–"
		if h != 0 {
			ratio = fmt.Sprintf("%.2f×", m/h)
		}
		fmt.Fprintf(w, "| %s | "+format+" | "+format+" | "+format+" | %s | %s |\n", name, d, m, h, ratio, target)
	}
	lat := func(name string, f func(*result) time.Duration, target string) {
		g := func(r *result) float64 { return us(f(r)) }
		row(name, "%.0f", med("direct", g), med("moat", g), med("haproxy", g), "")
		row("added "+name, "%.0f", 0, added("moat", g), added("haproxy", g), target)
	}
	lat("p99 µs, 1 KB at 1k req/s uniform", func(r *result) time.Duration { return r.uniP99 }, "≤ 0.5×")
	lat("p99 µs, 1 KB at 1k req/s bursty", func(r *result) time.Duration { return r.burstP99 }, "≤ 0.5×")
	f := func(g func(*result) float64) (float64, float64, float64) {
		return med("direct", g), med("moat", g), med("haproxy", g)
	}
	d, m, h := f(func(r *result) float64 { return us(r.uniP50) })
	row("p50 µs, 1 KB at 1k req/s uniform", "%.0f", d, m, h, "")
	d, m, h = f(func(r *result) float64 { return r.maxRPS })
	row("max req/s", "%.0f", d, m, h, "≥ 1.2×")
	d, m, h = f(func(r *result) float64 { return r.proxyUSPerReq })
	row("proxy CPU µs per request, max req/s phase (both processes)", "%.1f", d, m, h, "")
	d, m, h = f(func(r *result) float64 { return r.hostUSPerReq })
	row("host CPU µs per request, max req/s phase (all processes, both cores)", "%.1f", d, m, h, "")
	d, m, h = f(func(r *result) float64 { return r.hostIdle })
	row("host idle %, max req/s phase", "%.1f", d, m, h, "")
	d, m, h = f(func(r *result) float64 { return r.proxyWaitUS })
	row("proxy wait for a core µs per request, max req/s phase (both processes, runnable)", "%.1f", d, m, h, "")
	d, m, h = f(func(r *result) float64 { return r.backendWaitUS })
	row("backend wait for a core µs per request, max req/s phase", "%.1f", d, m, h, "")
	d, m, h = f(func(r *result) float64 { return r.bulkMBs })
	row("bulk MB/s", "%.1f", d, m, h, "≥ 1.5×")
	d, m, h = f(func(r *result) float64 { return r.bulkProxyMS })
	row("proxy CPU ms per GiB, bulk (both processes)", "%.0f", d, m, h, "")
	d, m, h = f(func(r *result) float64 { return r.bulkBackendMS })
	row("sink CPU ms per GiB, bulk", "%.0f", d, m, h, "")
	d, m, h = f(func(r *result) float64 { return r.bulkHostMS })
	row("host CPU ms per GiB, bulk (all processes, both cores)", "%.0f", d, m, h, "")
	d, m, h = f(func(r *result) float64 { return r.bulkIdle })
	row("host idle %, bulk", "%.1f", d, m, h, "")
	conn := func(r *result) float64 { return us(r.connP50) }
	d, m, h = f(conn)
	row("new conn p50 µs", "%.0f", d, m, h, "")
	row("added new conn p50 µs", "%.0f", 0, added("moat", conn), added("haproxy", conn), "≤ 0.5×")
	d, m, h = f(func(r *result) float64 { return us(r.connP99) })
	row("new conn p99 µs", "%.0f", d, m, h, "")
	cpu := func(g func(*result) time.Duration) (float64, float64) {
		return med("moat", func(r *result) float64 { return g(r).Seconds() }), med("haproxy", func(r *result) float64 { return g(r).Seconds() })
	}
	m, h = cpu(func(r *result) time.Duration { return r.cpuUni })
	row("proxy CPU s, 1k req/s phase (both processes)", "%.2f", 0, m, h, "")
	m, h = cpu(func(r *result) time.Duration { return r.cpuConn })
	row("proxy CPU s, new-connection phase (both processes)", "%.2f", 0, m, h, "")
	for i, side := range []string{"source side", "destination side"} {
		row("RSS MiB idle, "+side, "%.1f", 0, proc("moat", func(r *result) []int64 { return r.idleKB }, i), proc("haproxy", func(r *result) []int64 { return r.idleKB }, i), "moat ≤ 15")
		row("of which RssAnon (heap, stacks)", "%.1f", 0, proc("moat", func(r *result) []int64 { return r.idleAnonKB }, i), proc("haproxy", func(r *result) []int64 { return r.idleAnonKB }, i), "")
		row("of which RssFile (executable, libraries)", "%.1f", 0, proc("moat", func(r *result) []int64 { return r.idleFileKB }, i), proc("haproxy", func(r *result) []int64 { return r.idleFileKB }, i), "")
		row("RSS MiB at 1k req/s, "+side, "%.1f", 0, proc("moat", func(r *result) []int64 { return r.loadedKB }, i), proc("haproxy", func(r *result) []int64 { return r.loadedKB }, i), "moat ≤ 20")
		row("of which RssAnon (heap, stacks)", "%.1f", 0, proc("moat", func(r *result) []int64 { return r.loadedAnonKB }, i), proc("haproxy", func(r *result) []int64 { return r.loadedAnonKB }, i), "")
		row("of which RssFile (executable, libraries)", "%.1f", 0, proc("moat", func(r *result) []int64 { return r.loadedFileKB }, i), proc("haproxy", func(r *result) []int64 { return r.loadedFileKB }, i), "")
		row("RSS MiB peak over the run, "+side, "%.1f", 0, proc("moat", func(r *result) []int64 { return r.peakKB }, i), proc("haproxy", func(r *result) []int64 { return r.peakKB }, i), "")
	}
	// The throughput phases interleave the paths within a repetition, so
	// a repetition's ratio compares figures of the same minutes; the ratio
	// of the medians above may take moat's and HAProxy's from different
	// repetitions.
	fmt.Fprint(w, "\nmoat/HAProxy in each repetition:")
	for _, m := range []struct {
		name string
		f    func(*result) float64
	}{{"max req/s", func(r *result) float64 { return r.maxRPS }}, {"bulk", func(r *result) float64 { return r.bulkMBs }}} {
		var v []string
		var rs []float64
		for _, r := range reps {
			if h := m.f(r["haproxy"]); h != 0 {
				rs = append(rs, m.f(r["moat"])/h)
				v = append(v, fmt.Sprintf("%.2f×", rs[len(rs)-1]))
			}
		}
		fmt.Fprintf(w, " %s %s (median %.2f×);", m.name, strings.Join(v, ", "), median(rs))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "\nEach repetition (latencies in µs):")
	fmt.Fprintln(w, "\n| rep | path | p99 uniform | p99 bursty | max req/s | bulk MB/s | new conn p50 | RSS MiB idle / at 1k req/s / peak (per process) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for i, r := range reps {
		for _, p := range []string{"direct", "moat", "haproxy"} {
			x := r[p]
			var rss []string
			for k := range x.idleKB {
				rss = append(rss, fmt.Sprintf("%.1f / %.1f / %.1f", float64(x.idleKB[k])/1024, float64(x.loadedKB[k])/1024, float64(x.peakKB[k])/1024))
			}
			fmt.Fprintf(w, "| %d | %s | %.0f | %.0f | %.0f | %.1f | %.0f | %s |\n", i+1, p, us(x.uniP99), us(x.burstP99), x.maxRPS, x.bulkMBs, us(x.connP50), strings.Join(rss, "; "))
		}
	}
	fmt.Fprintln(w, "\nThe throughput slices of each repetition (req/s, MB/s), in the order they ran; a path's figure is their median:")
	fmt.Fprintln(w)
	for i, r := range reps {
		for _, p := range []string{"direct", "moat", "haproxy"} {
			for _, s := range r[p].slices {
				fmt.Fprintf(w, "- rep %d, %s, %s\n", i+1, p, s)
			}
		}
	}
}

// fmtSlices lists the figures of a path's throughput slices, in the order
// they ran.
func fmtSlices(v []float64) string {
	var s []string
	for _, x := range v {
		s = append(s, fmt.Sprintf("%.0f", x))
	}
	return strings.Join(s, " ")
}
