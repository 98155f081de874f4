package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"moat/internal/agent"
	"moat/internal/api"
	"moat/internal/flow"
	"moat/internal/server"
)

// TestBreakGlassSessionCertLife: a grant's certificates are one session's.
// access.cert signs them for access.session_cert_ttl (a minute by
// default), never past the grant's end; the node's agent admits a copy
// while it is valid and refuses it, as expired, once it is not, although
// the grant is active; a new certificate of the same grant is admitted.
// All by the cluster's clock, which the agent and the server share.
func TestBreakGlassSessionCertLife(t *testing.T) {
	c := newCluster(t)
	recs := &accessRefusals{got: map[string]flow.Record{}}
	n1 := c.startAgent("n1", func(cfg *agent.Config) { cfg.Flows = recs })
	alice := c.newGrantAccount("alice")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var l api.GrantListing
	req := api.AccessRequest{Node: "n1", Mode: api.ModeShell, Reason: "INC-76", For: 3 * time.Minute}
	if err := alice.session.Call(ctx, http.MethodPost, api.PathAccess, req, &l); err != nil {
		t.Fatal(err)
	}
	if err := c.call(http.MethodPost, api.PathAccessApprov, api.GrantRef{ID: l.ID}, &l); err != nil || l.State != api.GrantActive {
		t.Fatalf("approve: %v, %s", err, l.State)
	}
	g := l.Grant
	c.settle("n1's agent to hold the grant", func() bool {
		h, ok := n1.Grant(g.ID)
		return ok && h.Active(c.clk.Now())
	})

	t.Log("the certificate lives the session TTL, not the grant's three minutes")
	issued := c.clk.Now()
	cert := grantCert(t, alice, g)
	if end := issued.Add(server.DefaultSessionCertTTL); cert.Leaf.NotAfter.After(end) || !cert.Leaf.NotAfter.After(end.Add(-time.Second)) {
		t.Fatalf("issued at %s, the certificate ends at %s, want %s", issued, cert.Leaf.NotAfter, end)
	}
	if said, err := relayedShell(t, alice, g, cert, nil); err != nil || !strings.HasPrefix(said, "SSH-2.0-moat") {
		t.Fatalf("the certificate while it is valid: %q, %v", said, err)
	}

	t.Log("past its end, the grant still active, the agent refuses the copy as expired")
	c.clk.Advance(server.DefaultSessionCertTTL + time.Second)
	if h, ok := n1.Grant(g.ID); !ok || !h.Active(c.clk.Now()) {
		t.Fatalf("the grant should still be active at the agent: %+v, %v", h, ok)
	}
	if said, err := relayedShell(t, alice, g, cert, nil); err == nil {
		t.Fatalf("the agent admitted an expired grant certificate: it said %q", said)
	}
	rec := refusal(t, c, recs, alice.id, "certificate expired")
	if rec.Unmapped.ReasonCode != flow.ReasonExpired {
		t.Fatalf("the refusal's record: %+v", rec.Unmapped)
	}
	if said, err := relayedShell(t, alice, g, grantCert(t, alice, g), nil); err != nil || !strings.HasPrefix(said, "SSH-2.0-moat") {
		t.Fatalf("a new certificate of the grant: %q, %v", said, err)
	}

	t.Log("near the grant's end, the certificate ends with the grant")
	c.clk.Advance(g.Expires.Sub(c.clk.Now()) - 20*time.Second)
	if end := grantCert(t, alice, g).Leaf.NotAfter; !end.Equal(g.Expires.Truncate(time.Second)) {
		t.Fatalf("20s before the grant's end (%s), the certificate ends at %s", g.Expires, end)
	}
}
