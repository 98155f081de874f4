package mesh

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"moat/internal/flow"
)

// TestHandshakeNotReady: a handshake a starting mesh cannot serve yet (it
// has no services, or not yet the SVID of the one asked for) is recorded
// as not ready, not as a refusal of the peer; one for a service the node
// does not run is an unknown service.
func TestHandshakeNotReady(t *testing.T) {
	p := newPair(t)
	inboundCode := func(b *agent, code string) flow.Record {
		t.Helper()
		return b.flows.waitFor(t, "an inbound handshake record with code "+code, func(r flow.Record) bool {
			return r.ConnectionInfo.DirectionID == flow.DirectionInbound && r.Unmapped.Kind == kindHandshake && r.Unmapped.ReasonCode == code
		})
	}
	dial := func(dst string, port int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if c, err := p.a.m.Dial(ctx, "frontend", dst, port); err == nil {
			c.Close()
			t.Fatalf("frontend → %s: connected", dst)
		}
	}

	t.Log("a service whose SVID the agent has not fetched yet")
	p.b.ids.mu.Lock()
	delete(p.b.ids.m, "db")
	p.b.ids.mu.Unlock()
	dial("db", 5432)
	r := inboundCode(p.b, flow.ReasonNotReady)
	if r.Verdict() == flow.VerdictAllow {
		t.Fatalf("not-ready handshake recorded as %s", r.Verdict())
	}

	t.Log("a service this node does not run")
	p.f.mu.Lock()
	p.f.where["nosuch"] = p.b.m.Addr().String()
	p.f.mu.Unlock()
	dial("nosuch", 80)
	inboundCode(p.b, flow.ReasonUnknownService)

	t.Log("a mesh that has not received its services")
	late := &agent{clock: &clock{}, ids: &svids{m: map[string]*tls.Certificate{}}, flows: &records{}}
	late.trust = p.a.trust
	m, err := New(Config{Node: "node-c", TrustDomain: p.f.td, Trust: late.trust, Identities: late.ids, Flows: late.flows, Now: late.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	late.m = m
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() { cancel(); <-done }()
	p.f.mu.Lock()
	p.f.where["starting"] = m.Addr().String()
	p.f.mu.Unlock()
	dial("starting", 80)
	inboundCode(late, flow.ReasonNotReady)

	t.Log("the source side: no SVID of its own yet")
	p.a.ids.mu.Lock()
	delete(p.a.ids.m, "frontend")
	p.a.ids.mu.Unlock()
	dial("api", 8080)
	p.a.flows.waitFor(t, "an outbound record with code not_ready", func(r flow.Record) bool {
		return r.ConnectionInfo.DirectionID == flow.DirectionOutbound && r.Unmapped.ReasonCode == flow.ReasonNotReady
	})
}
