// Command identitybench measures moat's identity and control plane against
// the targets of its issue: SVIDs signed per second per core (beside the raw
// ECDSA P-256 signing rate as the ceiling), the resident memory of an idle
// agent running as its own process, and the time one revocation takes to
// reach every agent watching the control plane. See README.md.
//
//	go run ./bench/identity                       # all three
//	go run ./bench/identity -run sign -sign-runs 7
//	go run ./bench/identity -run revoke -agents 200 -services 2000
//
// Everything it starts (processes, listeners on 127.0.0.1, temporary
// directories) is stopped and removed before it exits.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"
)

type options struct {
	run string
	dir string

	signRuns int
	signTime time.Duration

	moatBin    string
	rssSettle  time.Duration
	rssSamples int

	services    int
	agents      int
	revocations int
	setupProcs  int
	propTimeout time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.run, "run", "sign,rss,revoke", "which measurements to run, comma-separated: sign, rss, revoke")
	flag.StringVar(&o.dir, "dir", "", "parent of the temporary directories (default: the system's)")
	flag.IntVar(&o.signRuns, "sign-runs", 5, "signing: runs of each operation (the median is reported)")
	flag.DurationVar(&o.signTime, "sign-time", 2*time.Second, "signing: length of one run of one operation")
	flag.StringVar(&o.moatBin, "moat", "", "rss: moat binary to run (default: build ./cmd/moat into the temporary directory)")
	flag.DurationVar(&o.rssSettle, "rss-settle", 10*time.Second, "rss: how long the agent runs before sampling")
	flag.IntVar(&o.rssSamples, "rss-samples", 5, "rss: VmRSS samples, one a second")
	flag.IntVar(&o.services, "services", 10000, "revoke: registered services")
	flag.IntVar(&o.agents, "agents", 1000, "revoke: simulated agents, each joined and watching")
	flag.IntVar(&o.revocations, "revocations", 5, "revoke: revocations measured, one after another")
	flag.IntVar(&o.setupProcs, "setup-conc", 8, "revoke: concurrent calls while setting up")
	flag.DurationVar(&o.propTimeout, "prop-timeout", 30*time.Second, "revoke: give up on a revocation reaching every agent after this")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "identitybench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	parts := strings.Split(o.run, ",")
	for _, p := range parts {
		if p != "sign" && p != "rss" && p != "revoke" {
			return fmt.Errorf("-run: unknown measurement %q", p)
		}
	}
	printMachine()
	if slices.Contains(parts, "sign") {
		if err := benchSign(ctx, o); err != nil {
			return fmt.Errorf("sign: %w", err)
		}
	}
	if slices.Contains(parts, "rss") {
		if err := benchRSS(ctx, o); err != nil {
			return fmt.Errorf("rss: %w", err)
		}
	}
	if slices.Contains(parts, "revoke") {
		if err := benchRevoke(ctx, o); err != nil {
			return fmt.Errorf("revoke: %w", err)
		}
	}
	return nil
}

func printMachine() {
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	rev := "unknown"
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		rev = strings.TrimSpace(string(out))
	}
	fmt.Printf("machine: %d CPUs (%s), %s, load average %s; source at commit %s\n", numCPU(), model, goVersion(), load, rev)
}

// median of xs (xs is sorted in place).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	sort.Float64s(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// quantile of sorted ds by nearest rank.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(q*float64(len(ds))+0.999999) - 1
	i = max(0, min(i, len(ds)-1))
	return ds[i]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
