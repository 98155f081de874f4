// Command bench generates Terraform projects of a given number of
// resources, checks each end to end with moat check (read, evaluate, model,
// reachability, rules) and prints the time taken; with -tfsec it runs tfsec
// on the same directories for comparison.
//
//	go run ./bench/check -sizes 10000,50000 -tfsec
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"moat/internal/check"
)

func main() {
	sizes := flag.String("sizes", "10000,50000", "comma-separated resource counts")
	runs := flag.Int("runs", 3, "timed runs per size (the best is reported)")
	tfsec := flag.String("tfsec", "", "path of a tfsec binary to compare with (empty: skip)")
	keep := flag.String("dir", "", "generate into this directory and keep it (default: a temporary one)")
	prof := flag.String("cpuprofile", "", "write a CPU profile of the checks to this file")
	flag.Parse()
	if *prof != "" {
		f, err := os.Create(*prof)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(*sizes, *runs, *tfsec, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(sizes string, runs int, tfsec, keep string) error {
	dir := keep
	if dir == "" {
		d, err := os.MkdirTemp("", "moat-check-bench")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	fmt.Printf("GOMAXPROCS=%d %s/%s %s\n", runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Printf("%-8s %-10s %-22s %-10s %-10s %s\n", "size", "resources", "moat check (wall, cpu)", "findings", "path-cases", "tfsec")
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("bad size %q", s)
		}
		pd := filepath.Join(dir, fmt.Sprintf("p%d", n))
		count, cells, err := generate(pd, n)
		if err != nil {
			return err
		}
		var best, bestCPU time.Duration
		var rep *check.Report
		for i := 0; i < runs; i++ {
			runtime.GC()
			start, cpu0 := time.Now(), cpuTime()
			rep, err = check.Run(context.Background(), check.Config{Paths: []string{pd}})
			if err != nil {
				return err
			}
			if d := time.Since(start); best == 0 || d < best {
				best = d
			}
			if d := cpuTime() - cpu0; bestCPU == 0 || d < bestCPU {
				bestCPU = d
			}
		}
		found := pathCases(rep)
		line := fmt.Sprintf("%-8d %-10d %-22s %-10d %-10s", n, count,
			fmt.Sprintf("%s (cpu %s)", best.Round(time.Millisecond), bestCPU.Round(time.Millisecond)), len(rep.Findings),
			fmt.Sprintf("%d/%d", found, 2*cells/10))
		if tfsec != "" {
			d, out, err := runTfsec(tfsec, pd)
			if err != nil {
				line += " error: " + err.Error()
			} else {
				line += fmt.Sprintf(" %s (%.1fx), path cases found: %d/%d", d.Round(time.Millisecond), float64(d)/float64(best), tfsecPathCases(out), 2*cells/10)
			}
		}
		fmt.Println(line)
	}
	return nil
}

// pathCases counts the planted path cases moat check reports: the split
// range SSH (every 10th cell) and the public database (every 10th cell,
// offset 5); the private databases with the same open rule must not be.
func pathCases(rep *check.Report) int {
	n := 0
	for _, f := range rep.Findings {
		if f.RuleID != check.RuleExposedPort {
			continue
		}
		if strings.HasPrefix(f.Address, "aws_instance.bastion_") || strings.HasPrefix(f.Address, "aws_db_instance.db_") {
			n++
		}
	}
	return n
}

func runTfsec(bin, dir string) (time.Duration, []byte, error) {
	cmd := exec.Command(bin, "--no-color", "--soft-fail", "--format", "json", "--no-module-downloads", dir)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &bytes.Buffer{}
	start := time.Now()
	err := cmd.Run()
	return time.Since(start), out.Bytes(), err
}

// tfsecPathCases counts tfsec results on the planted split-range groups:
// it compares CIDRs as strings, so 0.0.0.0/1 + 128.0.0.0/1 is not "open".
func tfsecPathCases(out []byte) int {
	return bytes.Count(out, []byte(`aws_security_group.split_`)) / 2
}

// cpuTime is the CPU time (user and system) this process has used, which
// unlike wall time does not count waiting for a shared machine's cores.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
