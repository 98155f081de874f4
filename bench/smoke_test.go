// Package bench holds no code: its test runs every harness under bench/ in
// a smoke mode of a few seconds, as its README tells a user to run it, and
// checks only that it printed its figures. A renamed flag, a moved file or
// a peer the harness can no longer start then fails CI instead of the next
// measurement.
package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// root is the module root, where the READMEs' commands run.
const root = ".."

// harness is one command of a README, shrunk to a smoke run.
type harness struct {
	name string
	// pkg is built and run with args; or script is run with bash.
	pkg    string
	args   []string
	script []string
	env    []string
	// want are patterns each of which the output must match: the figures.
	want []string
}

var harnesses = []harness{
	{name: "audit", pkg: "./bench/audit", args: []string{"-n", "2000", "-batch", "100", "-records", "5"},
		want: []string{`build: 2000 entries in batches of 100: \S+ \(\d+ entries/s\)`, `record: 5 durable single appends`, `verify: \d+ entries: `, `proof of entry \d+: \d+ hashes`}},
	{name: "check", pkg: "./bench/check", args: []string{"-sizes", "200", "-runs", "1"},
		want: []string{`(?m)^200\s+200\s+\S+ \(cpu \S+\)\s+\d+\s+\d+/\d+`}},
	{name: "flow", pkg: "./bench/flow", args: []string{"-dir", "$TMP/flows", "-records", "20000", "-runs", "1"},
		want: []string{`20000 records: \d+ records/s wall, \d+ records per CPU-second`, `all time\s+min\s+\S+ ms\s+median\s+\S+ ms`}},
	{name: "flow-sealed", pkg: "./bench/flow", args: []string{"-dir", "$TMP/flows-sealed", "-records", "20000", "-runs", "1", "-sealed"},
		want: []string{`20000 records: \d+ records/s wall, \d+ records per CPU-second`, `all time\s+min\s+\S+ ms\s+median\s+\S+ ms`}},
	{name: "flow-mem", pkg: "./bench/flow", args: []string{"-mem", "-days", "3", "-per-day", "300", "-idle", "1ms"},
		want: []string{`unbounded .*peak\s+[\d.]+ MiB\s+after load\s+[\d.]+ MiB\s+idle\s+[\d.]+ MiB`, `default .*peak\s+[\d.]+ MiB\s+after load\s+[\d.]+ MiB\s+idle\s+[\d.]+ MiB`}},
	{name: "identity", pkg: "./bench/identity", args: []string{"-run", "sign,rss,revoke", "-sign-runs", "1", "-sign-time", "200ms",
		"-rss-settle", "1s", "-rss-samples", "1", "-services", "50", "-agents", "5", "-revocations", "1"},
		want: []string{`CA.SignPublicKey \(sign, then validate\)\s+\d+`, `agent VmRSS median [\d.]+ MB`, `median over 1 revocations: committed`}},
	{name: "ui", pkg: "./bench/ui", args: []string{"-services", "40", "-edges", "150", "-runs", "1", "-update", "20", "-dir", "$TMP"},
		want: []string{`rollup \(flowstore.Store.Edges\)\s+[\d.]+ ms\s+150 edges`, `ratio peer/rollup\s+[\d.]+x`, `dashboard backend \(/api/graph, layout\)\s+[\d.]+ ms`,
			`navigation to graph painted\s+[\d.]+ ms`, `script applying the delta\s+[\d.]+ ms`}},
	{name: "waf", pkg: "./bench/waf", args: []string{"-corpus", "internal/waf/testdata/corpus.jsonl"},
		want: []string{`attacks blocked \d+/\d+ \(`, `benign blocked \d+/\d+ \(`, `95% intervals: attacks blocked [\d.]+%-[\d.]+%, benign blocked [\d.]+%-[\d.]+%`}},
	// The generated variants of the committed subset, in process, on two
	// folds, by mutation and carrier.
	{name: "waf-variants", pkg: "./bench/waf", args: []string{"-fast", "-variants", "-folds", "2", "-by", "mutation,carrier", "-corpus", "internal/waf/testdata/corpus.jsonl"},
		want: []string{`\d+ requests from variants of internal/waf/testdata/corpus.jsonl`, `attacks blocked \d+/\d+ \(`, `2 folds by source`,
			`(?m)^attack overall\s+\d+/\d+`, `(?m)^discount 94\d: benign passed\s+\d+\s+\d+`, `(?m)^gen/sqli sql-comment-space\s+attack\s+blocked\s+\d+ of\s+\d+`,
			`(?m)^gen/xss cookie\s+attack\s+blocked\s+\d+ of\s+\d+`, `(?m)^gen/benign-rich-text json\s+benign\s+blocked\s+\d+ of\s+\d+`}},
	{name: "gateway", script: []string{"bench/gateway/run.sh"}, env: []string{"SMOKE=1"},
		want: []string{`benign GET\s+\d+\s+\d+\s+\d+\s+\d+\s+[\d.]+x\s+\d+%`, `form POST\s+\d+\s+\d+\s+\d+\s+\d+\s+[\d.]+x`, `1 KB JSON POST\s+\d+\s+\d+\s+\d+\s+\d+\s+[\d.]+x`,
			`blocked attack\s+\d+\s+\d+\s+\d+\s+\d+\s+[\d.]+x`, `moat \(WAF on\)\s+attacks blocked\s+\d+/\d+`, `nginx\+ModSecurity\s+attacks blocked\s+\d+/\d+`, `runs OWASP_CRS/[\d.]+`,
			`moat WAF on\s+\d+\s+\d+\s+\d+\s+\d+\s+\d+\s+\d+`, `moat WAF off\s+\d+\s+\d+\s+\d+\s+\d+\s+\d+\s+\d+`}},
	// bench/mesh: real agents and control plane, HAProxy; ports come from
	// the kernel or are found free, so it needs no namespace of its own.
	{name: "mesh", script: []string{"bench/mesh/run.sh"}, env: []string{"SMOKE=1"},
		want: []string{`\| added p99 µs, 1 KB at 1k req/s uniform \| 0 \| -?\d+ \| -?\d+ \| `, `\| added p99 µs, 1 KB at 1k req/s bursty \| 0 \| -?\d+ \| -?\d+ \| `,
			`\| max req/s \| \d+ \| \d+ \| \d+ \|`, `\| host CPU µs per request, max req/s phase \(all processes, both cores\) \| [\d.]+ \| [\d.]+ \| [\d.]+ \|`, `\| proxy CPU µs per request, max req/s phase \(both processes\) \| [\d.]+ \| [\d.]+ \| [\d.]+ \|`, `\| host idle %, max req/s phase \| [\d.]+ \| [\d.]+ \| [\d.]+ \|`,
			`\| proxy wait for a core µs per request, max req/s phase \(both processes, runnable\) \| [\d.]+ \| [\d.]+ \| [\d.]+ \|`, `\| backend wait for a core µs per request, max req/s phase \| [\d.]+ \| [\d.]+ \| [\d.]+ \|`,
			`\| bulk MB/s \| [\d.]+ \| [\d.]+ \| [\d.]+ \|`, `\| proxy CPU ms per GiB, bulk \(both processes\) \| [\d.]+ \| [\d.]+ \| [\d.]+ \|`, `\| host idle %, bulk \| [\d.]+ \| [\d.]+ \| [\d.]+ \|`,
			`\| added new conn p50 µs \| 0 \| -?\d+ \| -?\d+ \|`,
			`\| RSS MiB idle, source side \| 0.0 \| [\d.]+ \| [\d.]+ \|`, `\| RSS MiB at 1k req/s, destination side \| 0.0 \| [\d.]+ \| [\d.]+ \|`,
			`\| of which RssAnon \(heap, stacks\) \| 0.0 \| [\d.]+ \| [\d.]+ \|`, `\| of which RssFile \(executable, libraries\) \| 0.0 \| [\d.]+ \| [\d.]+ \|`}},
}

