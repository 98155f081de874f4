// Command waf measures moat's WAF detection on a JSON-lines corpus of
// attack and benign HTTP requests. By default it starts moat's real
// gateway (TLS listener, routing, WAF, reverse proxy to a backend that
// answers 200) on loopback and sends each request over TLS exactly as the
// corpus gives it; a request counts as blocked when the gateway answers
// 403. -fast replays the same requests through internal/waf alone, in
// process, for quick tuning rounds. It prints the block rate per category
// and overall, checks them against the detection goals, and reports the
// CPU time spent. See README.md.
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench/waf:", err)
		os.Exit(1)
	}
}

// The detection goals (issue 17): overall, and for every category.
const (
	goalAttacks         = 99.6 // % of attacks blocked, at least
	goalAttacksCategory = 95.0
	goalBenign          = 0.5 // % of benign requests blocked, at most
	goalBenignCategory  = 1.0
)

// errGoals is returned when -goals is set and a goal is missed.
var errGoals = errors.New("detection goals not met")

type request struct {
	ID       string   `json:"id"`
	Group    string   `json:"group,omitempty"` // the source: a payload, or a captured file
	Category string   `json:"category"`
	Attack   bool     `json:"attack"`
	Method   string   `json:"method"`
	Target   string   `json:"target"`
	Headers  []header `json:"headers"`
	Body     string   `json:"body"`
	BodyB64  string   `json:"body_b64"`
	// A generated variant's mutation and carrier (see variants.go).
	Mutation string `json:"mutation,omitempty"`
	Carrier  string `json:"carrier,omitempty"`
}

