package detect

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"moat/internal/flow"
	"moat/internal/testkit"
)

// denyServer listens on n loopback ports and refuses every connection: it
// writes a deny flow record for the attempt, then closes, as an agent's
// inbound proxy does for a peer no intention admits.
func denyServer(t *testing.T, n int, w flow.Writer) []int {
	t.Helper()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				ra, la := c.RemoteAddr().(*net.TCPAddr), c.LocalAddr().(*net.TCPAddr)
				r := flow.Header(flow.ClassNetworkActivity, flow.ActivityRefuse, "moat-agent", time.Now())
				r.ActionID, r.Action = flow.ActionDenied, "Denied"
				r.SrcEndpoint = &flow.Endpoint{IP: ra.IP.String(), Port: ra.Port}
				r.DstEndpoint = &flow.Endpoint{IP: la.IP.String(), Port: la.Port}
				r.FirewallRule = &flow.Rule{Name: "default-deny"}
				r.Unmapped = &flow.Moat{Verdict: flow.VerdictDeny, Reason: "no intention"}
				_ = w.Write(r)
				c.Close()
			}
		}()
	}
	return ports
}

// scanPorts connects to every port once and waits for the refusal.
func scanPorts(t *testing.T, ports []int) {
	t.Helper()
	for _, p := range ports {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), 5*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", p, err)
		}
		_ = c.SetReadDeadline(time.Now().Add(testkit.WaitLimit))
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("port %d was not refused: %v", p, err)
		}
		c.Close()
	}
}

var waitFor = testkit.WaitFor

func TestRealScanRaisesOneAlertPerDedupWindow(t *testing.T) {
	const nPorts = 40
	// The receiver: a generic webhook on loopback.
	var mu sync.Mutex
	var received []Alert
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m webhookMessage
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		received = append(received, m.Alert)
		mu.Unlock()
	}))
	defer srv.Close()
	sink, err := NewSink(SinkConfig{Name: "hook", Type: SinkWebhook, URL: NewSecret(srv.URL + "/in")}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	disp, err := NewDispatcher(DispatcherConfig{Routes: []Route{{Sink: sink}}})
	if err != nil {
		t.Fatal(err)
	}

	clk := newClock()
	col := &collector{}
	rules := testRules()
	delete(rules, RuleDenyBurst) // this test counts scan alerts; a burst is its own rule
	e, err := New(Config{Rules: rules, Now: clk.Now, Notifier: NotifierFunc(func(a Alert) { col.Notify(a); disp.Notify(a) })})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = e.Run(ctx) })
	wg.Go(func() { _ = disp.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()

	ports := denyServer(t, nPorts, e)
	sent := uint64(0)
	scan := func() {
		scanPorts(t, ports)
		sent += nPorts
		waitFor(t, "the engine to evaluate every attempt", func() bool { return e.Stats().Processed == sent })
	}
	firing := func() (n int) {
		for _, a := range col.all() {
			if a.Status == StatusFiring {
				n++
				if a.Key != "moat/scan/127.0.0.1" {
					t.Errorf("unexpected alert %s %q", a.Rule, a.Key)
				}
			}
		}
		return n
	}

	t.Log("scan every port twice within one window")
	scan()
	scan()
	if n := firing(); n != 1 {
		t.Fatalf("two passes raised %d firing alerts, want 1: %+v", n, col.all())
	}
	t.Log("the scan stops; once the window passes the alert resolves")
	clk.Advance(5 * time.Minute)
	e.Sweep()
	if got := col.all(); len(got) != 2 || got[1].Status != StatusResolved {
		t.Fatalf("after the window: %+v, want firing then resolved", got)
	}
	t.Log("the scanner returns inside the dedup window: no new alert")
	clk.Advance(10 * time.Minute)
	scan()
	if n := firing(); n != 1 {
		t.Fatalf("rescan within dedup window raised %d firing alerts in all, want 1", n)
	}
	t.Log("a new dedup window: one new alert")
	clk.Advance(2 * time.Hour)
	e.Sweep()
	scan()
	scan()
	if n := firing(); n != 2 {
		t.Fatalf("rescan after the dedup window: %d firing alerts in all, want 2", n)
	}
	if st := e.Stats(); st.Dropped != 0 {
		t.Fatalf("engine dropped %d records", st.Dropped)
	}
	t.Log("the receiver got exactly what the engine raised")
	want := col.all()
	waitFor(t, "delivery", func() bool { mu.Lock(); defer mu.Unlock(); return len(received) >= len(want) })
	mu.Lock()
	defer mu.Unlock()
	if len(received) != len(want) {
		t.Fatalf("receiver got %d alerts, engine raised %d", len(received), len(want))
	}
	for i := range want {
		if received[i].Key != want[i].Key || received[i].Status != want[i].Status {
			t.Errorf("delivery %d = %s %q, want %s %q", i, received[i].Status, received[i].Key, want[i].Status, want[i].Key)
		}
	}
}
