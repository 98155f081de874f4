package detect

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"moat/internal/detect/amtest"
	"moat/internal/flow"
	"moat/internal/metrics"
	"moat/internal/metrics/metricstest"
	"moat/internal/testkit"
)

// ports are the loopback ports of this package's tests (testkit.Ports).
var ports = testkit.NewPorts(19200, 19300)

// resends is a Notifier and Resender that keeps what each gets.
type resends struct {
	collector
	mu   sync.Mutex // guards sets
	sets [][]Alert
}

func (r *resends) Resend(as []Alert) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sets = append(r.sets, as)
}

// take returns the re-sends since the last take, as their keys.
func (r *resends) take() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out [][]string
	for _, as := range r.sets {
		var keys []string
		for _, a := range as {
			keys = append(keys, a.Key)
		}
		out = append(out, keys)
	}
	r.sets = nil
	return out
}

// TestResendFiring: every Resend the sweep hands the Resender each alert
// sent firing and not resolved, and nothing else; the Notifier, which
// Slack and PagerDuty sit behind, hears of an alert when it fires and
// when it resolves alone.
func TestResendFiring(t *testing.T) {
	clk := newClock()
	rs := &resends{}
	e, err := New(Config{Now: clk.Now, Notifier: rs, Resend: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	e.process(item{entry: nodeFirewall("n1", "1")})
	e.process(item{entry: nodeFirewall("n2", "1")})
	key1, key2 := DedupKey(RuleFirewallBypass, "n1"), DedupKey(RuleFirewallBypass, "n2")
	e.Sweep()
	if got := fmt.Sprint(rs.take()); got != fmt.Sprint([][]string{{key1, key2}}) {
		t.Fatalf("first sweep re-sent %s, want both firing alerts", got)
	}
	clk.Advance(59 * time.Second)
	e.Sweep()
	if got := rs.take(); len(got) != 0 {
		t.Fatalf("re-sent %v within the interval", got)
	}
	clk.Advance(time.Second)
	e.process(item{entry: nodeFirewall("n1", "0")})
	e.Sweep()
	if got := fmt.Sprint(rs.take()); got != fmt.Sprint([][]string{{key2}}) {
		t.Fatalf("a minute on, re-sent %s, want n2's alone: n1's resolved", got)
	}
	if got := rs.all(); len(got) != 3 {
		t.Fatalf("the notifier got %d alerts, want 3: two firings and a resolve, no repeat", len(got))
	}
	clk.Advance(time.Minute)
	e.process(item{entry: nodeFirewall("n2", "0")})
	e.Sweep()
	if got := rs.take(); len(got) != 0 {
		t.Fatalf("re-sent %v with nothing firing", got)
	}
}

// TestResendForgotten: a window that forgets a firing subject to make
// room for another (its resolve will never come) no longer has it
// re-sent, so receivers that end what is not re-sent let it lapse; an
// alert the node's budget held back is not re-sent either.
func TestResendForgotten(t *testing.T) {
	clk := newClock()
	rs := &resends{}
	rules := Rules{RuleRevoked: {Enabled: true, Window: time.Hour, Threshold: 1, Severity: SeverityHigh, MaxSubjects: 1},
		RuleFirewallBypass: DefaultRules()[RuleFirewallBypass]}
	e, err := New(Config{Now: clk.Now, Notifier: rs, Rules: rules, NodeAlerts: 1})
	if err != nil {
		t.Fatal(err)
	}
	e.process(item{rec: revokedFrom("spiffe://moat.test/svc/a", "n1")})
	e.process(item{rec: revokedFrom("spiffe://moat.test/svc/b", "n2")})
	e.process(item{entry: nodeFirewall("n1", "1")}) // past n1's budget of one
	e.Sweep()
	got := rs.take()
	if len(got) != 1 || fmt.Sprint(got[0]) != fmt.Sprint([]string{DedupKey(RuleNodeAlertsMuted, "n1"), DedupKey(RuleRevoked, "spiffe://moat.test/svc/b")}) {
		t.Fatalf("re-sent %v, want b's alert and n1's muted alert alone", got)
	}
}

// TestHoldBypasses: the firewall_bypass alerts re-sent are those of the
// nodes whose latest report, read from the store, the engine answers
// for: one it never saw fire (it restarted, or the node moved to it) is
// posted again without a new notification, and one of a node it no
// longer answers for is dropped without a resolve.
func TestHoldBypasses(t *testing.T) {
	clk := newClock()
	rs := &resends{}
	var mu sync.Mutex
	nodes := []Standing{{Rule: RuleFirewallBypass, Subject: "n1", Detail: map[string]string{DetailBypassRules: "2", "rules": "inet x chain y handle 3: mark"}}}
	e, err := New(Config{Now: clk.Now, Notifier: rs, Standing: func() ([]Standing, error) {
		mu.Lock()
		defer mu.Unlock()
		return nodes, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	e.process(item{entry: nodeFirewall("n2", "1")})
	e.Sweep()
	key1, key2 := DedupKey(RuleFirewallBypass, "n1"), DedupKey(RuleFirewallBypass, "n2")
	e.mu.Lock()
	held := e.sent[key1]
	e.mu.Unlock()
	if got := fmt.Sprint(rs.take()); got != fmt.Sprint([][]string{{key1}}) {
		t.Fatalf("re-sent %s, want n1's alert alone: n2 is another server's", got)
	}
	if held.Status != StatusFiring || held.Details["rules"] != "inet x chain y handle 3: mark" || held.Summary == "" {
		t.Errorf("n1's alert re-sent as %+v", held)
	}
	if got := rs.all(); len(got) != 1 || got[0].Key != key2 {
		t.Fatalf("notified %+v, want n2's firing alone: n1's is posted again, not raised", got)
	}

	t.Log("n1 reports to another server now: its alert is dropped here, unresolved")
	mu.Lock()
	nodes = nil
	mu.Unlock()
	clk.Advance(time.Minute)
	e.Sweep()
	if got := rs.take(); len(got) != 0 {
		t.Fatalf("re-sent %v, want nothing", got)
	}
	if got := rs.all(); len(got) != 1 {
		t.Fatalf("notified %+v, want no resolve", got)
	}
	t.Log("n1's bypass reported here again raises it again")
	e.process(item{entry: nodeFirewall("n1", "1")})
	if got := rs.all(); len(got) != 2 || got[1].Key != key1 || got[1].Status != StatusFiring {
		t.Fatalf("notified %+v, want n1's alert raised", got)
	}
}

// TestResendOnlyStanding: the dispatcher queues a re-send for its
// Alertmanager sinks alone, with the alerts that meet each sink's
// severity; Slack, PagerDuty and webhooks are not notified again.
func TestResendOnlyStanding(t *testing.T) {
	var routes []Route
	for _, sc := range []SinkConfig{
		{Name: "slack", Type: SinkSlack, URL: NewSecret("https://hooks.example/x")},
		{Name: "pd", Type: SinkPagerDuty, URL: NewSecret(PagerDutyURL), RoutingKey: NewSecret(testRoutingKey)},
		{Name: "hook", Type: SinkWebhook, URL: NewSecret("https://siem.example/in")},
		{Name: "am", Type: SinkAlertmanager, URL: NewSecret("http://127.0.0.1:9093")},
		{Name: "am-high", Type: SinkAlertmanager, URL: NewSecret("http://127.0.0.1:9094"), MinSeverity: SeverityHigh},
	} {
		sk, err := NewSink(sc, nil)
		if err != nil {
			t.Fatal(err)
		}
		routes = append(routes, Route{Sink: sk, MinSeverity: sc.MinSeverity})
	}
	d, err := NewDispatcher(DispatcherConfig{Routes: routes})
	if err != nil {
		t.Fatal(err)
	}
	low, high := fixtureAlert(StatusFiring), fixtureAlert(StatusFiring)
	low.Severity, low.Key = SeverityLow, "moat/scan/low"
	d.Resend([]Alert{low, high})
	for i, want := range []int{0, 0, 0, 2, 1} {
		n := 0
		if len(d.queues[i]) > 0 {
			n = len((<-d.queues[i]).all)
		}
		if n != want {
			t.Errorf("sink %s: %d alerts re-sent, want %d", routes[i].Sink.Name(), n, want)
		}
	}
}

// TestStandingAlertAtAlertmanager: a firing alert stands at a real
// Alertmanager for as long as it holds in moat. moat sent it once and its
// resolve, with the firing alert's endsAt a day ahead: an Alertmanager
// restarted without its data (or one new to its cluster) never learnt of
// it, a standing alert lapsed there after a day while moat held it, and
// the alerts of a server that stopped stood for a day. Now each is posted
// again every resend interval, with endsAt four intervals ahead; Slack is
// told once.
func TestStandingAlertAtAlertmanager(t *testing.T) {
	port, err := ports.Run(1)
	if err != nil {
		t.Fatal(err)
	}
	am := amtest.Start(t, port)
	slack := newReceiver(t, 200)
	var routes []Route
	for _, sc := range []SinkConfig{
		{Name: "am", Type: SinkAlertmanager, URL: NewSecret(am.URL()), Horizon: 4 * time.Minute},
		{Name: "slack", Type: SinkSlack, URL: NewSecret(slack.srv.URL + secretPath)},
	} {
		sk, err := NewSink(sc, nil)
		if err != nil {
			t.Fatal(err)
		}
		routes = append(routes, Route{Sink: sk})
	}
	d, err := NewDispatcher(DispatcherConfig{Routes: routes, Delivery: Delivery{Timeout: testkit.WaitLimit}})
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	e, err := New(Config{Now: clk.Now, Notifier: d, Resend: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { _ = d.Run(ctx); close(runDone) }()
	t.Cleanup(func() { cancel(); <-runDone })
	key := DedupKey(RuleFirewallBypass, "n1")

	e.Sweep() // the first re-send, of nothing yet

	t.Log("n1's firewall is bypassed: the alert reaches Alertmanager, and Slack once")
	e.process(item{entry: nodeFirewall("n1", "1")})
	testkit.WaitFor(t, "the alert active at Alertmanager", func() bool { _, ok := am.Active()[key]; return ok })
	if a := am.Active()[key]; a.EndsAt.Sub(time.Now()) > 4*time.Minute {
		t.Errorf("endsAt %s: more than four resend intervals ahead", a.EndsAt)
	}

	t.Log("Alertmanager restarts without its data: the next re-send, one interval on, brings the alert back")
	am.Stop()
	am = amtest.Start(t, port)
	if _, ok := am.Active()[key]; ok {
		t.Fatal("the restarted Alertmanager kept the alert: it had data")
	}
	clk.Advance(time.Minute)
	e.Sweep()
	testkit.WaitFor(t, "the alert active at the restarted Alertmanager", func() bool { _, ok := am.Active()[key]; return ok })
	if n := slack.count(); n != 1 {
		t.Errorf("Slack got %d posts, want the firing alert once", n)
	}

	t.Log("the bypass cleared: the resolve ends the alert at once, not four intervals on")
	e.process(item{entry: nodeFirewall("n1", "0")})
	testkit.WaitFor(t, "the alert gone from Alertmanager", func() bool { _, ok := am.Active()[key]; return !ok })
	testkit.WaitFor(t, "Slack told of the resolve", func() bool { return slack.count() == 2 })
	e.mu.Lock()
	left := len(e.sent)
	e.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d alerts still held for re-sending after the resolve", left)
	}
}

// TestStoppedSenderLapses: the firing alerts of a sender that stopped
// lapse at Alertmanager once the last endsAt passes (four resend
// intervals: a second's here), rather than standing for a day.
func TestStoppedSenderLapses(t *testing.T) {
	port, err := ports.Run(1)
	if err != nil {
		t.Fatal(err)
	}
	am := amtest.Start(t, port)
	sk, err := NewSink(SinkConfig{Name: "am", Type: SinkAlertmanager, URL: NewSecret(am.URL()), Horizon: 4 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := fixtureAlert(StatusFiring)
	a.StartsAt = time.Now()
	sent := time.Now()
	if err := sk.SendAll(context.Background(), []Alert{a}); err != nil {
		t.Fatal(err)
	}
	got, ok := am.Active()[a.Key]
	if !ok {
		t.Fatal("the alert is not active at Alertmanager")
	}
	// Alertmanager keeps times to the millisecond.
	if got.EndsAt.Before(sent.Add(4*time.Second).Truncate(time.Millisecond)) || got.EndsAt.After(time.Now().Add(4*time.Second)) {
		t.Errorf("endsAt %s, want four seconds after the post (%s)", got.EndsAt, sent)
	}
	t.Log("the sender stops: nothing more is posted")
	testkit.WaitFor(t, "the alert lapsed at Alertmanager", func() bool { _, ok := am.Active()[a.Key]; return !ok })
}

// revokedFrom is node's record of svc's revoked identity used.
func revokedFrom(svc, node string) flow.Record {
	r := revokedUse(svc)
	r.SrcEndpoint.UID = svc
	r.Unmapped.Node = node
	return *r
}

// TestStandingPolicy: the policy widened is a standing condition. An
// engine that did not see its alert fire (it restarted, or another
// server took the apply) posts it again while the store says it stands,
// without notifying; an apply that keeps it widened raises nothing new,
// and one that narrows it resolves it there, where the engine saw none
// fire, so that Alertmanager is told rather than left to let it lapse.
func TestStandingPolicy(t *testing.T) {
	clk := newClock()
	rs := &resends{}
	var mu sync.Mutex
	list := []Standing{{Rule: RulePolicyWidened, Subject: PolicySubject,
		Detail: map[string]string{DetailWildcard: "true", "actor": "spiffe://moat.test/admin/alice", "applied": "policy v3"}}}
	e, err := New(Config{Now: clk.Now, Notifier: rs, Standing: func() ([]Standing, error) {
		mu.Lock()
		defer mu.Unlock()
		return list, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	key := DedupKey(RulePolicyWidened, PolicySubject)
	e.Sweep()
	if got := fmt.Sprint(rs.take()); got != fmt.Sprint([][]string{{key}}) {
		t.Fatalf("re-sent %s, want the policy's alert", got)
	}
	e.mu.Lock()
	held := e.sent[key]
	e.mu.Unlock()
	if held.Status != StatusFiring || held.Details["applied"] != "policy v3" || held.Details["widened"] != DetailWildcard ||
		held.Summary != "policy v3 widened by spiffe://moat.test/admin/alice (wildcard)" {
		t.Errorf("held %+v", held)
	}

	t.Log("another widening apply of the widened policy: nothing new")
	e.process(item{entry: policyApply("policy v4", "ok", map[string]string{DetailWildcard: "true", DetailWasWidened: "true"})})
	if got := rs.all(); len(got) != 0 {
		t.Fatalf("notified %+v, want nothing: the alert stands", got)
	}

	t.Log("the policy narrowed: resolved, and posted no more")
	e.process(item{entry: policyApply("policy v5", "ok", map[string]string{DetailWasWidened: "true"})})
	if got := rs.all(); len(got) != 1 || got[0].Key != key || got[0].Status != StatusResolved || got[0].Details["resolved_by"] == "" {
		t.Fatalf("notified %+v, want the policy's alert resolved", got)
	}
	mu.Lock()
	list = nil
	mu.Unlock()
	clk.Advance(time.Minute)
	e.Sweep()
	if got := rs.take(); len(got) != 0 {
		t.Fatalf("re-sent %v after the resolve", got)
	}

	t.Log("an apply that narrows nothing resolves nothing")
	e.process(item{entry: policyApply("policy v6", "ok", nil)})
	if got := rs.all(); len(got) != 1 {
		t.Fatalf("notified %+v, want no second resolve", got)
	}
}

// TestResendOutage: while Alertmanager is down, every failed re-send is
// counted by the receiver's kind, and the log says so at the first, then
// once per outageLog with how many failed since, and once when a
// re-send goes through again: a day's outage at a re-send a minute is a
// few hundred lines, not a line a minute.
func TestResendOutage(t *testing.T) {
	port, err := ports.Run(1)
	if err != nil {
		t.Fatal(err)
	}
	am := amtest.Start(t, port)
	sk, err := NewSink(SinkConfig{Name: "am", Type: SinkAlertmanager, URL: NewSecret(am.URL()), Horizon: 4 * time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := metrics.NewRegistry()
	m, err := NewMetrics(reg, []string{"am"})
	if err != nil {
		t.Fatal(err)
	}
	logs := &testkit.Buffer{}
	clk := newClock()
	d, err := NewDispatcher(DispatcherConfig{Routes: []Route{{Sink: sk}}, Now: clk.Now, Metrics: m, Delivery: Delivery{Timeout: testkit.WaitLimit},
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { _ = d.Run(ctx); close(runDone) }()
	t.Cleanup(func() { cancel(); <-runDone })
	failures := func() float64 { return m.failures.WithLabelValues(SinkAlertmanager).Value() }
	lines := func(msg string) int { return strings.Count(logs.String(), "msg=\""+msg) }
	a := fixtureAlert(StatusFiring)

	t.Log("Alertmanager is down: five re-sends a minute apart fail")
	am.Stop()
	for i := 1; i <= 5; i++ {
		d.Resend([]Alert{a})
		testkit.WaitFor(t, fmt.Sprintf("failure %d counted", i), func() bool { return failures() == float64(i) })
		clk.Advance(time.Minute)
	}
	if n := lines("detect: re-send of the firing alerts failed"); n != 1 {
		t.Fatalf("%d lines logged of five failures, want the first alone:\n%s", n, logs)
	}
	t.Log("ten minutes into the outage, one line more, counting the failures since")
	clk.Advance(outageLog - 5*time.Minute)
	d.Resend([]Alert{a})
	testkit.WaitFor(t, "failure 6 counted", func() bool { return failures() == 6 })
	if n := lines("detect: re-send of the firing alerts failed"); n != 2 || !strings.Contains(logs.String(), "failed=5") {
		t.Fatalf("%d lines logged of six failures, want two, the second counting five:\n%s", n, logs)
	}
	for _, k := range []string{SinkSlack, SinkPagerDuty, SinkWebhook} {
		if v := m.failures.WithLabelValues(k).Value(); v != 0 {
			t.Errorf("%s failures: %v, want 0", k, v)
		}
	}

	t.Log("Alertmanager is back: the next re-send reaches it, and the log says so once")
	am = amtest.Start(t, port)
	d.Resend([]Alert{a})
	testkit.WaitFor(t, "the alert active at Alertmanager", func() bool { _, ok := am.Active()[a.Key]; return ok })
	testkit.WaitFor(t, "the recovery logged", func() bool { return lines("detect: re-sends of the firing alerts go through again") == 1 })
	if !strings.Contains(logs.String(), "failed=6") {
		t.Errorf("the recovery does not count the outage's six failures:\n%s", logs)
	}
	metricstest.Lint(t, metricstest.Text(t, reg))
}