type header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// raw renders the request as it arrives on the wire. Hop-by-hop and
// framing headers in the corpus are replaced by the harness's own.
func (c *request) raw(keepAlive bool) ([]byte, error) {
	body := []byte(c.Body)
	if c.BodyB64 != "" {
		d, err := base64.StdEncoding.DecodeString(c.BodyB64)
		if err != nil {
			return nil, fmt.Errorf("request %q: body_b64: %w", c.ID, err)
		}
		body = d
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: app.example\r\n", c.Method, c.Target)
	for _, h := range c.Headers {
		switch strings.ToLower(h.Name) {
		case "host", "content-length", "transfer-encoding", "connection", "keep-alive":
			continue
		}
		fmt.Fprintf(&b, "%s: %s\r\n", h.Name, h.Value)
	}
	if len(body) > 0 || c.Method == "POST" || c.Method == "PUT" || c.Method == "PATCH" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	if !keepAlive {
		b.WriteString("Connection: close\r\n")
	}
	b.WriteString("\r\n")
	b.Write(body)
	return []byte(b.String()), nil
}

// result is what happened to one request.
type result struct {
	took       time.Duration
	status     int    // 0 when no answer came
	rules      []int  // matched rule IDs, when known (fast mode)
	discounted []int  // rules the context scorers discounted (fast mode)
	matched    string // the first matched variable and value, when known
	err        error
}

func (r result) blocked() bool { return r.status == 403 }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type tally struct {
	blocked, total int
	attack         bool
}

func (t tally) pct() float64 { return 100 * float64(t.blocked) / float64(max(1, t.total)) }

func run(args []string, stdout io.Writer) error {
	fl := flag.NewFlagSet("bench/waf", flag.ContinueOnError)
	path := fl.String("corpus", "internal/waf/testdata/corpus.jsonl", "JSON-lines request corpus")
	fast := fl.Bool("fast", false, "replay through internal/waf in process instead of the real gateway")
	paranoia := fl.Int("paranoia", 0, "blocking paranoia level (0: the default)")
	stock := fl.Bool("stock", false, "run CRS as shipped, without moat's rules (implies -fast)")
	list := fl.Bool("list", false, "print each benign request blocked and each attack let through")
	workers := fl.Int("workers", 4, "requests in flight")
	limit := fl.Int("n", 0, "send only the first n requests (0: all)")
	goals := fl.Bool("goals", false, "exit non-zero when a detection goal is missed")
	slowest := fl.Int("slowest", 0, "list the n requests that took longest (run with -workers 1 for honest times)")
	folds := fl.Int("folds", 0, "also report each category on k folds split by source (0: none)")
	by := fl.String("by", "", "also report generated variants by \"mutation\", \"carrier\" or both (\"mutation,carrier\")")
	variants := fl.Bool("variants", false, "replay variants of the corpus's payloads and generated benign requests instead of the corpus (see variants.go)")
	gen := fl.String("gen", "", "write the variants to this file (the corpus format) and exit")
	perPayload := fl.Int("per-payload", 3, "with -variants or -gen: variants of each payload")
	if err := fl.Parse(args); err != nil {
		return err
	}
	reqs, err := readCorpus(*path)
	if err != nil {
		return err
	}
	if *gen != "" || *variants {
		reqs = genVariants(reqs, *perPayload)
		if *gen != "" {
			if err := writeCorpus(*gen, reqs); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "wrote %d requests to %s\n", len(reqs), *gen)
			return nil
		}
		*path = "variants of " + *path
	}
	if *limit > 0 && *limit < len(reqs) {
		reqs = reqs[:*limit]
	}
	var judge judgeFunc
	mode := "the real gateway (TLS, routing, WAF, proxy)"
	if *fast || *stock {
		mode = "internal/waf in process"
		j, closeFn, err := newWAFJudge(*paranoia, *stock)
		if err != nil {
			return err
		}
		defer closeFn()
		judge = j
	} else {
		j, closeFn, err := newGatewayJudge(*paranoia)
		if err != nil {
			return err
		}
		defer closeFn()
		judge = j
	}

	start, cpu0 := time.Now(), cpuTime()
	results := replay(reqs, judge, max(1, *workers))
	wall, cpu := time.Since(start), cpuTime()-cpu0

	cats := map[string]*tally{}
	var attacks, benign tally
	attacks.attack = true
	noAnswer := 0
	other := map[int]int{} // answers other than 200 and 403
	for i := range reqs {
		c, res := &reqs[i], results[i]
		switch res.status {
		case 0:
			noAnswer++
		case 200, 403:
		default:
			other[res.status]++
		}
		t := cats[c.Category]
		if t == nil {
			t = &tally{attack: c.Attack}
			cats[c.Category] = t
		}
		overall := &benign
		if c.Attack {
			overall = &attacks
		}
		t.total++
		overall.total++
		if res.blocked() {
			t.blocked++
			overall.blocked++
		}
		if *list && (res.blocked() != c.Attack || res.status != 200 && res.status != 403) {
			fmt.Fprintf(stdout, "%s %s attack=%v status=%d rules %v %s\n", c.Category, c.ID, c.Attack, res.status, res.rules, res.matched)
		}
	}

	fmt.Fprintf(stdout, "%d requests from %s through %s\n", len(reqs), *path, mode)
	names := make([]string, 0, len(cats))
	for n := range cats {
		names = append(names, n)
	}
	sort.Strings(names)
	met := true
	for _, n := range names {
		t := cats[n]
		ok := t.pct() >= goalAttacksCategory
		goal := fmt.Sprintf("goal ≥ %v%%", goalAttacksCategory)
		if !t.attack {
			ok = t.pct() <= goalBenignCategory
			goal = fmt.Sprintf("goal ≤ %v%%", goalBenignCategory)
		}
		met = met && ok
		fmt.Fprintf(stdout, "%-26s %-7s blocked %5d of %5d (%6.2f%%)  %s %s\n", n, kind(t.attack), t.blocked, t.total, t.pct(), goal, mark(ok))
	}
	okA, okB := attacks.pct() >= goalAttacks, benign.pct() <= goalBenign
	met = met && okA && okB
	fmt.Fprintf(stdout, "attacks blocked %d/%d (%.2f%%, goal ≥ %v%% %s), benign blocked %d/%d (%.2f%%, goal ≤ %v%% %s), %d without an answer\n",
		attacks.blocked, attacks.total, attacks.pct(), goalAttacks, mark(okA),
		benign.blocked, benign.total, benign.pct(), goalBenign, mark(okB), noAnswer)
	// What a sample of this size says about a larger set drawn the same
	// way (the held-out rest of a corpus): 95% Wilson score intervals.
	aLo, aHi := wilson(attacks.blocked, attacks.total)
	bLo, bHi := wilson(benign.blocked, benign.total)
	fmt.Fprintf(stdout, "95%% intervals: attacks blocked %.2f%%-%.2f%%, benign blocked %.2f%%-%.2f%%\n", aLo, aHi, bLo, bHi)
	if len(other) > 0 {
		codes := make([]int, 0, len(other))
		for c := range other {
			codes = append(codes, c)
		}
		sort.Ints(codes)
		fmt.Fprintf(stdout, "answered neither 200 nor 403 (not counted as blocked):")
		for _, c := range codes {
			fmt.Fprintf(stdout, " %d×%d", other[c], c)
		}
		fmt.Fprintln(stdout)
	}
	fmt.Fprintf(stdout, "%v wall, %v CPU in this process (%.2f ms CPU a request)\n",
		wall.Round(time.Millisecond), cpu.Round(time.Millisecond),
		float64(cpu.Microseconds())/1000/float64(max(1, len(reqs))))
	if *folds > 1 {
		reportFolds(stdout, reqs, results, *folds)
	}
	if *by != "" {
		for _, b := range strings.Split(*by, ",") {
			if err := reportBy(stdout, reqs, results, b); err != nil {
				return err
			}
		}
	}
	if *slowest > 0 {
		idx := make([]int, len(results))
		for i := range idx {
			idx[i] = i
		}
		sort.Slice(idx, func(a, b int) bool { return results[idx[a]].took > results[idx[b]].took })
		for _, i := range idx[:min(*slowest, len(idx))] {
			fmt.Fprintf(stdout, "slow: %v %s %s %s (%d body bytes)\n", results[i].took.Round(time.Millisecond), reqs[i].Category, reqs[i].ID, reqs[i].Method, len(reqs[i].Body)+len(reqs[i].BodyB64)*3/4)
		}
	}
	if *goals && !met {
		return errGoals
	}
	return nil
}

