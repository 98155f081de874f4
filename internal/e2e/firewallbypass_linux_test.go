//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"moat/internal/agent"
	"moat/internal/detect"
	"moat/internal/firewall"
	"moat/internal/flow"
	"moat/internal/netlab"
	"moat/internal/server"
)

// amAlert is one alert as an Alertmanager stand-in received it.
type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
}

// amReceiver is a stand-in for Alertmanager's /api/v2/alerts.
type amReceiver struct {
	mu  sync.Mutex // guards got
	got []amAlert
}

func (r *amReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	var as []amAlert
	if err := json.Unmarshal(b, &as); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.got = append(r.got, as...)
	r.mu.Unlock()
}

// find returns the first alert received of rule whose endsAt is before
// (resolved) or after (firing) the time it was received by.
func (r *amReceiver) find(rule string, resolved bool) (amAlert, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.got {
		// A firing alert is held for four hours; a resolved one ended.
		if a.Labels["rule"] == rule && a.EndsAt.Sub(a.StartsAt) < time.Hour == resolved {
			return a, true
		}
	}
	return amAlert{}, false
}

// A rule of another nftables table that sets moat's mark gives every
// local user of the node the egress path's pins; the agent found it and
// said so in its own log and metrics alone, so an operator watching the
// alerts never learnt that the node's isolation could be bypassed. The
// agent now reports its firewall's bypasses with its health report: the
// control plane audits the change, and detection raises firewall_bypass
// for the node, delivered here to a stand-in for Alertmanager, and
// resolves it when the rule is gone. Needs root (a network namespace and
// nftables).
func TestFirewallBypassAlert(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("a network namespace and nftables need root")
	}
	lab, err := netlab.New(fmt.Sprintf("e2efw%d-", os.Getpid()%100000), netip.MustParsePrefix("198.18.61.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Error(err)
		}
	})
	host, err := lab.AddHost("n1")
	if err != nil {
		t.Fatal(err)
	}
	nft := func(script string) {
		t.Helper()
		if out, err := host.Command(context.Background(), "nft", script).CombinedOutput(); err != nil {
			t.Fatalf("nft %q: %v: %s", script, err, out)
		}
	}

	t.Log("a control plane whose detection sends its alerts to Alertmanager")
	c := newCluster(t)
	recv := &amReceiver{}
	am := httptest.NewServer(recv)
	defer am.Close()
	// A firing alert's endsAt lies four hours ahead, which tells it from
	// a resolve (find).
	sink, err := detect.NewSink(detect.SinkConfig{Name: "am", Type: detect.SinkAlertmanager, URL: detect.NewSecret(am.URL), Horizon: 4 * time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	disp, err := detect.NewDispatcher(detect.DispatcherConfig{Routes: []detect.Route{{Sink: sink}}, Logger: c.logger})
	if err != nil {
		t.Fatal(err)
	}
	// Firing alerts are findings in the flow store too, which the
	// dashboard's security view lists.
	findings := flow.WriterFunc(func(r flow.Record) error {
		_, err := c.flows.Ingest(context.Background(), []flow.Record{r})
		return err
	})
	eng, err := detect.New(detect.Config{Notifier: disp, Findings: findings, Now: c.clk.Now, Logger: c.logger})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); eng.Run(ctx) }()
	go func() { defer wg.Done(); disp.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	c.restartWith(eng)

	t.Log("an agent enforcing its host firewall in the node's namespace")
	c.startAgent("n1", func(cfg *agent.Config) {
		cfg.Firewall = agent.FirewallConfig{Mode: firewall.ModeEnforce, NetNS: host.Path(), DNS: firewall.DNSOpen}
	})
	eventually(t, "the host firewall installed", func() bool {
		st, err := firewall.Show(host.Path())
		return err == nil && st.Installed
	})

	t.Log("another table sets moat's mark on every packet the node sends")
	nft("add table inet sneak; add chain inet sneak out { type route hook output priority mangle; policy accept; }; add rule inet sneak out meta mark set 0x6d6f6174")
	var fired amAlert
	c.settle("the firewall_bypass alert at Alertmanager", func() bool {
		var ok bool
		fired, ok = recv.find(detect.RuleFirewallBypass, false)
		return ok
	})
	if fired.Labels["subject"] != "n1" || fired.Labels["severity"] != string(detect.SeverityCritical) {
		t.Errorf("labels %v: want the node n1, severity critical", fired.Labels)
	}
	for _, w := range []string{"bypass_rules=1", "mark=1", "inet sneak chain out handle"} {
		if !strings.Contains(fired.Annotations["description"], w) {
			t.Errorf("description %q lacks %q", fired.Annotations["description"], w)
		}
	}
	recs, err := c.flows.Query(context.Background(), flow.Filter{Class: flow.ClassDetectionFinding, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].FindingInfo == nil || recs[0].FindingInfo.Analytic.Name != detect.RuleFirewallBypass {
		t.Errorf("findings for the dashboard: %+v, want the firewall_bypass alert's", recs)
	}
	entries, err := c.alog.Entries(0, c.alog.Size())
	if err != nil {
		t.Fatal(err)
	}
	var audited []string
	for _, e := range entries {
		if e.Entry.Action == server.ActionNodeFirewall {
			audited = append(audited, e.Entry.Target+" "+e.Entry.Detail["bypass_rules"])
		}
	}
	if strings.Join(audited, ",") != "n1 1" {
		t.Errorf("audit entries %s: %q, want one for n1 with 1 rule", server.ActionNodeFirewall, audited)
	}

	t.Log("the table removed: the alert resolves")
	nft("delete table inet sneak")
	c.settle("the firewall_bypass alert resolved at Alertmanager", func() bool {
		_, ok := recv.find(detect.RuleFirewallBypass, true)
		return ok
	})
}
