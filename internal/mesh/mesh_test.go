package mesh

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"moat/internal/flow"
	"moat/internal/policy"
	"moat/internal/testkit"
)

// isFlow matches the final record (close, refuse, reset) of a connection.
func isFlow(dir int, src, dst string) func(flow.Record) bool {
	return func(r flow.Record) bool {
		return r.ClassUID == flow.ClassNetworkActivity && r.ConnectionInfo != nil && r.ConnectionInfo.DirectionID == dir &&
			r.SrcEndpoint.SvcName == src && r.DstEndpoint.SvcName == dst && r.Unmapped.Kind == "" &&
			r.ActivityID != flow.ActivityOpen && r.ActivityID != flow.ActivityTraffic
	}
}

func TestAllowedPair(t *testing.T) {
	p := newPair(t)
	t.Log("frontend calls api on 8080: web-to-api allows it")
	got, err := call(p.a.local(t, "frontend", "api"), "hello")
	if err != nil || got != "hello" {
		t.Fatalf("call: %q, %v", got, err)
	}
	out := p.a.flows.waitFor(t, "outbound frontend → api", isFlow(flow.DirectionOutbound, "frontend", "api"))
	in := p.b.flows.waitFor(t, "inbound frontend → api", isFlow(flow.DirectionInbound, "frontend", "api"))
	for _, r := range []flow.Record{out, in} {
		if r.Verdict() != flow.VerdictAllow || r.FirewallRule == nil || r.FirewallRule.Name != "web-to-api" {
			t.Errorf("verdict %q rule %+v", r.Verdict(), r.FirewallRule)
		}
		if r.SrcEndpoint.UID != "spiffe://example.org/svc/frontend" || r.DstEndpoint.UID != "spiffe://example.org/svc/api" {
			t.Errorf("identities %q → %q", r.SrcEndpoint.UID, r.DstEndpoint.UID)
		}
		if r.TLS == nil || r.TLS.Version != "TLSv1.3" {
			t.Errorf("tls %+v", r.TLS)
		}
		if r.Traffic.BytesIn != 6 || r.Traffic.BytesOut != 6 {
			t.Errorf("traffic %+v", r.Traffic)
		}
		if r.SrcEndpoint.IP != "127.0.0.1" || r.DstEndpoint.Port == 0 || r.StartTime == 0 {
			t.Errorf("endpoints %+v → %+v", r.SrcEndpoint, r.DstEndpoint)
		}
	}
	if in.Unmapped.Mode != "strict" || in.Unmapped.Node != "node-b" {
		t.Errorf("inbound unmapped %+v", in.Unmapped)
	}
	if in.ConnectionInfo.UID == "" || in.ConnectionInfo.UID != out.ConnectionInfo.UID {
		t.Errorf("connection ids: destination %q, source %q; want one shared id", in.ConnectionInfo.UID, out.ConnectionInfo.UID)
	}
	open := p.b.flows.waitFor(t, "open record", func(r flow.Record) bool {
		return r.ActivityID == flow.ActivityOpen && r.ConnectionInfo.UID == in.ConnectionInfo.UID
	})
	if open.Traffic.Bytes != 0 || open.Verdict() != flow.VerdictAllow {
		t.Errorf("open record %+v %+v", open.Traffic, open.Unmapped)
	}
}

func TestDeniedPair(t *testing.T) {
	p := newPair(t)
	t.Log("batch calls api: no rule allows it")
	if got, err := call(p.a.local(t, "batch", "api"), "hello"); err == nil {
		t.Fatalf("denied call answered %q", got)
	}
	for _, r := range []flow.Record{
		p.b.flows.waitFor(t, "inbound batch → api", isFlow(flow.DirectionInbound, "batch", "api")),
		p.a.flows.waitFor(t, "outbound batch → api", isFlow(flow.DirectionOutbound, "batch", "api")),
	} {
		if r.Verdict() != flow.VerdictDeny || r.FirewallRule == nil || r.FirewallRule.Name != policy.DefaultDeny {
			t.Errorf("verdict %q rule %+v", r.Verdict(), r.FirewallRule)
		}
		if !strings.Contains(r.Unmapped.Reason, "batch → api:8080 denied by default-deny") || r.Unmapped.ReasonCode != flow.ReasonPolicyDenied {
			t.Errorf("reason %q code %q", r.Unmapped.Reason, r.Unmapped.ReasonCode)
		}
		if r.ActionID != flow.ActionDenied {
			t.Errorf("action %d", r.ActionID)
		}
	}
}

