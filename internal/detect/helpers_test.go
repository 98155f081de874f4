package detect

import (
	"sync"
	"testing"
	"time"

	"moat/internal/audit"
	"moat/internal/flow"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// collector is a Notifier that keeps every alert.
type collector struct {
	mu     sync.Mutex // guards alerts
	alerts []Alert
	ch     chan Alert
}

func (c *collector) Notify(a Alert) {
	c.mu.Lock()
	c.alerts = append(c.alerts, a)
	c.mu.Unlock()
	if c.ch != nil {
		c.ch <- a
	}
}

func (c *collector) all() []Alert {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Alert(nil), c.alerts...)
}

func (c *collector) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.alerts = nil
}

// testRules are small thresholds so streams stay short.
func testRules() Rules {
	r := DefaultRules()
	set := func(name string, f func(*RuleConfig)) {
		rc := r[name]
		f(&rc)
		r[name] = rc
	}
	set(RuleScan, func(c *RuleConfig) { c.Threshold = 10 })
	set(RuleDenyBurst, func(c *RuleConfig) { c.Threshold = 50 })
	set(RuleHandshake, func(c *RuleConfig) { c.Threshold = 5 })
	set(RuleWAFSpike, func(c *RuleConfig) { c.Threshold = 5; c.Window = time.Minute })
	set(RuleNewEdge, func(c *RuleConfig) { c.Learning = time.Minute })
	return r
}

func newTestEngine(t *testing.T, clk *fakeClock, rules Rules) (*Engine, *collector) {
	t.Helper()
	col := &collector{}
	e, err := New(Config{Rules: rules, Now: clk.Now, Notifier: col})
	if err != nil {
		t.Fatal(err)
	}
	return e, col
}

// ev is one input at an offset from t0.
type ev struct {
	at  time.Duration
	rec *flow.Record
	ent *audit.Entry
}

// feed evaluates evs in order on e, moving the clock to each one's time.
func feed(e *Engine, clk *fakeClock, evs []ev) {
	for _, x := range evs {
		clk.Set(t0.Add(x.at))
		if x.ent != nil {
			e.process(item{entry: x.ent})
		} else {
			e.process(item{rec: *x.rec})
		}
	}
}

func rec(class int, verdict, kind, code string, src, dst *flow.Endpoint) *flow.Record {
	r := flow.Header(class, flow.ActivityOpen, "moat-agent", t0)
	r.SrcEndpoint, r.DstEndpoint = src, dst
	r.Unmapped = &flow.Moat{Verdict: verdict, Kind: kind, ReasonCode: code, Reason: "text: " + code}
	return &r
}

func ipEP(ip string, port int) *flow.Endpoint { return &flow.Endpoint{IP: ip, Port: port} }

func svcEP(name string, port int) *flow.Endpoint {
	return &flow.Endpoint{UID: "spiffe://moat.test/svc/" + name, SvcName: name, IP: "10.0.0.1", Port: port}
}

func denyFlow(src string, dst string, port int) *flow.Record {
	r := rec(flow.ClassNetworkActivity, flow.VerdictDeny, "", "no intention", ipEP(src, 40000), ipEP(dst, port))
	r.ActivityID, r.ActionID = flow.ActivityRefuse, flow.ActionDenied
	r.FirewallRule = &flow.Rule{Name: "default-deny"}
	return r
}

func allowFlow(src, dst string) *flow.Record {
	r := rec(flow.ClassNetworkActivity, flow.VerdictAllow, "", "", svcEP(src, 0), svcEP(dst, 443))
	r.FirewallRule = &flow.Rule{Name: src + "-to-" + dst}
	return r
}

func auditFlow(src, dst string) *flow.Record {
	r := rec(flow.ClassNetworkActivity, flow.VerdictAudit, "", "no intention", svcEP(src, 0), svcEP(dst, 5432))
	r.FirewallRule = &flow.Rule{Name: "default-deny"}
	return r
}

func handshakeFail(ip, reason string) *flow.Record {
	r := rec(flow.ClassNetworkActivity, flow.VerdictDeny, "handshake", reason, ipEP(ip, 51000), svcEP("api", 8443))
	r.ClassUID = flow.ClassDetectionFinding
	return r
}

func revokedUse(svc string) *flow.Record {
	return rec(flow.ClassNetworkActivity, flow.VerdictDeny, "handshake", flow.ReasonRevoked, svcEP(svc, 0), svcEP("db", 5432))
}

func wafEvent(ip string, blocked bool) *flow.Record {
	r := rec(flow.ClassHTTPActivity, flow.VerdictAllow, "waf", "", ipEP(ip, 50000), ipEP("192.0.2.1", 443))
	r.ActionID, r.DispositionID = flow.ActionAllowed, flow.DispositionLogged
	if blocked {
		r.Unmapped.Verdict = flow.VerdictDeny
		r.ActionID, r.DispositionID = flow.ActionDenied, flow.DispositionBlocked
	}
	r.Unmapped.Rules = []string{"942100"}
	r.HTTPRequest = &flow.HTTPRequest{Method: "GET", URL: &flow.URL{Path: "/login"}}
	return r
}

func policyApply(target, result string, detail map[string]string) *audit.Entry {
	return &audit.Entry{Time: t0, Actor: "spiffe://moat.test/admin/alice", Role: "admin", Action: ActionPolicyApply, Target: target, Result: result, Detail: detail}
}

// every returns n events, each made by mk(i), spaced by step from start.
func every(n int, start, step time.Duration, mk func(i int) ev) []ev {
	out := make([]ev, n)
	for i := range n {
		out[i] = mk(i)
		out[i].at = start + time.Duration(i)*step
	}
	return out
}

func r2ev(r *flow.Record) ev { return ev{rec: r} }
