package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"moat/internal/flow"
)

func flowRecord(uid, src, dst, verdict, rule string, bytes int64, at time.Time) flow.Record {
	r := flow.Header(flow.ClassNetworkActivity, flow.ActivityClose, "moat-agent", at)
	r.Metadata.UID = uid
	r.SrcEndpoint = &flow.Endpoint{IP: "10.0.0.1", UID: "spiffe://prod.example/svc/" + src, SvcName: src}
	r.DstEndpoint = &flow.Endpoint{IP: "10.0.0.2", Port: 5432, UID: "spiffe://prod.example/svc/" + dst, SvcName: dst}
	r.Traffic = &flow.Traffic{Bytes: bytes}
	r.FirewallRule = &flow.Rule{Name: rule}
	r.Unmapped = &flow.Moat{Verdict: verdict}
	return r
}

// flowsDataDir makes a data directory with a few stored flows.
func flowsDataDir(t *testing.T) (string, *flow.Store) {
	t.Helper()
	dir := t.TempDir()
	st, err := flow.OpenStore(flow.StoreConfig{Dir: filepath.Join(dir, "flows")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Now()
	recs := []flow.Record{
		flowRecord("old", "web", "db", flow.VerdictAllow, "web-to-db", 10, now.Add(-3*time.Hour)),
		flowRecord("r1", "web", "db", flow.VerdictAllow, "web-to-db", 100, now.Add(-30*time.Minute)),
		flowRecord("r2", "web", "billing", flow.VerdictDeny, "default-deny", 0, now.Add(-20*time.Minute)),
		flowRecord("r3", "api", "db", flow.VerdictAllow, "api-to-db", 900, now.Add(-10*time.Minute)),
	}
	if _, err := st.Ingest(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	return dir, st
}

func runMoat(ctx context.Context, stdout, stderr *syncBuffer, args ...string) int {
	return Run(ctx, &Env{Stdout: stdout, Stderr: stderr}, args)
}

func TestFlowsCommand(t *testing.T) {
	dir, _ := flowsDataDir(t)
	tests := []struct {
		name string
		args []string
		code int
		want []string // substrings of stdout, in order
		not  []string
	}{
		{"recent denied", []string{"--verdict", "deny"}, 0, []string{"VERDICT", "web", "billing", "deny", "default-deny"}, []string{"r1", "api"}},
		{"since", []string{"--since", "1h", "--output", "json"}, 0, []string{`"uid":"r1"`, `"uid":"r2"`, `"uid":"r3"`}, []string{`"uid":"old"`}},
		{"from and to", []string{"--from", "web", "--to", "spiffe://prod.example/svc/db", "--output", "json"}, 0, []string{`"uid":"old"`, `"uid":"r1"`}, []string{`"uid":"r2"`}},
		{"limit", []string{"--limit", "1", "--output", "json"}, 0, []string{`"uid":"r3"`}, []string{`"uid":"r2"`}},
		{"rule", []string{"--rule", "api-to-db", "--output", "json"}, 0, []string{`"uid":"r3"`}, []string{`"uid":"r1"`}},
		{"top talkers", []string{"--top", "talkers"}, 0, []string{"SRC", "spiffe://prod.example/svc/api", "900", "spiffe://prod.example/svc/web", "110", "spiffe://prod.example/svc/web", "spiffe://prod.example/svc/billing", "1      0      1"}, nil},
		{"since in days", []string{"--since", "1d", "--output", "json"}, 0, []string{`"uid":"old"`, `"uid":"r3"`}, nil},
		{"bad since", []string{"--since", "soon"}, 2, nil, nil},
		{"bad output", []string{"--output", "yaml"}, 2, nil, nil},
		{"bad verdict", []string{"--verdict", "maybe"}, 2, nil, nil},
		{"bad top", []string{"--top", "ports"}, 2, nil, nil},
		{"top with follow", []string{"--top", "talkers", "--follow"}, 2, nil, nil},
		{"no such dir", []string{"--data-dir", filepath.Join(dir, "nope")}, 1, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb syncBuffer
			args := append([]string{"flows", "--data-dir", dir}, tt.args...)
			if code := runMoat(context.Background(), &out, &errb, args...); code != tt.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.code, errb.String())
			}
			s := out.String()
			rest := s
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("output lacks %q (in order):\n%s", w, s)
				}
				rest = rest[i+len(w):]
			}
			for _, n := range tt.not {
				if strings.Contains(s, n) {
					t.Fatalf("output holds %q:\n%s", n, s)
				}
			}
		})
	}
}

func TestFlowsFollow(t *testing.T) {
	dir, st := flowsDataDir(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runMoat(ctx, &out, &errb, "flows", "--data-dir", dir, "--follow", "--poll", "10ms", "--output", "json", "--verdict", "deny")
	}()
	wait := func(what string, cond func(string) bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond(out.String()) {
			if time.Now().After(deadline) {
				t.Fatalf("gave up waiting for %s; output:\n%s\nstderr: %s", what, out.String(), errb.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	wait("the stored denied record", func(s string) bool { return strings.Contains(s, `"uid":"r2"`) })
	var recs []flow.Record
	for i := range 3 {
		v := flow.VerdictDeny
		if i == 1 {
			v = flow.VerdictAllow
		}
		recs = append(recs, flowRecord(fmt.Sprintf("new%d", i), "web", "billing", v, "default-deny", 0, time.Now()))
	}
	if _, err := st.Ingest(ctx, recs); err != nil {
		t.Fatal(err)
	}
	wait("the new denied records", func(s string) bool { return strings.Count(s, "\n") == 3 })
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, errb.String())
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var r flow.Record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		got = append(got, r.Metadata.UID)
	}
	if want := "r2 new0 new2"; strings.Join(got, " ") != want {
		t.Fatalf("followed %v, want %s", got, want)
	}
}
