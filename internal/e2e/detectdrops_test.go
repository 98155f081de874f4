package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"moat/internal/api"
	"moat/internal/detect"
	"moat/internal/flow"
)

// TestDetectionDropsRaiseAlert: a compromised node sends more records
// than the detection engine holds waiting. Its excess is dropped, and one
// records_dropped alert naming the node and how many of its records were
// lost reaches the sinks, however many were.
func TestDetectionDropsRaiseAlert(t *testing.T) {
	c := newCluster(t)
	c.register(api.Registration{Name: "api", Node: "n1", Port: 8080})

	t.Log("a stand-in for a webhook receiver that keeps every alert posted")
	var mu sync.Mutex
	var posted []detect.Alert
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m struct{ Alert detect.Alert }
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("the sink was posted %q: %v", b, err)
			return
		}
		mu.Lock()
		posted = append(posted, m.Alert)
		mu.Unlock()
	}))
	defer hook.Close()
	sink, err := detect.NewSink(detect.SinkConfig{Name: "hook", Type: detect.SinkWebhook, URL: detect.NewSecret(hook.URL + "/in")}, nil)
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
	const queue = 100
	eng, err := detect.New(detect.Config{Rules: detect.Rules{}, Now: c.clk.Now, Notifier: d, Queue: queue})
	if err != nil {
		t.Fatal(err)
	}
	c.restartWith(eng)
	c.startAgent("n1")
	n1 := c.nodeClient("n1")

	t.Log("the engine is busy: n1 sends a full queue of records about its own api, then three times as many")
	for i, n := range []int{queue, 3 * queue} {
		batch := make([]flow.Record, 0, n)
		for j := range n {
			batch = append(batch, flowRecord(fmt.Sprintf("flood-%d-%d", i, j), "api", "db", 1))
		}
		var ack api.FlowAck
		if err := n1.Call(ctx, http.MethodPost, api.PathFlows, batch, &ack); err != nil || ack.Stored != n {
			t.Fatalf("ack %+v, %v: want n1's records about its own api stored", ack, err)
		}
	}
	dropped := eng.Stats().DroppedByNode["n1"]
	if dropped < 3*queue {
		t.Fatalf("n1 lost %d records, want at least %d", dropped, 3*queue)
	}

	go eng.Run(ctx)
	var got detect.Alert
	eventually(t, "n1's records_dropped alert at the sink", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, a := range posted {
			if a.Rule == detect.RuleRecordsDropped {
				got = a
				return true
			}
		}
		return false
	})
	if got.Subject != "n1" || got.Status != detect.StatusFiring || got.Details["dropped"] != strconv.FormatUint(dropped, 10) {
		t.Fatalf("alert %+v; want n1's, firing, with its %d dropped", got, dropped)
	}

	t.Log("a marker sent now reaches the sink behind what the engine sent for the drops: one alert, not one per drop")
	d.Notify(detect.Alert{Key: "marker", Rule: detect.RuleTest, Severity: detect.SeverityInfo, Status: detect.StatusFiring, Subject: "marker"})
	eventually(t, "the marker at the sink", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(posted) > 0 && posted[len(posted)-1].Key == "marker"
	})
	mu.Lock()
	defer mu.Unlock()
	if len(posted) != 2 {
		t.Fatalf("the sink was sent %+v; want n1's records_dropped alert and the marker", posted)
	}
}
