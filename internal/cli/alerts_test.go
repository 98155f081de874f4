package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestAlertsTest(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v any
		_ = json.NewDecoder(r.Body).Decode(&v)
		m, _ := v.(map[string]any)
		if list, isList := v.([]any); isList && len(list) == 1 { // Alertmanager's PostableAlerts
			m, _ = list[0].(map[string]any)
			m["path"] = r.URL.Path
		}
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer ok.Close()
	gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		http.NotFound(w, r)
	}))
	defer gone.Close()

	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "alerts.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	env := func(k string) string {
		if k == "PD_URL" {
			return ok.URL + "/v2/enqueue"
		}
		return ""
	}
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Run(context.Background(), &Env{Stdout: &out, Stderr: &errb, Getenv: env}, args)
		return code, out.String(), errb.String()
	}

	cfg := write(`sinks:
  - {name: pager, type: pagerduty, url_env: PD_URL, routing_key: R0UT1NGKEY0123456789abcdefABCDEF}
  - {name: am, type: alertmanager, url: "` + ok.URL + `"}
`)
	code, out, errs := run("alerts", "test", "--config", cfg)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if n := strings.Count(out, "ok "); n != 4 {
		t.Fatalf("want 4 ok lines (trigger and resolve per sink), got:\n%s", out)
	}
	mu.Lock()
	if len(got) != 4 || got[0]["event_action"] != "trigger" || got[1]["event_action"] != "resolve" || got[2]["path"] != "/api/v2/alerts" || got[2]["labels"] == nil {
		t.Fatalf("receiver got %v", got)
	}
	mu.Unlock()

	cfg = write(`sinks:
  - {name: am, type: alertmanager, url: "` + ok.URL + `/hook"}
  - {name: gone, type: webhook, url: "` + gone.URL + `/hooks/s3cr3t-token"}
`)
	code, out, errs = run("alerts", "test", "--config", cfg, "--resolve=false")
	if code != 1 || !strings.Contains(errs, "alerts test: 1 of 2 sinks failed") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	if !strings.Contains(out, "FAIL  gone") || !strings.Contains(out, "404") || strings.Contains(out+errs, "s3cr3t") {
		t.Fatalf("output:\n%s", out)
	}

	cfg = write("sinks:\n  - {name: x, type: teams, url: 'http://127.0.0.1/'}\n")
	if code, _, errs := run("alerts", "test", "--config", cfg); code != 1 || !strings.Contains(errs, `sinks[0].type: unknown sink type "teams"`) {
		t.Fatalf("bad file: exit %d, stderr %q", code, errs)
	}
	if code, _, _ := run("alerts", "test"); code != 2 {
		t.Fatalf("missing --config: exit %d, want 2", code)
	}
}
