//go:build linux

package egress

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/firewall"
	"moat/internal/flow"
	"moat/internal/flow/flowtest"
	"moat/internal/flow/ocsfcheck"
	"moat/internal/netlab"
	"moat/internal/policy"
	"moat/internal/sockdiag"
	"moat/internal/testkit"
)

const intentions = `egress:
  - name: payments
    from: [api]
    to: api.example.test
    ports: [443]
  - name: inside
    from: [api]
    to: internal.example.test
    ports: [443]
  - name: translated
    from: [api]
    to: "*.v6.example.test"
    ports: [443]
`

// world is a node whose firewall enforces, an "internet" host serving
// HTTPS for api.example.test and DNS, and an "evil" host serving HTTPS
// too (an attacker's server).
type world struct {
	node, internet, evil *netlab.Host
	fw                   *firewall.Manager
	roots                *x509.CertPool
	recs                 *flow.Memory

	zoneMu sync.Mutex // guards zone
	zone   map[string]netip.Addr
}

// setName has the world's DNS answer name with a, or no address when a
// is the zero Addr.
func (w *world) setName(name string, a netip.Addr) {
	w.zoneMu.Lock()
	defer w.zoneMu.Unlock()
	if !a.IsValid() {
		delete(w.zone, name)
		return
	}
	w.zone[name] = a
}

func newWorld(t *testing.T) *world {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces and nftables need root (CI runs as root)")
	}
	l, err := netlab.New(fmt.Sprintf("egt%d-%d-", os.Getpid()%100000, time.Now().UnixNano()%1000), netip.MustParsePrefix("198.18.9.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	w := &world{recs: &flow.Memory{}}
	// Whatever the world recorded, from the firewall and the egress path,
	// conforms to OCSF 1.3.0.
	t.Cleanup(func() {
		for _, r := range w.recs.Records() {
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if err := ocsfcheck.Check(b); err != nil {
				t.Errorf("%s\n%s", err, b)
			}
		}
	})
	for _, h := range []struct {
		p    **netlab.Host
		name string
	}{{&w.node, "node"}, {&w.internet, "internet"}, {&w.evil, "evil"}} {
		if *h.p, err = l.AddHost(h.name); err != nil {
			t.Fatal(err)
		}
	}
	cert, pool := serverCert(t, "api.example.test", "evil.example.test")
	w.roots = pool
	for _, h := range []*netlab.Host{w.internet, w.evil} {
		var ln net.Listener
		if err := h.Do(func() (err error) {
			ln, err = tls.Listen("tcp", ":443", &tls.Config{Certificates: []tls.Certificate{cert}})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		who := h.Name
		go http.Serve(ln, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { fmt.Fprintf(rw, "%s says hi to %s", who, r.Host) }))
	}
	// The DNS server: the allowed name on the internet host, another name
	// on the attacker's, one on an internal address.
	w.zone = map[string]netip.Addr{
		"api.example.test.":      w.internet.Addr,
		"evil.example.test.":     w.evil.Addr,
		"internal.example.test.": netip.MustParseAddr("10.1.2.3"),
		// 10.1.2.3 and the metadata address as a DNS64 resolver, a 6to4
		// host or the IPv4-compatible form would give them.
		"nat64.v6.example.test.":     netip.MustParseAddr("64:ff9b::a01:203"),
		"metadata.v6.example.test.":  netip.MustParseAddr("64:ff9b::a9fe:a9fe"),
		"local64.v6.example.test.":   netip.MustParseAddr("64:ff9b:1::a01:203"),
		"sixtofour.v6.example.test.": netip.MustParseAddr("2002:a01:203::1"),
		"compat.v6.example.test.":    netip.MustParseAddr("::a01:203"),
		// Loopback, the cloud metadata address, link-local and the
		// unspecified address, plain and IPv4-mapped.
		"loopback.v6.example.test.":    netip.MustParseAddr("127.0.0.1"),
		"metadata4.v6.example.test.":   netip.MustParseAddr("169.254.169.254"),
		"unspecified.v6.example.test.": netip.MustParseAddr("0.0.0.0"),
		"loopback6.v6.example.test.":   netip.MustParseAddr("::1"),
		"linklocal6.v6.example.test.":  netip.MustParseAddr("fe80::1"),
		"mapped.v6.example.test.":      netip.MustParseAddr("::ffff:169.254.169.254"),
		// The egress node's own address (TestEgressOwnAddress).
		"self.v6.example.test.": w.node.Addr,
		// A name of the node's search domain (TestEgressSearchDomain).
		"nothere.v6.example.test.corp.test.": w.evil.Addr,
	}
	var pc net.PacketConn
	if err := w.internet.Do(func() (err error) { pc, err = net.ListenPacket("udp", ":53"); return err }); err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(rw dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, qq := range q.Question {
			w.zoneMu.Lock()
			a, ok := w.zone[strings.ToLower(qq.Name)]
			w.zoneMu.Unlock()
			switch {
			case ok && a.Is4() && qq.Qtype == dns.TypeA:
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30}, A: a.AsSlice()})
			case ok && a.Is6() && qq.Qtype == dns.TypeAAAA:
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 30}, AAAA: a.AsSlice()})
			}
		}
		rw.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })

	if w.fw, err = firewall.New(firewall.Config{NetNS: w.node.Path(), Node: "node", Flows: w.recs}); err != nil {
		t.Fatal(err)
	}
	if err := w.fw.Apply(firewall.Build(firewall.Inputs{Mode: firewall.ModeEnforce, Resolvers: []netip.Addr{w.internet.Addr}, Egress: true})); err != nil {
		t.Fatal(err)
	}
	return w
}