// goBenchmarks are the go test benchmarks the READMEs quote: each runs
// once (-benchtime 1x) and must report a figure.
var goBenchmarks = []struct{ pkg, bench string }{
	{"./internal/flow/flowstore", "Ingest"},
	{"./internal/seal", "."},
	{"./bench/seal", "."},
	{"./internal/store", "BenchmarkStore"},
	{"./internal/waf", "GET|JSON1K$|Form$|RxEngines/re2/96"},
}

func TestSmoke(t *testing.T) {
	bin := t.TempDir()
	for _, h := range harnesses {
		t.Run(h.name, func(t *testing.T) {
			tmp := t.TempDir()
			var cmd *exec.Cmd
			if h.pkg != "" {
				exe := filepath.Join(bin, h.name)
				build := exec.Command("go", "build", "-o", exe, h.pkg)
				build.Dir = root
				if out, err := build.CombinedOutput(); err != nil {
					t.Fatalf("go build %s: %v\n%s", h.pkg, err, out)
				}
				args := make([]string, len(h.args))
				for i, a := range h.args {
					args[i] = strings.ReplaceAll(a, "$TMP", tmp)
				}
				cmd = exec.Command(exe, args...)
			} else {
				name, args := h.script[0], h.script[1:]
				if strings.HasSuffix(name, ".sh") {
					name, args = "bash", h.script
				}
				cmd = exec.Command(name, args...)
			}
			cmd.Dir = root
			cmd.Env = append(os.Environ(), h.env...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", cmd, err, out)
			}
			for _, w := range h.want {
				if !regexp.MustCompile(w).Match(out) {
					t.Errorf("%s printed no figure matching %q", h.name, w)
				}
			}
			if t.Failed() {
				t.Logf("output:\n%s", out)
			}
		})
	}
	for _, b := range goBenchmarks {
		t.Run("go-test-bench"+strings.TrimPrefix(b.pkg, "."), func(t *testing.T) {
			cmd := exec.Command("go", "test", "-run", "^$", "-bench", b.bench, "-benchtime", "1x", b.pkg)
			cmd.Dir = root
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", cmd, err, out)
			}
			if !regexp.MustCompile(`(?m)^Benchmark\S+\s+1\s+-?[\d.]+ \S+`).Match(out) {
				t.Errorf("%s reported no benchmark:\n%s", cmd, out)
			}
		})
	}
}
