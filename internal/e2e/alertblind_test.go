package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"moat/internal/api"
	"moat/internal/detect"
	"moat/internal/flow"
)

// TestNodeCannotBlindDetection: a compromised node writes refusals
// naming as many sources as a rule tracks at once (a revoked identity
// presented from a new address each time, about its own service), and
// keeps them fresh, so that the rule has no room left for a source it
// has not seen. A revoked identity then used against another node's
// service must still raise its alert, and the alert reach a stand-in
// for a webhook receiver.
func TestNodeCannotBlindDetection(t *testing.T) {
	c := newCluster(t)
	c.register(api.Registration{Name: "api", Node: "n1", Port: 8080})
	c.register(api.Registration{Name: "db", Node: "n2", Port: 5432})

	t.Log("a stand-in for a webhook receiver")
	posted := make(chan string, 1000)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		posted <- string(b)
	}))
	defer hook.Close()
	sink, err := detect.NewSink(detect.SinkConfig{Name: "hook", Type: detect.SinkWebhook, URL: detect.NewSecret(hook.URL + "/alerts")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := detect.NewDispatcher(detect.DispatcherConfig{Routes: []detect.Route{{Sink: sink}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx)
	rc := detect.DefaultRules()[detect.RuleRevoked]
	const tracked = 200
	rc.MaxSubjects = tracked
	eng, err := detect.New(detect.Config{Rules: detect.Rules{detect.RuleRevoked: rc}, Now: c.clk.Now, Notifier: d})
	if err != nil {
		t.Fatal(err)
	}
	go eng.Run(ctx)
	c.restartWith(eng)
	c.startAgent("n1")
	c.startAgent("n2")
	n1, n2 := c.nodeClient("n1"), c.nodeClient("n2")

	t.Logf("n1 sends forged refusals from %d addresses, as many as the rule tracks", tracked)
	batch := make([]flow.Record, 0, tracked)
	for i := range tracked {
		batch = append(batch, revokedFrom(fmt.Sprintf("blind-%d", i), fmt.Sprintf("10.66.%d.%d", i/250, i%250+1), "api"))
	}
	var ack api.FlowAck
	if err := n1.Call(ctx, http.MethodPost, api.PathFlows, batch, &ack); err != nil || ack.Stored != tracked {
		t.Fatalf("ack %+v, %v: want n1's records about its own api stored", ack, err)
	}
	// The engine takes nodes' records in turns: n2's, sent while n1's are
	// still queued, would be taken among them, before n1's fill the rule.
	eventually(t, "the engine to evaluate n1's records", func() bool {
		s := eng.Stats()
		return s.Queued >= tracked && s.Processed == s.Queued
	})
	t.Log("then n2 reports a revoked identity used against db")
	if err := n2.Call(ctx, http.MethodPost, api.PathFlows, []flow.Record{revokedFrom("real-1", "192.0.2.77", "db")}, &ack); err != nil || ack.Stored != 1 {
		t.Fatalf("ack %+v, %v", ack, err)
	}
	eventually(t, "the engine to evaluate every record", func() bool { return eng.Stats().Processed >= tracked+1 })
	if n := eng.Stats().SubjectsDropped[detect.RuleRevoked]; n != 0 {
		t.Errorf("the rule dropped %d new sources: n2's was refused for the room n1's took", n)
	}
	eventually(t, "n2's alert at the webhook receiver", func() bool {
		for {
			select {
			case p := <-posted:
				if strings.Contains(p, "192.0.2.77") {
					return true
				}
			default:
				return false
			}
		}
	})
}

// TestNodeCannotMuteOthersAlerts: a compromised node spends its alert
// budget, then names the source it wants unwatched (an attacker's
// address) in a forged refusal: the alert it raises is held back by its
// budget. When another node then reports that source, the alert must
// reach the webhook receiver under that node's budget, not stay held
// back as the first node's.
func TestNodeCannotMuteOthersAlerts(t *testing.T) {
	c := newCluster(t)
	c.register(api.Registration{Name: "api", Node: "n1", Port: 8080})
	c.register(api.Registration{Name: "db", Node: "n2", Port: 5432})

	posted := make(chan string, 1000)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		posted <- string(b)
	}))
	defer hook.Close()
	sink, err := detect.NewSink(detect.SinkConfig{Name: "hook", Type: detect.SinkWebhook, URL: detect.NewSecret(hook.URL + "/alerts")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := detect.NewDispatcher(detect.DispatcherConfig{Routes: []detect.Route{{Sink: sink}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx)
	const budget = 3
	eng, err := detect.New(detect.Config{Rules: detect.Rules{detect.RuleRevoked: detect.DefaultRules()[detect.RuleRevoked]}, Now: c.clk.Now, Notifier: d, NodeAlerts: budget})
	if err != nil {
		t.Fatal(err)
	}
	go eng.Run(ctx)
	c.restartWith(eng)
	c.startAgent("n1")
	c.startAgent("n2")
	n1, n2 := c.nodeClient("n1"), c.nodeClient("n2")

	t.Log("n1 spends its budget, then names 192.0.2.77")
	var batch []flow.Record
	for i := range budget {
		batch = append(batch, revokedFrom(fmt.Sprintf("spend-%d", i), fmt.Sprintf("10.66.0.%d", i+1), "api"))
	}
	batch = append(batch, revokedFrom("mute-1", "192.0.2.77", "api"))
	var ack api.FlowAck
	if err := n1.Call(ctx, http.MethodPost, api.PathFlows, batch, &ack); err != nil || ack.Stored != len(batch) {
		t.Fatalf("ack %+v, %v", ack, err)
	}
	eventually(t, "n1's records evaluated", func() bool { return eng.Stats().Processed >= uint64(len(batch)) })
	if eng.Stats().Muted != 1 {
		t.Fatalf("muted %d, want n1's alert about 192.0.2.77 held back; the test tests nothing", eng.Stats().Muted)
	}
	t.Log("then n2 reports a revoked identity used from 192.0.2.77 against db")
	if err := n2.Call(ctx, http.MethodPost, api.PathFlows, []flow.Record{revokedFrom("real-1", "192.0.2.77", "db")}, &ack); err != nil || ack.Stored != 1 {
		t.Fatalf("ack %+v, %v", ack, err)
	}
	eventually(t, "n2's record evaluated", func() bool { return eng.Stats().Processed >= uint64(len(batch))+1 })
	eventually(t, "the alert about 192.0.2.77 at the webhook receiver", func() bool {
		for {
			select {
			case p := <-posted:
				if strings.Contains(p, "192.0.2.77") && strings.Contains(p, `"status":"firing"`) {
					return true
				}
			default:
				return false
			}
		}
	})
}