func TestAuditMode(t *testing.T) {
	p := newPair(t)
	t.Log("frontend calls db: no rule allows it, but db is in audit mode")
	got, err := call(p.a.local(t, "frontend", "db"), "select 1")
	if err != nil || got != "select 1" {
		t.Fatalf("audited call: %q, %v", got, err)
	}
	r := p.b.flows.waitFor(t, "inbound frontend → db", isFlow(flow.DirectionInbound, "frontend", "db"))
	if r.Verdict() != flow.VerdictAudit || r.FirewallRule.Name != policy.DefaultDeny || r.DispositionID != flow.DispositionLogged {
		t.Fatalf("verdict %q rule %+v disposition %d", r.Verdict(), r.FirewallRule, r.DispositionID)
	}
	if !strings.Contains(r.Unmapped.Reason, "would deny frontend → db:5432") {
		t.Fatalf("reason %q", r.Unmapped.Reason)
	}
}

func TestHalfClose(t *testing.T) {
	f := newFixture(t)
	// The app answers only after the caller has stopped writing.
	app := startApp(t, func(c net.Conn) {
		b, _ := io.ReadAll(c)
		_, _ = c.Write([]byte(strings.ToUpper(string(b))))
	})
	f.newAgent(t, "node-b", []Service{{Name: "api", Port: 8080, AppAddr: app}})
	a := f.newAgent(t, "node-a", []Service{{Name: "frontend", Port: 1, AppAddr: app, Upstreams: []Upstream{{Service: "api", Port: 8080}}}})
	c, err := net.Dial("tcp", a.local(t, "frontend", "api"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testkit.WaitLimit))
	if _, err := c.Write([]byte("half closed")); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "HALF CLOSED" {
		t.Fatalf("reply %q, %v", got, err)
	}
}

func TestRefusedCallers(t *testing.T) {
	cases := []struct {
		name         string
		setup        func(t *testing.T, p *pair)
		reason, code string
	}{
		{"certificate from another CA", func(t *testing.T, p *pair) {
			other := newFixture(t)
			p.a.ids.set("frontend", other.issue(t, "frontend", time.Hour))
		}, "unknown authority", flow.ReasonUnknownAuthority},
		{"expired SVID", func(t *testing.T, p *pair) {
			p.b.clock.Advance(2 * time.Hour) // node-b's clock is past frontend's 1h SVID
		}, "certificate expired", flow.ReasonExpired},
		{"revoked SVID", func(t *testing.T, p *pair) {
			cert, _ := p.a.ids.Certificate("frontend")
			p.b.trust.Update(nil, revokeSerial(cert))
		}, "identity revoked", flow.ReasonRevoked},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newPair(t)
			c.setup(t, p)
			if got, err := call(p.a.local(t, "frontend", "api"), "hi"); err == nil {
				t.Fatalf("refused caller got %q", got)
			}
			in := p.b.flows.waitFor(t, "inbound handshake failure", func(r flow.Record) bool { return r.Unmapped.Kind == kindHandshake })
			if !strings.Contains(in.Unmapped.Reason, c.reason) || in.ActivityID != flow.ActivityFail || in.Unmapped.ReasonCode != c.code {
				t.Fatalf("destination reason %q code %q, want %q %q", in.Unmapped.Reason, in.Unmapped.ReasonCode, c.reason, c.code)
			}
			if in.Unmapped.Claimed != "spiffe://example.org/svc/frontend" || in.SrcEndpoint.UID != "" || in.SrcEndpoint.Name != "" || in.SrcEndpoint.SvcName != "" {
				t.Fatalf("refused peer recorded as %+v, claimed %q; want its claimed ID apart from its endpoint", in.SrcEndpoint, in.Unmapped.Claimed)
			}
			out := p.a.flows.waitFor(t, "outbound failure", isFlow(flow.DirectionOutbound, "frontend", "api"))
			if out.Verdict() != flow.VerdictDeny || out.Unmapped.Reason == "" {
				t.Fatalf("caller record %+v", out.Unmapped)
			}
			t.Logf("caller logged: %s", out.Unmapped.Reason)
			if p.b.m.Stats().HandshakeFailures == 0 || p.a.m.Stats().HandshakeFailures == 0 {
				t.Fatalf("handshake failures not counted: %+v %+v", p.a.m.Stats(), p.b.m.Stats())
			}
		})
	}
	t.Run("no certificate", func(t *testing.T) {
		p := newPair(t)
		c, err := tls.Dial("tcp", p.b.m.Addr().String(), &tls.Config{InsecureSkipVerify: true, ServerName: "api"})
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(testkit.WaitLimit))
			_, err = c.Read(make([]byte, 1))
			c.Close()
		}
		if err == nil {
			t.Fatal("a client without a certificate was let in")
		}
		in := p.b.flows.waitFor(t, "inbound handshake failure", func(r flow.Record) bool { return r.Unmapped.Kind == kindHandshake })
		if !strings.Contains(in.Unmapped.Reason, "didn't provide a certificate") {
			t.Fatalf("reason %q", in.Unmapped.Reason)
		}
	})
}