// wilson is the 95% Wilson score interval of k successes in n trials, in
// percent.
func wilson(k, n int) (lo, hi float64) {
	if n == 0 {
		return 0, 100
	}
	const z = 1.959964
	p, nf := float64(k)/float64(n), float64(n)
	d := 1 + z*z/nf
	c := (p + z*z/(2*nf)) / d
	h := z * math.Sqrt(p*(1-p)/nf+z*z/(4*nf*nf)) / d
	return 100 * max(0, c-h), 100 * min(1, c+h)
}

func kind(attack bool) string {
	if attack {
		return "attack"
	}
	return "benign"
}

func mark(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// judgeFunc sends one request and reports what happened to it.
type judgeFunc func(c *request) result

// replay runs every request through judge, workers at a time, and returns
// the results in corpus order.
func replay(reqs []request, judge judgeFunc, workers int) []result {
	results := make([]result, len(reqs))
	next := make(chan int)
	done := make(chan struct{})
	for range workers {
		go func() {
			for i := range next {
				t0 := time.Now()
				results[i] = judge(&reqs[i])
				results[i].took = time.Since(t0)
			}
			done <- struct{}{}
		}()
	}
	for i := range reqs {
		next <- i
	}
	close(next)
	for range workers {
		<-done
	}
	return results
}

func readCorpus(name string) ([]request, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []request
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for line := 1; sc.Scan(); line++ {
		var c request
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}
