package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/detect"
	"moat/internal/flow"
)

// revokedFrom is the record of a refused handshake that presented a
// revoked identity from ip, as the agent running dst writes it.
func revokedFrom(uid, ip, dst string) flow.Record {
	r := flow.Header(flow.ClassNetworkActivity, flow.ActivityRefuse, "moat-mesh", time.Now())
	r.Metadata.UID = uid
	r.SrcEndpoint = &flow.Endpoint{IP: ip, Port: 40000}
	r.DstEndpoint = &flow.Endpoint{UID: "spiffe://example.org/svc/" + dst, SvcName: dst, Port: 5432}
	r.Unmapped = &flow.Moat{Verdict: flow.VerdictDeny, Kind: "handshake", ReasonCode: flow.ReasonRevoked, Reason: "certificate revoked"}
	return r
}

// TestNodeCannotFloodAlerts: a compromised node writes records about its
// own service that raise a critical alert each (a revoked identity from
// a new address every time), enough to fill every sink's queue. The
// alerts its records raise reach the sinks only within its budget, with
// one alert saying the rest were held back (they stay findings); an alert
// raised by another node's records afterwards still reaches Slack.
func TestNodeCannotFloodAlerts(t *testing.T) {
	c := newCluster(t)
	c.register(api.Registration{Name: "api", Node: "n1", Port: 8080})
	c.register(api.Registration{Name: "db", Node: "n2", Port: 5432})

	t.Log("a stand-in for Slack that holds every post until released")
	release := make(chan struct{})
	var once sync.Once
	answer := func() { once.Do(func() { close(release) }) }
	var mu sync.Mutex
	var posted []string
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		<-release
		mu.Lock()
		posted = append(posted, string(b))
		mu.Unlock()
	}))
	defer slack.Close()
	defer answer()
	sink, err := detect.NewSink(detect.SinkConfig{Name: "slack", Type: detect.SinkSlack, URL: detect.NewSecret(slack.URL + "/services/T0/B0/x")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const queue = 100
	d, err := detect.NewDispatcher(detect.DispatcherConfig{Routes: []detect.Route{{Sink: sink}}, Delivery: detect.Delivery{Queue: queue}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx)
	got := &alerts{}
	eng, err := detect.New(detect.Config{Rules: detect.Rules{detect.RuleRevoked: detect.DefaultRules()[detect.RuleRevoked]}, Now: c.clk.Now,
		Notifier: detect.NotifierFunc(func(a detect.Alert) { got.Notify(a); d.Notify(a) })})
	if err != nil {
		t.Fatal(err)
	}
	go eng.Run(ctx)
	c.restartWith(eng)
	c.startAgent("n1")
	c.startAgent("n2")
	n1, n2 := c.nodeClient("n1"), c.nodeClient("n2")

	t.Log("n1 sends three times a sink's queue of forged refusals, each from a new address")
	const flood = 3 * queue
	batch := make([]flow.Record, 0, flood)
	for i := range flood {
		batch = append(batch, revokedFrom(fmt.Sprintf("flood-%d", i), fmt.Sprintf("10.66.%d.%d", i/250, i%250+1), "api"))
	}
	var ack api.FlowAck
	if err := n1.Call(ctx, http.MethodPost, api.PathFlows, batch, &ack); err != nil || ack.Stored != flood {
		t.Fatalf("ack %+v, %v: want n1's records about its own api stored", ack, err)
	}
	t.Log("then n2 reports a revoked identity used against db")
	if err := n2.Call(ctx, http.MethodPost, api.PathFlows, []flow.Record{revokedFrom("real-1", "192.0.2.77", "db")}, &ack); err != nil || ack.Stored != 1 {
		t.Fatalf("ack %+v, %v", ack, err)
	}
	eventually(t, "the engine to evaluate every record", func() bool { return eng.Stats().Processed >= flood+1 })

	got.mu.Lock()
	fromN1, muted := 0, 0
	for _, a := range got.all {
		switch {
		case a.Rule == detect.RuleRevoked && strings.HasPrefix(a.Subject, "10.66."):
			fromN1++
		case a.Rule == detect.RuleNodeAlertsMuted && a.Subject == "n1" && a.Status == detect.StatusFiring:
			muted++
		}
	}
	got.mu.Unlock()
	if fromN1 > detect.DefaultNodeAlerts || muted != 1 {
		t.Fatalf("n1's records sent %d alerts to the sinks and %d saying the rest were held back; want at most %d and 1", fromN1, muted, detect.DefaultNodeAlerts)
	}
	if !got.fired(detect.RuleRevoked) || got.subject(detect.RuleRevoked) == "" {
		t.Fatal("no revoked_identity alert at all")
	}

	t.Log("Slack answers again: n2's alert is among what it is sent")
	answer()
	eventually(t, "n2's alert in Slack", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range posted {
			if strings.Contains(p, "192.0.2.77") {
				return true
			}
		}
		return false
	})
}