// dial dials from inside h, as the agent's sockets there would.
func dial(h *netlab.Host, control func(string, string, syscall.RawConn) error) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		err = h.Do(func() error {
			d := net.Dialer{Control: control}
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

func (w *world) point(t *testing.T, pol *policy.Table) *Point {
	t.Helper()
	p, err := NewPoint(PointConfig{
		Node: "node", TrustDomain: spiffeid.RequireTrustDomainFromString("example.org"),
		Policy: func() *policy.Table { return pol },
		Resolver: &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dial(w.node, nil)(ctx, network, netip.AddrPortFrom(w.internet.Addr, 53).String())
		}},
		Pin:         w.fw.Pin,
		Dial:        dial(w.node, firewall.Control),
		Flows:       w.recs,
		DialTimeout: testkit.WaitLimit,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (w *world) proxy(t *testing.T, pol *policy.Table, point *Point, gateway func(context.Context, string) (net.Conn, error), callers func(int) []string) *Proxy {
	t.Helper()
	p, err := NewProxy(ProxyConfig{
		Node: "node", TrustDomain: spiffeid.RequireTrustDomainFromString("example.org"),
		ConnectAddr: "127.0.0.1:0", SNIAddr: "127.0.0.1:0",
		Policy: func() *policy.Table { return pol }, PeerUID: sockdiag.PeerUID, Callers: callers,
		Point: point, Gateway: gateway, Flows: w.recs, DialTimeout: testkit.WaitLimit,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return p
}

// get fetches https://host/ through the CONNECT proxy.
func (w *world) get(p *Proxy, host string) (string, error) {
	proxyURL := &url.URL{Scheme: "http", Host: p.Addr("connect").String()}
	c := &http.Client{Timeout: testkit.WaitLimit, Transport: &http.Transport{
		Proxy: http.ProxyURL(proxyURL), TLSClientConfig: &tls.Config{RootCAs: w.roots}, DisableKeepAlives: true}}
	resp, err := c.Get("https://" + host + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func apiCaller(int) []string { return []string{"api"} }

func TestEgressDirect(t *testing.T) {
	w := newWorld(t)
	pol, err := policy.Parse([]byte(intentions))
	if err != nil {
		t.Fatal(err)
	}
	pt := w.point(t, pol)
	p := w.proxy(t, pol, pt, nil, apiCaller)
	apiAddr := netip.AddrPortFrom(w.internet.Addr, 443).String()

	t.Log("the node itself cannot reach the internet: the firewall drops it")
	short, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if c, err := dial(w.node, nil)(short, "tcp", apiAddr); err == nil {
		c.Close()
		t.Fatal("an unmarked socket of the node reached the internet host")
	}
	t.Log("through the egress path, the allowed name works")
	body, err := w.get(p, "api.example.test")
	if err != nil || body != "internet says hi to api.example.test" {
		t.Fatalf("allowed name: %q, %v", body, err)
	}
	rec := wait(t, w.recs, "the egress flow", func(r flow.Record) bool {
		return r.ActivityID == flow.ActivityClose && r.DstEndpoint.Hostname == "api.example.test"
	})
	if rec.SrcEndpoint.UID != "spiffe://example.org/svc/api" || rec.FirewallRule.Name != "payments" || rec.DstEndpoint.IP != w.internet.Addr.String() ||
		rec.TLS.SNI != "api.example.test" || rec.Traffic.BytesIn == 0 || rec.Metadata.Product.Name != ProductName {
		t.Errorf("egress record: %+v %+v %+v %+v %+v", rec.SrcEndpoint, rec.DstEndpoint, rec.FirewallRule, rec.TLS, rec.Traffic)
	}
	st, err := firewall.Show(w.node.Path())
	if err != nil || len(st.Pins) != 1 || st.Pins[0].Addr.String() != apiAddr {
		t.Errorf("pins after the allowed call: %+v %v", st.Pins, err)
	}

	t.Log("a name no rule allows is refused and recorded")
	if _, err := w.get(p, "evil.example.test"); err == nil {
		t.Error("a name no rule allows was reached")
	}
	wait(t, w.recs, "the denied name", func(r flow.Record) bool {
		return r.Unmapped.ReasonCode == flow.ReasonEgressDenied && r.DstEndpoint.Hostname == "evil.example.test" && r.SrcEndpoint.SvcName == "api"
	})
	t.Log("the attacker's address, asked for directly, is refused")
	if _, err := w.get(p, w.evil.Addr.String()); err == nil {
		t.Error("the attacker's address was reached through the proxy")
	}
	t.Log("and the node cannot reach it with a marked socket either: it was never pinned")
	short2, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	if c, err := dial(w.node, firewall.Control)(short2, "tcp", netip.AddrPortFrom(w.evil.Addr, 443).String()); err == nil {
		c.Close()
		t.Error("a marked socket reached an address that no allowed name resolved to")
	}

	t.Log("an allowed name with another TLS server name (fronting) is refused at the egress point")
	c, err := net.Dial("tcp", p.Addr("connect").String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "CONNECT api.example.test:443 HTTP/1.1\r\nHost: api.example.test:443\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	tc := tls.Client(c, &tls.Config{ServerName: "evil.example.test", RootCAs: w.roots})
	tc.SetDeadline(time.Now().Add(testkit.WaitLimit))
	if err := tc.Handshake(); err == nil {
		t.Error("a handshake naming another server went through")
	}
	c.Close()
	wait(t, w.recs, "the SNI mismatch", func(r flow.Record) bool {
		return r.Unmapped.ReasonCode == flow.ReasonSNIMismatch && r.TLS != nil && r.TLS.SNI == "evil.example.test"
	})

	t.Log("an allowed name resolving to an internal address is refused")
	if _, err := w.get(p, "internal.example.test"); err == nil {
		t.Error("an allowed name reached an internal address")
	}
	wait(t, w.recs, "the internal address", func(r flow.Record) bool { return r.Unmapped.ReasonCode == flow.ReasonEgressInternal })

	t.Log("so is one resolving to an internal IPv4 address inside an IPv6 one (NAT64, 6to4), to loopback, metadata or link-local")
	for _, host := range []string{"nat64.v6.example.test", "metadata.v6.example.test", "local64.v6.example.test", "sixtofour.v6.example.test", "compat.v6.example.test",
		"loopback.v6.example.test", "metadata4.v6.example.test", "unspecified.v6.example.test", "loopback6.v6.example.test", "linklocal6.v6.example.test", "mapped.v6.example.test"} {
		if _, err := w.get(p, host); err == nil {
			t.Errorf("%s was reached", host)
		}
		rec := wait(t, w.recs, host+" refused", func(r flow.Record) bool {
			return r.ActivityID == flow.ActivityRefuse && r.DstEndpoint.Hostname == host
		})
		if rec.Unmapped.ReasonCode != flow.ReasonEgressInternal {
			t.Errorf("%s: refused with %q (%s), want %q: the point took it for an outside address", host, rec.Unmapped.ReasonCode, rec.Unmapped.Reason, flow.ReasonEgressInternal)
		}
	}

	t.Log("the SNI listener takes the host from the ClientHello")
	tc, err = tls.Dial("tcp", p.Addr("sni").String(), &tls.Config{ServerName: "api.example.test", RootCAs: w.roots})
	if err != nil {
		t.Fatalf("SNI listener: %v", err)
	}
	fmt.Fprintf(tc, "GET / HTTP/1.1\r\nHost: api.example.test\r\nConnection: close\r\n\r\n")
	b, _ := io.ReadAll(tc)
	tc.Close()
	if !strings.Contains(string(b), "internet says hi") {
		t.Errorf("SNI listener answer: %q", b)
	}
}

func TestEgressExternalUpstream(t *testing.T) {
	w := newWorld(t)
	pol, err := policy.Parse([]byte(intentions))
	if err != nil {
		t.Fatal(err)
	}
	p := w.proxy(t, pol, w.point(t, pol), nil, apiCaller)
	me, other := os.Geteuid(), os.Geteuid()+1
	err = p.SetExternal([]External{
		{Service: "api", UID: &me, Host: "api.example.test", Port: 443, LocalAddr: "127.0.0.1:0"},
		{Service: "db", UID: &other, Host: "api.example.test", Port: 443, LocalAddr: "127.0.0.1:0"},
		{Service: "api", Host: "evil.example.test", Port: 443, LocalAddr: "127.0.0.1:0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	call := func(service, host string) (string, error) {
		tc, err := tls.Dial("tcp", p.ExternalAddr(service, host).String(), &tls.Config{ServerName: host, RootCAs: w.roots})
		if err != nil {
			return "", err
		}
		defer tc.Close()
		fmt.Fprintf(tc, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host)
		b, err := io.ReadAll(tc)
		return string(b), err
	}
	t.Log("the registration's uid reaches the allowed host through its upstream port")
	if body, err := call("api", "api.example.test"); err != nil || !strings.Contains(body, "internet says hi") {
		t.Fatalf("external upstream: %q %v", body, err)
	}
	wait(t, w.recs, "the upstream's flow", func(r flow.Record) bool { return r.ActivityID == flow.ActivityClose && r.SrcEndpoint.SvcName == "api" })
	t.Log("another uid is refused at a uid-guarded upstream port")
	if _, err := call("db", "api.example.test"); err == nil {
		t.Error("a process of another uid used db's external upstream")
	}
	wait(t, w.recs, "the uid mismatch", func(r flow.Record) bool { return r.Unmapped.ReasonCode == flow.ReasonUIDMismatch })
	t.Log("an upstream to a host no rule allows is refused")
	if _, err := call("api", "evil.example.test"); err == nil {
		t.Error("an external upstream reached a host no rule allows")
	}
	wait(t, w.recs, "the denied upstream", func(r flow.Record) bool {
		return r.Unmapped.ReasonCode == flow.ReasonEgressDenied && r.DstEndpoint.Hostname == "evil.example.test"
	})
	if err := p.SetExternal(nil); err != nil || p.ExternalAddr("api", "api.example.test") != nil {
		t.Errorf("listeners not removed: %v", err)
	}
}

func TestEgressIdentityAndGateway(t *testing.T) {
	w := newWorld(t)
	pol, err := policy.Parse([]byte(intentions))
	if err != nil {
		t.Fatal(err)
	}
	t.Log("a local uid that runs no service gets nothing")
	none := w.proxy(t, pol, w.point(t, pol), nil, func(int) []string { return nil })
	if _, err := w.get(none, "api.example.test"); err == nil {
		t.Error("a caller with no service identity went out")
	}
	wait(t, w.recs, "no identity", func(r flow.Record) bool { return r.Unmapped.ReasonCode == flow.ReasonNoIdentity })
	t.Log("a uid whose services have no rule for the name is refused")
	db := w.proxy(t, pol, w.point(t, pol), nil, func(int) []string { return []string{"db"} })
	if _, err := w.get(db, "api.example.test"); err == nil {
		t.Error("db went out without a rule")
	}

	t.Log("through an egress gateway (the mesh hop played by a pipe): the gateway decides again and connects")
	gw := &Gateway{Point: w.point(t, pol), Service: "egress"}
	var served sync.WaitGroup
	t.Cleanup(served.Wait)
	via := w.proxy(t, pol, nil, func(ctx context.Context, src string) (net.Conn, error) {
		if !gw.Decide(src).Allow {
			return nil, fmt.Errorf("mesh: %s refused by the egress gateway", src)
		}
		a, b := net.Pipe()
		served.Add(1)
		go func() { defer served.Done(); gw.Serve(b, src, flow.NewID()) }()
		return a, nil
	}, apiCaller)
	body, err := w.get(via, "api.example.test")
	if err != nil || !strings.Contains(body, "internet says hi") {
		t.Fatalf("via the gateway: %q %v", body, err)
	}
	rec := wait(t, w.recs, "the flow through the gateway", func(r flow.Record) bool {
		return r.ActivityID == flow.ActivityClose && r.DstEndpoint.Hostname == "api.example.test"
	})
	if rec.ProxyEndpoint == nil || rec.ProxyEndpoint.UID != "spiffe://example.org/svc/egress" || rec.SrcEndpoint.SvcName != "api" {
		t.Errorf("the gateway's record does not name the source and the gateway: %+v %+v", rec.SrcEndpoint, rec.ProxyEndpoint)
	}
	if _, err := w.get(via, "evil.example.test"); err == nil {
		t.Error("the gateway let a name through that no rule allows")
	}
	if d := gw.Decide("db"); d.Allow {
		t.Error("the gateway admits a service without egress rules")
	}
}

// wait is flowtest.Wait.
func wait(t *testing.T, recs *flow.Memory, what string, match func(flow.Record) bool) flow.Record {
	t.Helper()
	return flowtest.Wait(t, recs, what, match)
}

func serverCert(t *testing.T, names ...string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
