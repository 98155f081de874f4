package mesh

import (
	"bufio"
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
)

func isFlow(dir int, src, dst string) func(flow.Record) bool {
	return func(r flow.Record) bool {
		return r.ClassUID == flow.ClassNetworkActivity && r.ConnectionInfo != nil && r.ConnectionInfo.DirectionID == dir &&
			r.SrcEndpoint.SvcName == src && r.DstEndpoint.SvcName == dst && r.Unmapped.Kind == ""
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
		if !strings.Contains(r.Unmapped.Reason, "batch → api:8080 denied by default-deny") {
			t.Errorf("reason %q", r.Unmapped.Reason)
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

// plaintext speaks the tunnel header without TLS to the mesh port.
func plaintext(addr, service string, port int, msg string) (Response, string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return Response{}, "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	req, err := AppendRequest(nil, Request{Service: service, Port: port})
	if err != nil {
		return Response{}, "", err
	}
	if _, err := c.Write(append(req, msg+"\n"...)); err != nil {
		return Response{}, "", err
	}
	br := bufio.NewReader(c)
	resp, err := ReadResponse(br)
	if err != nil || !resp.Allowed() {
		return resp, "", err
	}
	line, err := br.ReadString('\n')
	return resp, strings.TrimSuffix(line, "\n"), err
}

func TestPermissive(t *testing.T) {
	p := newPair(t)
	mesh := p.b.m.Addr().String()
	t.Log("plaintext to legacy (permissive) is accepted and flagged")
	resp, got, err := plaintext(mesh, "legacy", 9000, "old client")
	if err != nil || got != "old client" || resp.Rule != RulePermissive {
		t.Fatalf("permissive: %+v %q %v", resp, got, err)
	}
	r := p.b.flows.waitFor(t, "plaintext to legacy", isFlow(flow.DirectionInbound, "", "legacy"))
	if r.TLS.Version != "none" || r.Unmapped.Mode != "permissive" || r.SrcEndpoint.UID != "" || r.Verdict() != flow.VerdictAllow {
		t.Fatalf("plaintext record tls=%+v unmapped=%+v", r.TLS, r.Unmapped)
	}
	t.Log("plaintext to api (strict) is refused with a reason")
	resp, _, err = plaintext(mesh, "api", 8080, "sneaky")
	if err != nil || resp.Allowed() || !strings.Contains(resp.Reason, `service "api" is strict: plaintext refused`) {
		t.Fatalf("strict: %+v %v", resp, err)
	}
	r = p.b.flows.waitFor(t, "plaintext to api", isFlow(flow.DirectionInbound, "", "api"))
	if r.Verdict() != flow.VerdictDeny || r.Unmapped.Mode != "strict" {
		t.Fatalf("strict record %+v", r.Unmapped)
	}
	if s := p.b.m.Stats(); s.Plaintext != 1 {
		t.Fatalf("plaintext count %d", s.Plaintext)
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
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
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
		name   string
		setup  func(t *testing.T, p *pair)
		reason string
	}{
		{"certificate from another CA", func(t *testing.T, p *pair) {
			other := newFixture(t)
			p.a.ids.set("frontend", other.issue(t, "frontend", time.Hour))
		}, "unknown authority"},
		{"expired SVID", func(t *testing.T, p *pair) {
			p.b.clock.Advance(2 * time.Hour) // node-b's clock is past frontend's 1h SVID
		}, "certificate expired"},
		{"revoked SVID", func(t *testing.T, p *pair) {
			cert, _ := p.a.ids.Certificate("frontend")
			p.b.trust.Update(nil, revokeSerial(cert))
		}, "identity revoked"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newPair(t)
			c.setup(t, p)
			if got, err := call(p.a.local(t, "frontend", "api"), "hi"); err == nil {
				t.Fatalf("refused caller got %q", got)
			}
			in := p.b.flows.waitFor(t, "inbound handshake failure", func(r flow.Record) bool { return r.Unmapped.Kind == kindHandshake })
			if !strings.Contains(in.Unmapped.Reason, c.reason) || in.ActivityID != flow.ActivityFail {
				t.Fatalf("destination reason %q, want %q", in.Unmapped.Reason, c.reason)
			}
			if in.SrcEndpoint.Name != "spiffe://example.org/svc/frontend" || in.SrcEndpoint.UID != "" {
				t.Fatalf("refused peer recorded as %+v; want its claimed ID as name only", in.SrcEndpoint)
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
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
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
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
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
	if r.DstEndpoint.UID != "spiffe://example.org/svc/api" || r.DstEndpoint.Name != "spiffe://example.org/svc/db" {
		t.Fatalf("destination recorded as %+v", r.DstEndpoint)
	}
}

func TestSetServicesReconciles(t *testing.T) {
	p := newPair(t)
	fe := Service{Name: "frontend", Port: 3000, AppAddr: "127.0.0.1:1", Upstreams: []Upstream{{Service: "api", Port: 8080}}}
	if err := p.a.m.SetServices([]Service{fe}); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.a.m.LocalAddr("gateway", "api"); ok {
		t.Fatal("gateway's listener survived its removal")
	}
	addr := p.a.local(t, "frontend", "api")
	if _, err := call(addr, "kept"); err != nil {
		t.Fatalf("kept listener: %v", err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	bad := fe
	bad.Upstreams = append(bad.Upstreams, Upstream{Service: "db", Port: 5432, LocalAddr: busy.Addr().String()})
	if err := p.a.m.SetServices([]Service{bad}); err == nil || !strings.Contains(err.Error(), `upstream "db": listen`) {
		t.Fatalf("bind conflict: %v", err)
	}
	if _, ok := p.a.m.LocalAddr("frontend", "db"); ok {
		t.Fatal("failed reconcile left a listener")
	}
	if got, _ := p.a.m.LocalAddr("frontend", "api"); got.String() != addr {
		t.Fatal("failed reconcile changed a listener")
	}
	for _, c := range []struct {
		s    Service
		want string
	}{
		{Service{Name: "Bad_Name", Port: 1, AppAddr: "127.0.0.1:1"}, "bad name"},
		{Service{Name: "x", AppAddr: "nowhere"}, `app address "nowhere"`},
		{Service{Name: "x", Port: 1, Mode: "open"}, `mode "open"`},
		{Service{Name: "x", Port: 1, Upstreams: []Upstream{{Service: "y", Port: 0}}}, "port 0 out of range"},
	} {
		if err := p.a.m.SetServices([]Service{c.s}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want %q", c.s, err, c.want)
		}
	}
	if got, ok := p.a.m.LocalAddr("frontend", "api"); !ok || got.String() != addr {
		t.Fatal("a refused SetServices changed the listeners")
	}
}

func TestPermissiveTurnedStrictCutsPlaintext(t *testing.T) {
	p := newPair(t)
	c, err := net.Dial("tcp", p.b.m.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	req, _ := AppendRequest(nil, Request{Service: "legacy", Port: 9000})
	if _, err := c.Write(append(req, "one\n"...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	if resp, err := ReadResponse(br); err != nil || !resp.Allowed() {
		t.Fatalf("%+v %v", resp, err)
	}
	if line, err := br.ReadString('\n'); err != nil || line != "one\n" {
		t.Fatalf("%q %v", line, err)
	}
	t.Log("the policy drops legacy's permissive mode: its plaintext connection is cut")
	p.b.m.SetPolicy(mustPolicy(t, strings.Replace(testPolicy, "legacy: {mode: permissive}", "legacy: {mode: strict}", 1)))
	if _, err := br.ReadString('\n'); err == nil {
		t.Fatal("plaintext connection survived")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("plaintext connection not cut")
	}
	r := p.b.flows.waitFor(t, "cut plaintext", func(r flow.Record) bool {
		return isFlow(flow.DirectionInbound, "", "legacy")(r) && r.ActivityID == activityCut
	})
	if !strings.Contains(r.Unmapped.Reason, `service "legacy" is now strict`) {
		t.Fatalf("reason %q", r.Unmapped.Reason)
	}

	t.Log("a service's own Mode overrides the policy")
	app := startApp(t, echo)
	if err := p.b.m.SetServices([]Service{{Name: "api", Port: 8080, AppAddr: app}, {Name: "legacy", Port: 9000, AppAddr: app, Mode: policy.Permissive}}); err != nil {
		t.Fatal(err)
	}
	if _, got, err := plaintext(p.b.m.Addr().String(), "legacy", 9000, "two"); err != nil || got != "two" {
		t.Fatalf("override: %q %v", got, err)
	}

	t.Log("no policy at all denies every stream")
	if got, err := call(p.a.local(t, "frontend", "api"), "x"); err != nil || got != "x" {
		t.Fatalf("before: %q %v", got, err)
	}
	p.b.m.SetPolicy(nil)
	if got, err := call(p.a.local(t, "frontend", "api"), "x"); err == nil {
		t.Fatalf("nil policy let a call through: %q", got)
	}
	p.b.flows.waitFor(t, "nil-policy denial", func(r flow.Record) bool {
		return isFlow(flow.DirectionInbound, "frontend", "api")(r) && r.Verdict() == flow.VerdictDeny && r.FirewallRule != nil && r.FirewallRule.Name == policy.DefaultDeny
	})
}

func TestTunnelNeedsALPN(t *testing.T) {
	p := newPair(t)
	cert, _ := p.a.ids.Certificate("frontend")
	c, err := tls.Dial("tcp", p.b.m.Addr().String(), &tls.Config{
		InsecureSkipVerify: true, ServerName: "api", Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS13,
	})
	if err == nil {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
		c.Close()
	}
	if err == nil {
		t.Fatal("a client without the tunnel ALPN was let in")
	}
	r := p.b.flows.waitFor(t, "handshake failure", func(r flow.Record) bool { return r.Unmapped.Kind == kindHandshake })
	if !strings.Contains(r.Unmapped.Reason, `did not offer ALPN "moat-tunnel/1"`) {
		t.Fatalf("reason %q", r.Unmapped.Reason)
	}
}