func TestSequentialConnectionsShareATunnel(t *testing.T) {
	p := newPair(t)
	addr := p.a.local(t, "frontend", "api")
	for i := range 1000 {
		msg := fmt.Sprint("req ", i)
		if got, err := call(addr, msg); err != nil || got != msg {
			t.Fatalf("call %d: %q, %v", i, got, err)
		}
	}
	sa, sb := p.a.m.Stats(), p.b.m.Stats()
	t.Logf("after 1000 connections: client handshakes %d, server handshakes %d, streams %d", sa.ClientHandshakes, sb.ServerHandshakes, sa.StreamsOut)
	if sa.ClientHandshakes > 2 || sb.ServerHandshakes > 2 || sa.StreamsOut != 1000 {
		t.Fatalf("stats a=%+v b=%+v", sa, sb)
	}
}

func TestEdgeOf(t *testing.T) {
	p := newPair(t)
	if _, err := call(p.a.local(t, "frontend", "api"), "x"); err != nil {
		t.Fatal(err)
	}
	for _, r := range []flow.Record{
		p.a.flows.waitFor(t, "outbound", isFlow(flow.DirectionOutbound, "frontend", "api")),
		p.b.flows.waitFor(t, "inbound", isFlow(flow.DirectionInbound, "frontend", "api")),
	} {
		e, ok := EdgeOf(r)
		if !ok || e != (policy.Edge{Src: "frontend", Dst: "api", Port: 8080}) {
			t.Fatalf("edge %+v %v", e, ok)
		}
	}
	if _, ok := EdgeOf(flow.Record{ClassUID: flow.ClassNetworkActivity}); ok {
		t.Fatal("edge from an empty record")
	}
}

func TestDial(t *testing.T) {
	p := newPair(t)
	ctx := t.Context()
	c, err := p.a.m.Dial(ctx, "gateway", "api", 8080)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(testkit.WaitLimit))
	if _, err := c.Write([]byte("via gateway")); err != nil {
		t.Fatal(err)
	}
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "via gateway" {
		t.Fatalf("reply %q, %v", got, err)
	}
	c.Close()
	r := p.a.flows.waitFor(t, "gateway record", isFlow(flow.DirectionOutbound, "gateway", "api"))
	if r.Traffic.BytesOut != 11 || r.Traffic.BytesIn != 11 || r.FirewallRule.Name != "web-to-api" {
		t.Fatalf("record traffic %+v rule %+v", r.Traffic, r.FirewallRule)
	}

	_, err = p.a.m.Dial(ctx, "batch", "api", 8080)
	var refused *RefusedError
	if !errors.As(err, &refused) || refused.Response.Rule != policy.DefaultDeny || refused.Response.Status != StatusDeny {
		t.Fatalf("batch dial: %v", err)
	}
	if _, err := p.a.m.Dial(ctx, "gateway", "api", 9999); !errors.As(err, &refused) || !strings.Contains(refused.Response.Reason, "does not serve port 9999") {
		t.Fatalf("wrong port: %v", err)
	}
}

func TestCallerChecksDestinationIdentity(t *testing.T) {
	p := newPair(t)
	t.Log("node-b answers for api with db's SVID: the caller must refuse it")
	db, _ := p.b.ids.Certificate("db")
	p.b.ids.set("api", db)
	if got, err := call(p.a.local(t, "frontend", "api"), "secret"); err == nil {
		t.Fatalf("call reached an impostor: %q", got)
	}
	r := p.a.flows.waitFor(t, "caller handshake failure", func(r flow.Record) bool { return r.Unmapped.Kind == kindHandshake })
	if !strings.Contains(r.Unmapped.Reason, `unexpected peer identity: got "spiffe://example.org/svc/db"`) {
		t.Fatalf("reason %q", r.Unmapped.Reason)
	}
	if r.DstEndpoint.UID != "spiffe://example.org/svc/api" || r.DstEndpoint.Name != "" || r.Unmapped.Claimed != "spiffe://example.org/svc/db" {
		t.Fatalf("destination recorded as %+v, claimed %q", r.DstEndpoint, r.Unmapped.Claimed)
	}
}

func TestTunnelNeedsALPN(t *testing.T) {
	p := newPair(t)
	cert, _ := p.a.ids.Certificate("frontend")
	c, err := tls.Dial("tcp", p.b.m.Addr().String(), &tls.Config{
		InsecureSkipVerify: true, ServerName: "api", Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS13,
	})
	if err == nil {
		_ = c.SetDeadline(time.Now().Add(testkit.WaitLimit))
		_, err = c.Read(make([]byte, 1))
		c.Close()
	}
	if err == nil {
		t.Fatal("a client without the tunnel ALPN was let in")
	}
	r := p.b.flows.waitFor(t, "handshake failure", func(r flow.Record) bool { return r.Unmapped.Kind == kindHandshake })
	if !strings.Contains(r.Unmapped.Reason, `offered none of the tunnel protocols ["moat-tunnel/3" "moat-tunnel/2" "moat-tunnel/1"]`) {
		t.Fatalf("reason %q", r.Unmapped.Reason)
	}
}
