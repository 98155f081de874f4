package waf

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
)

// The corpus test replays a JSON-lines sample of attack and benign HTTP
// requests (one object a line: category, attack, method, target, headers,
// body, body_b64) through the WAF at its default settings and checks
// detection against the gateway's goal: at least 97% of attacks blocked,
// at most 1% of benign requests blocked.
//
// testdata/corpus.jsonl is a fixed subset kept in the repository; -corpus
// points the test at a fuller file.
var (
	corpusFile = flag.String("corpus", "testdata/corpus.jsonl", "JSON-lines request corpus for TestCorpus")
	corpusDump = flag.String("corpus-dump", "", "write each corpus request's status and matched rules to this file")
)

// The gateway's detection goals (issue 17): at least 99.6% of attacks and
// at most 0.5% of benign requests blocked. On waf-dev's full sample moat
// blocks 99.94% of attacks and 0.47% of benign requests (stock CRS: 92.6%
// and 15.2%); on the committed subset 100% and 0.29% (1 of 339: a
// package.json deep in a CDN path). The test fails
// on attacks under the goal or benign requests over guardBenign; bench/waf
// measures the same through the real gateway on any corpus file.
const (
	goalAttacks = 99.6
	goalBenign  = 0.5
	guardBenign = 1.0
)

type corpusReq struct {
	ID       string `json:"id"`
	Category string `json:"category"`
	Attack   bool   `json:"attack"`
	Method   string `json:"method"`
	Target   string `json:"target"`
	Proto    string `json:"proto"`
	Headers  []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"headers"`
	Body    string `json:"body"`
	BodyB64 string `json:"body_b64"`
}

// raw renders the request as it would arrive on the wire.
func (c *corpusReq) raw() []byte {
	var b bytes.Buffer
	body := []byte(c.Body)
	if c.BodyB64 != "" {
		if d, err := base64.StdEncoding.DecodeString(c.BodyB64); err == nil {
			body = d
		}
	}
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
	return b.Bytes()
}

type corpusScore struct {
	attacks, attacksBlocked, benign, benignBlocked, refused int
	perCat                                                  map[string][2]int // blocked, total
	missed, falsePos                                        []string
}

// scoreCorpus runs every request through a loopback server in front of w.
func scoreCorpus(t *testing.T, w *WAF, reqs []corpusReq) corpusScore {
	addr := blockServer(t, w)
	s := corpusScore{perCat: map[string][2]int{}}
	results := make([]crsResult, len(reqs))
	inParallel(len(reqs), func(i int) {
		results[i] = send(addr, reqs[i].raw())
	})
	var dump *json.Encoder
	if *corpusDump != "" {
		f, err := os.Create(*corpusDump)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		dump = json.NewEncoder(f)
	}
	for i := range reqs {
		c := &reqs[i]
		res := results[i]
		if dump != nil {
			dump.Encode(map[string]any{"id": c.ID, "category": c.Category, "attack": c.Attack, "status": res.status, "rules": res.ids, "matched": res.matched})
		}
		blocked := res.status == http.StatusForbidden
		if res.err != nil || res.ids == nil {
			// Go's HTTP server refused it (400) or dropped it: the gateway
			// never forwards such a request, but it is not a WAF block.
			s.refused++
		}
		pc := s.perCat[c.Category]
		pc[1]++
		if blocked {
			pc[0]++
		}
		s.perCat[c.Category] = pc
		if c.Attack {
			s.attacks++
			if blocked {
				s.attacksBlocked++
			} else {
				s.missed = append(s.missed, c.Category+" "+c.ID)
			}
		} else {
			s.benign++
			if blocked {
				s.benignBlocked++
				s.falsePos = append(s.falsePos, fmt.Sprintf("%s %s rules %v", c.Category, c.ID, res.ids))
			}
		}
	}
	return s
}

func readCorpus(t *testing.T, name string) []corpusReq {
	f, err := os.Open(name)
	if err != nil {
		t.Fatalf("corpus: %v", err)
	}
	defer f.Close()
	var out []corpusReq
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var c corpusReq
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("corpus %s: %v", name, err)
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCorpus(t *testing.T) {
	reqs := readCorpus(t, *corpusFile)
	w, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	s := scoreCorpus(t, w, reqs)
	cats := make([]string, 0, len(s.perCat))
	for c := range s.perCat {
		cats = append(cats, c)
	}
	sort.Strings(cats)
	for _, c := range cats {
		t.Logf("%-26s blocked %5d of %5d", c, s.perCat[c][0], s.perCat[c][1])
	}
	for i, fp := range s.falsePos {
		if i < 40 {
			t.Logf("false positive: %s", fp)
		}
	}
	for i, m := range s.missed {
		if i < 40 {
			t.Logf("missed: %s", m)
		}
	}
	ar := 100 * float64(s.attacksBlocked) / float64(max(1, s.attacks))
	br := 100 * float64(s.benignBlocked) / float64(max(1, s.benign))
	t.Logf("attacks blocked %d/%d (%.2f%%), benign blocked %d/%d (%.2f%%), %d refused by the HTTP server", s.attacksBlocked, s.attacks, ar, s.benignBlocked, s.benign, br, s.refused)
	if ar < goalAttacks {
		t.Errorf("%.2f%% of attacks blocked, want ≥ %v%%", ar, goalAttacks)
	}
	switch {
	case br > guardBenign:
		t.Errorf("%.2f%% of benign requests blocked, want ≤ %v%% (goal %v%%)", br, guardBenign, goalBenign)
	case br > goalBenign:
		t.Logf("NOTE: %.2f%% of benign requests blocked: above the %v%% goal", br, goalBenign)
	}
}
