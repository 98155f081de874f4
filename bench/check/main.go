// Command bench generates Terraform projects of a given number of
// resources, checks each end to end with moat check (read, evaluate, model,
// reachability, rules) and prints the time taken; with -tfsec it runs tfsec
// on the same directories for comparison.
//
//	go run ./bench/check -sizes 10000,50000 -tfsec
//
// With -corpus DIR it scores precision and recall per family on per-rule
// positive and negative fixtures instead (see corpus.go).
package main

import (
	"bytes"
	"context"
	"encoding/json"
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
	corpus := flag.String("corpus", "", "score precision and recall per family on a folder of per-rule fixtures (QUERY/test/…, KICS's layout) instead of timing")
	verbose := flag.Bool("v", false, "with -corpus: list every miss and false alarm")
	modules := flag.String("modules", "", "with -corpus: resolve registry modules terraform-aws-modules/NAME/aws from DIR/terraform-aws-NAME, as terraform init would (e.g. ../shared/tf-wild; several folders separated as in PATH, the first that holds a module wins)")
	flag.Parse()
	if *corpus != "" {
		if _, err := runCorpus(*corpus, *modules, os.Stdout, *verbose); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
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
	fmt.Printf("%-8s %-10s %-22s %-9s %-17s %s\n", "size", "resources", "moat check (wall, cpu)", "findings", "path cases", "tfsec")
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
		found, fa := pathCases(rep)
		line := fmt.Sprintf("%-8d %-10d %-22s %-9d %-17s", n, count,
			fmt.Sprintf("%s (cpu %s)", best.Round(time.Millisecond), bestCPU.Round(time.Millisecond)), len(rep.Findings),
			fmt.Sprintf("%d/%d, %d false", found, 2*cells/10, fa))
		if tfsec != "" {
			d, cpu, out, err := runTfsec(tfsec, pd)
			if err != nil {
				line += " error: " + err.Error()
			} else {
				split, db, tfa := tfsecPathCases(out)
				line += fmt.Sprintf(" %s (cpu %s, %.1fx moat's cpu); split ranges %d/%d; open 5432 flagged on %d groups, %d of them unreachable",
					d.Round(time.Millisecond), cpu.Round(time.Millisecond), float64(cpu)/float64(bestCPU), split, cells/10, db, tfa)
			}
		}
		fmt.Println(line)
	}
	return nil
}

// pathCases counts the planted path cases moat check reports: the split
// range SSH bastions (every 10th cell) and the public databases (every 10th
// cell, offset 5); and its false alarms: the private databases, which carry
// the same open 5432 rule but are not reachable.
func pathCases(rep *check.Report) (found, falseAlarms int) {
	for _, f := range rep.Findings {
		if f.RuleID != check.RuleExposedPort {
			continue
		}
		switch {
		case strings.HasPrefix(f.Address, "aws_instance.bastion_"), strings.HasPrefix(f.Address, "aws_db_instance.db_"):
			found++
		case strings.HasPrefix(f.Address, "aws_db_instance.private"):
			falseAlarms++
		}
	}
	return found, falseAlarms
}

// runTfsec runs tfsec on dir and returns its wall and CPU time.
func runTfsec(bin, dir string) (time.Duration, time.Duration, []byte, error) {
	cmd := exec.Command(bin, "--no-color", "--soft-fail", "--format", "json", "--no-module-downloads", dir)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &bytes.Buffer{}
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, 0, nil, err
	}
	wall := time.Since(start)
	return wall, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), out.Bytes(), nil
}

// tfsecPathCases reads tfsec's JSON results on the planted cases: the split
// range groups it flags as open to the internet, and the 0.0.0.0/0:5432
// groups it flags, which are unreachable in every cell but those with a
// public database (a false alarm there).
func tfsecPathCases(out []byte) (split, dbFlagged, falseAlarms int) {
	var res struct {
		Results []struct {
			RuleID   string `json:"rule_id"`
			Resource string `json:"resource"`
		} `json:"results"`
	}
	if json.Unmarshal(out, &res) != nil {
		return -1, -1, -1
	}
	seen := map[string]bool{}
	for _, r := range res.Results {
		if r.RuleID != "AVD-AWS-0107" || seen[r.Resource] {
			continue
		}
		seen[r.Resource] = true
		if strings.HasPrefix(r.Resource, "aws_security_group.split_") {
			split++
		}
		if c, ok := strings.CutPrefix(r.Resource, "aws_security_group.db"); ok {
			dbFlagged++
			if n, err := strconv.Atoi(c); err == nil && n%10 != 5 {
				falseAlarms++
			}
		}
	}
	return split, dbFlagged, falseAlarms
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
