// Command audit measures the audit log at scale: the batched append rate
// while building a log of -n entries, the durable single-entry rate, the
// read-only open, Verify and VerifyAllCheckpoints times, and proof size and
// check time. See README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"moat/internal/audit"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench/audit:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bench/audit", flag.ContinueOnError)
	n := fs.Int("n", 1_000_000, "entries in the log")
	batch := fs.Int("batch", 1000, "entries per AppendBatch while building")
	records := fs.Int("records", 200, "durable single Record calls to time after building")
	dir := fs.String("dir", "", "directory for the log (default: a new temporary directory, removed after)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "moat-audit-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	logDir := filepath.Join(*dir, audit.DirName)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	fmt.Fprintf(out, "go %s %s/%s, %d CPUs, GOMAXPROCS %d\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0))

	l, err := audit.Open(audit.Config{Dir: logDir, Logger: quiet})
	if err != nil {
		return err
	}
	es := make([]audit.Entry, *batch)
	t0 := time.Now()
	for i := 0; i < *n; i += *batch {
		k := min(*batch, *n-i)
		for j := 0; j < k; j++ {
			es[j] = audit.Entry{Actor: "spiffe://example.org/admin", Role: "admin", Action: "policy.apply",
				Target: fmt.Sprintf("policy-%d", i+j), Result: "ok", Detail: map[string]string{"rules": "12"}}
		}
		if _, err := l.AppendBatch(ctx, es[:k]); err != nil {
			return err
		}
	}
	d := time.Since(t0)
	fmt.Fprintf(out, "build: %d entries in batches of %d: %v (%.0f entries/s)\n", *n, *batch, d.Round(time.Millisecond), float64(*n)/d.Seconds())

	t0 = time.Now()
	for i := 0; i < *records; i++ {
		if err := l.Record(ctx, audit.Entry{Actor: "spiffe://example.org/admin", Action: "token.create", Result: "ok"}); err != nil {
			return err
		}
	}
	d = time.Since(t0)
	fmt.Fprintf(out, "record: %d durable single appends (3 fsyncs + 1 signature each): %v (%.0f entries/s, %v each)\n",
		*records, d.Round(time.Millisecond), float64(*records)/d.Seconds(), (d / time.Duration(max(*records, 1))).Round(time.Microsecond))
	if err := l.Close(); err != nil {
		return err
	}
	for _, f := range []string{"entries", "hashes", "checkpoints"} {
		if st, err := os.Stat(filepath.Join(logDir, f)); err == nil {
			fmt.Fprintf(out, "size: %-11s %8.1f MB\n", f, float64(st.Size())/1e6)
		}
	}

	v, err := audit.LoadVerifier(filepath.Join(logDir, audit.VerifierKeyFile))
	if err != nil {
		return err
	}
	t0 = time.Now()
	r, err := audit.Open(audit.Config{Dir: logDir, Verifier: v, ReadOnly: true, Logger: quiet})
	if err != nil {
		return err
	}
	defer r.Close()
	fmt.Fprintf(out, "open (read-only, scans the entries file): %v\n", time.Since(t0).Round(time.Millisecond))

	total := r.Size()
	t0 = time.Now()
	if err := r.Verify(ctx); err != nil {
		return err
	}
	d = time.Since(t0)
	fmt.Fprintf(out, "verify: %d entries: %v (%.0f entries/s)\n", total, d.Round(time.Millisecond), float64(total)/d.Seconds())

	t0 = time.Now()
	if err := r.VerifyAllCheckpoints(ctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "verify --all-checkpoints: %v\n", time.Since(t0).Round(time.Millisecond))

	cp, err := r.Checkpoint()
	if err != nil {
		return err
	}
	vkey, err := os.ReadFile(filepath.Join(logDir, audit.VerifierKeyFile))
	if err != nil {
		return err
	}
	p, err := r.Prove(total / 2)
	if err != nil {
		return err
	}
	text, err := p.MarshalText()
	if err != nil {
		return err
	}
	t0 = time.Now()
	if _, err := audit.CheckProof(cp, string(vkey), text); err != nil {
		return err
	}
	fmt.Fprintf(out, "proof of entry %d: %d hashes, %d bytes of text, checked in %v\n", total/2, len(p.Hashes), len(text), time.Since(t0).Round(time.Microsecond))
	return nil
}
