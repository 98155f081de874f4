package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"moat/internal/flow"
)

const wafYAML = baseYAML + "events: %s\n"

type attackSet struct {
	Places   []string            `yaml:"places"`
	Payloads map[string][]string `yaml:"payloads"`
}

type benignSet struct {
	Requests []struct {
		Name        string `yaml:"name"`
		Method      string `yaml:"method"`
		Path        string `yaml:"path"`
		ContentType string `yaml:"content_type"`
		Body        string `yaml:"body"`
		Cookie      string `yaml:"cookie"`
		Multipart   *struct {
			Field, Value, FileField, Filename, FileContent string
		} `yaml:"multipart"`
	} `yaml:"requests"`
}

func readYAML(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// TestWAFAttacksAndBenign sends testdata/attacks.yaml in every place and
// testdata/benign.yaml through one gateway with the default WAF settings.
func TestWAFAttacksAndBenign(t *testing.T) {
	dir := t.TempDir()
	eventsFile := dir + "/events.jsonl"
	f := newFixture(t, strings.Replace(baseYAML, "services:", "events: "+eventsFile+"\nrate_limit:\n  off: true\nservices:", 1))
	var attacks attackSet
	readYAML(t, "testdata/attacks.yaml", &attacks)
	be := f.backends["frontend"]
	total := 0
	for class, list := range attacks.Payloads {
		for _, p := range list {
			for _, place := range attacks.Places {
				r := f.req("GET", "/app/page", nil)
				switch place {
				case "query":
					r = f.req("GET", "/app/page?id="+url.QueryEscape(p), nil)
				case "form":
					r = f.req("POST", "/app/page", strings.NewReader("id="+url.QueryEscape(p)))
					r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					r.Header.Set("Origin", f.base)
				case "json":
					b, _ := json.Marshal(map[string]any{"user": map[string]string{"id": p}})
					r = f.req("POST", "/app/page", bytes.NewReader(b))
					r.Header.Set("Content-Type", "application/json")
					r.Header.Set("Origin", f.base)
				case "cookie":
					r.Header.Set("Cookie", "pref="+strings.ReplaceAll(p, ";", "%3B"))
				case "header":
					r.Header.Set("User-Agent", p)
				}
				before := be.count.Load()
				code, body, resp := f.do(r)
				total++
				if code != 403 {
					t.Errorf("%s %q in %s: status %d, want 403", class, p, place, code)
					continue
				}
				if be.count.Load() != before {
					t.Errorf("%s %q in %s: blocked request reached the backend", class, p, place)
				}
				id := resp.Header.Get("X-Request-ID")
				if body != "forbidden\nrequest id: "+id+"\n" {
					t.Errorf("403 body says more than the request id: %q", body)
				}
			}
		}
	}
	t.Logf("%d attack requests blocked", total)
	// Every block is accounted for: in a record of its own or, past the
	// client's share of records, counted in a summary (eventgate.go).
	var recs []flow.Record
	counted := func() int {
		n := 0
		for _, r := range recs {
			n += max(1, r.Unmapped.Suppressed)
		}
		return n
	}
	waitFor(t, "a record or summary for every block", func() bool {
		recs = f.events.all()
		return counted() >= total
	})
	if counted() != total || len(recs) < eventClientBurst {
		t.Errorf("%d records standing for %d events, for %d blocks", len(recs), counted(), total)
	}
	for _, r := range recs {
		if r.ClassUID != 4002 || r.HTTPResponse == nil || r.HTTPResponse.Code != 403 || r.Unmapped.Kind != KindWAF || len(r.Unmapped.Rules) == 0 || r.HTTPRequest.UID == "" || r.Unmapped.Route != "frontend" || r.SrcEndpoint.IP != "127.0.0.1" {
			t.Fatalf("event lacks fields: %+v %+v", r, r.Unmapped)
		}
	}
	if fi, err := os.Stat(eventsFile); err != nil || fi.Size() == 0 {
		t.Errorf("events file empty: %v", err)
	}

	var benign benignSet
	readYAML(t, "testdata/benign.yaml", &benign)
	for _, c := range benign.Requests {
		var body *bytes.Buffer = &bytes.Buffer{}
		ct := c.ContentType
		if c.Multipart != nil {
			mw := multipart.NewWriter(body)
			mw.WriteField(c.Multipart.Field, c.Multipart.Value)
			fw, _ := mw.CreateFormFile(c.Multipart.FileField, c.Multipart.Filename)
			fw.Write([]byte(c.Multipart.FileContent))
			mw.Close()
			ct = mw.FormDataContentType()
		} else {
			body.WriteString(c.Body)
		}
		r := f.req(c.Method, c.Path, body)
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		if c.Cookie != "" {
			r.Header.Set("Cookie", c.Cookie)
		}
		r.Header.Set("Origin", f.base)
		before := f.backends["frontend"].count.Load() + f.backends["api"].count.Load()
		code, _, _ := f.do(r)
		if code != 200 {
			var rules []string
			if recs := f.events.all(); len(recs) > 0 {
				rules = recs[len(recs)-1].Unmapped.Rules
			}
			t.Errorf("benign %q: status %d (rules %v)", c.Name, code, rules)
		}
		if f.backends["frontend"].count.Load()+f.backends["api"].count.Load() != before+1 {
			t.Errorf("benign %q did not reach the backend", c.Name)
		}
	}
}

// TestWAFDetectionOnlyAndExclusions: detection-only lets attacks through
// but records them; a route's exclusions switch rules off for it alone.
func TestWAFDetectionOnlyAndExclusions(t *testing.T) {
	yaml := strings.Replace(baseYAML, "    path: /api/\n", "    path: /api/\n    waf_exclusions: [\"942000-942999\", \"941100-941999\"]\n", 1)
	f := newFixture(t, yaml)
	attack := "/?q=" + url.QueryEscape("1 UNION SELECT password FROM users")
	if code, _, _ := f.do(f.req("GET", attack, nil)); code != 403 {
		t.Fatalf("attack on / got %d", code)
	}
	if code, _, _ := f.do(f.req("GET", "/api/"+attack[1:], nil)); code != 200 {
		t.Fatalf("excluded rules on /api/ still blocked: %d", code)
	}
	f.write(yaml + "waf:\n  detection_only: true\n")
	if err := f.gw.Reload(); err != nil {
		t.Fatal(err)
	}
	n := len(f.events.all())
	if code, _, _ := f.do(f.req("GET", attack, nil)); code != 200 {
		t.Fatalf("detection-only blocked: %d", code)
	}
	recs := f.events.all()
	if len(recs) != n+1 {
		t.Fatalf("detection-only recorded %d events, want 1", len(recs)-n)
	}
	last := recs[len(recs)-1]
	if last.Unmapped.Verdict != "audit" || last.DispositionID != 17 || !slices.Contains(last.Unmapped.Rules, "942100") {
		t.Errorf("detection-only event %+v", last.Unmapped)
	}
	// The refusal and the flagged request both name the gateway address
	// the client reached, which is read only when an event is recorded.
	port := f.gw.Addr().(*net.TCPAddr).Port
	for _, r := range []flow.Record{recs[0], last} {
		if r.DstEndpoint == nil || r.DstEndpoint.IP != "127.0.0.1" || r.DstEndpoint.Port != port {
			t.Errorf("event %s recorded to %+v, want 127.0.0.1:%d", r.Unmapped.Verdict, r.DstEndpoint, port)
		}
	}
	t.Logf("event matched data: %q", last.Unmapped.Matched)
}

// TestWAFFullEvaluation: a blocked attack's event says that the WAF
// stopped once the block was certain, and at which score, listing the
// rules that matched until then; with waf.full_evaluation it lists every
// rule that matches, and the answer is the same.
func TestWAFFullEvaluation(t *testing.T) {
	f := newFixture(t, baseYAML)
	attack := "/?q=" + url.QueryEscape("1' UNION SELECT password FROM users--")
	event := func() flow.Record {
		t.Helper()
		n := len(f.events.all())
		if code, _, _ := f.do(f.req("GET", attack, nil)); code != 403 {
			t.Fatalf("attack got %d", code)
		}
		recs := f.events.all()
		if len(recs) != n+1 {
			t.Fatalf("%d events for one block", len(recs)-n)
		}
		return recs[n]
	}
	stopped := event()
	f.write(baseYAML + "waf:\n  full_evaluation: true\n")
	if err := f.gw.Reload(); err != nil {
		t.Fatal(err)
	}
	full := event()
	all, some := full.Unmapped.Rules, stopped.Unmapped.Rules
	if !slices.Contains(all, "942100") || all[len(all)-1] != "949110" || strings.Contains(full.Message, "stopped") {
		t.Fatalf("full evaluation's event: rules %v, message %q", all, full.Message)
	}
	// The rules until the stop (90040's match, which reaches the
	// threshold alone), then the blocking rule.
	k := slices.Index(all, "90040") + 1
	if k == 0 || !slices.Equal(some, append(slices.Clip(all[:k]), "949110")) ||
		!regexp.MustCompile(`\(evaluation stopped once the anomaly score reached the threshold, at [0-9]+; later rules not run`).MatchString(stopped.Message) {
		t.Errorf("event: rules %v, message %q; want %v then 949110, and where the evaluation stopped", some, stopped.Message, all[:k])
	}
}

// TestWAFMasksSecrets: the event never carries a secret it matched on.
func TestWAFMasksSecrets(t *testing.T) {
	f := newFixture(t, baseYAML)
	r := f.req("POST", "/login", strings.NewReader("user=x&password="+url.QueryEscape("' OR 1=1 -- hunter2")))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Origin", f.base)
	if code, _, _ := f.do(r); code != 403 {
		t.Fatalf("status %d", code)
	}
	b, _ := json.Marshal(f.events.all())
	if strings.Contains(string(b), "hunter2") {
		t.Errorf("secret in event: %s", b)
	}
}

// TestWAFCustomRulesAndBodyLimit: a custom SecLang file applies, and a body
// over the WAF's limit is refused.
func TestWAFCustomRulesAndBodyLimit(t *testing.T) {
	dir := t.TempDir()
	rules := dir + "/custom.conf"
	os.WriteFile(rules, []byte(`SecRule REQUEST_HEADERS:X-Internal "@streq yes" "id:10001,phase:1,deny,status:403,log,msg:'internal header from outside'"`+"\n"), 0o600)
	f := newFixture(t, baseYAML+"waf:\n  request_body_limit: 1024\n  rules: ["+rules+"]\n")
	r := f.req("GET", "/", nil)
	r.Header.Set("X-Internal", "yes")
	if code, _, _ := f.do(r); code != 403 {
		t.Errorf("custom rule: %d", code)
	}
	if last := f.events.all(); len(last) != 1 || !slices.Contains(last[0].Unmapped.Rules, "10001") {
		t.Errorf("custom rule event %+v", last)
	}
	r = f.req("POST", "/", strings.NewReader("a="+strings.Repeat("b", 4096)))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Origin", f.base)
	if code, _, _ := f.do(r); code != 413 {
		t.Errorf("body over the limit: %d, want 413", code)
	}
	if n := f.backends["frontend"].count.Load(); n != 0 {
		t.Errorf("backend saw %d requests", n)
	}
}

func TestMaskQuery(t *testing.T) {
	for in, want := range map[string]string{
		"q=1+union+select&token=s3cr3t": "q=1+union+select&token=%5Bmasked+6+bytes%5D",
		"a=b":                           "a=b",
		"flag&password=x":               "flag&password=%5Bmasked+1+bytes%5D",
		"k=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.sig": "k=%5Bmasked%5D",
	} {
		if got := maskQuery(in); got != want {
			t.Errorf("maskQuery(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestWAFResponseInspection: with inspect_responses on, a response that
// leaks a SQL error is replaced by a 403.
func TestWAFResponseInspection(t *testing.T) {
	f := newFixture(t, baseYAML+"waf:\n  inspect_responses: true\n")
	leak := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html><body>You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version for the right syntax to use near ''' at line 1</body></html>")
	}))
	defer leak.Close()
	f.backends["frontend"].srv.Config.Handler = leak.Config.Handler
	code, body, _ := f.do(f.req("GET", "/item?id=7", nil))
	if code != 403 || strings.Contains(body, "SQL") {
		t.Fatalf("leaking response: %d %q", code, body)
	}
	recs := f.events.all()
	if len(recs) != 1 || recs[0].Unmapped.Kind != KindWAF || !strings.Contains(recs[0].Message, "response") {
		t.Errorf("events %+v", recs)
	}
}
