// Command waf replays a JSON-lines corpus of attack and benign HTTP requests
// through moat's WAF at its default settings and reports how many of each
// were blocked, per category and overall, with the CPU time spent. See
// README.md.
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

	"moat/internal/waf"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/waf:", err)
		os.Exit(1)
	}
}

type request struct {
	ID       string `json:"id"`
	Category string `json:"category"`
	Attack   bool   `json:"attack"`
	Method   string `json:"method"`
	Target   string `json:"target"`
	Headers  []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"headers"`
	Body    string `json:"body"`
	BodyB64 string `json:"body_b64"`
}

// raw renders the request as it would arrive on the wire, as the
// gateway's HTTP server would read it.
func (c *request) raw() ([]byte, error) {
	body := []byte(c.Body)
	if c.BodyB64 != "" {
		d, err := base64.StdEncoding.DecodeString(c.BodyB64)
		if err != nil {
			return nil, fmt.Errorf("request %q: body_b64: %w", c.ID, err)
		}
		body = d
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: app.example\r\n", c.Method, c.Target)
	for _, h := range c.Headers {
		switch strings.ToLower(h.Name) {
		case "host", "content-length", "transfer-encoding", "connection":
			continue
		}
		fmt.Fprintf(&b, "%s: %s\r\n", h.Name, h.Value)
	}
	if len(body) > 0 || c.Method == "POST" || c.Method == "PUT" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("Connection: close\r\n\r\n")
	b.Write(body)
	return b.Bytes(), nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type tally struct{ blocked, total int }

func run() error {
	path := flag.String("corpus", "", "JSON-lines request corpus (required)")
	paranoia := flag.Int("paranoia", 0, "blocking paranoia level (0: the default)")
	stock := flag.Bool("stock", false, "run CRS as shipped, without moat's rules")
	list := flag.Bool("list", false, "print each benign request blocked and each attack let through")
	flag.Parse()
	if *path == "" {
		return fmt.Errorf("-corpus: want a JSON-lines file")
	}
	reqs, err := readCorpus(*path)
	if err != nil {
		return err
	}
	w, err := waf.New(waf.Config{Paranoia: *paranoia, StockCRS: *stock})
	if err != nil {
		return err
	}
	defer w.Close()

	cats := map[string]*tally{}
	var attacks, benign tally
	refused := 0
	start, cpu0 := time.Now(), cpuTime()
	for i := range reqs {
		c := &reqs[i]
		blocked, ids, err := judge(w, c)
		if err != nil {
			// What Go's HTTP server refuses never reaches the WAF; it is
			// not forwarded either, but it is not a WAF block.
			refused++
		}
		t := cats[c.Category]
		if t == nil {
			t = &tally{}
			cats[c.Category] = t
		}
		t.total++
		overall := &benign
		if c.Attack {
			overall = &attacks
		}
		overall.total++
		if blocked {
			t.blocked++
			overall.blocked++
		}
		if *list && blocked != c.Attack {
			fmt.Printf("%s %s attack=%v blocked=%v rules %v\n", c.Category, c.ID, c.Attack, blocked, ids)
		}
	}
	wall, cpu := time.Since(start), cpuTime()-cpu0

	names := make([]string, 0, len(cats))
	for n := range cats {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Printf("%-26s blocked %5d of %5d\n", n, cats[n].blocked, cats[n].total)
	}
	fmt.Printf("attacks blocked %d/%d (%.2f%%), benign blocked %d/%d (%.2f%%), %d refused by the HTTP parser\n",
		attacks.blocked, attacks.total, pct(attacks), benign.blocked, benign.total, pct(benign), refused)
	fmt.Printf("%d requests in %v wall, %v CPU (%.2f ms CPU a request)\n",
		len(reqs), wall.Round(time.Millisecond), cpu.Round(time.Millisecond),
		float64(cpu.Microseconds())/1000/float64(max(1, len(reqs))))
	return nil
}

func pct(t tally) float64 { return 100 * float64(t.blocked) / float64(max(1, t.total)) }

// judge parses the request as the gateway's server would and runs it
// through a WAF transaction.
func judge(w *waf.WAF, c *request) (bool, []int, error) {
	raw, err := c.raw()
	if err != nil {
		return false, nil, err
	}
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return false, nil, err
	}
	tx := w.Begin(nil)
	defer tx.Close()
	v, err := tx.Request(r, "192.0.2.10:40000")
	if err != nil {
		return false, nil, err
	}
	_, _ = io.Copy(io.Discard, r.Body)
	return v.Block, v.RuleIDs, nil
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
