// Package egress is moat's controlled way out of the mesh: services reach
// hosts outside it only through their node's agent, and only where an
// egress rule of the intentions (policy.EgressRule) lets them.
//
// On every node the agent runs a Proxy: an HTTP CONNECT proxy on loopback
// (apps set HTTPS_PROXY) and a TLS listener that takes the host from the
// ClientHello's server name (apps that resolve an external name to it). It
// tells which local service is calling from the uid that owns the calling
// socket (the mechanism of the mesh's uid-guarded listeners), checks the
// rule, and hands the connection to an egress point: itself when the node
// may connect out (Direct), or else the fleet's egress gateway, over the
// mesh with the calling service's identity.
//
// The egress point (Point) decides again, resolves the name itself and
// connects only to the addresses it resolved, pinned in the host firewall
// for the agent's marked sockets: a service cannot pair an allowed name
// with an address of its choosing, since its own resolution is never used.
// A name never reaches an internal address (loopback, link-local, private
// networks); only a network rule reaches those, and a loopback or
// link-local one (the cloud's metadata service) only a rule of such
// addresses alone. Nothing else reaches the egress node itself (the
// unspecified address, its own addresses such as its public one),
// whatever the rule: the point is the agent, which the host firewall
// admits to every app port. When the client speaks
// TLS, its first record must be its ClientHello and the server name of
// that hello, and of the second one after a HelloRetryRequest, the host
// it asked for, so an allowed name cannot front for another one on the
// same servers (HTTP Host headers inside TLS are not visible and not
// checked); an SSLv2-style hello, which names no server, is refused.
// When it speaks plain HTTP to a name, every request of the connection
// must name that host (Host, and an absolute target), and the point
// frames each body itself to find the next request; a request servers
// could read two ways is answered 403 and refused (http.go). A websocket
// upgrade opening its connection is let through, and after the server's
// 101 the connection is relayed as it comes, as other protocols are.
//
// A relayed connection on which no byte moved either way for the idle
// timeout (an hour unless configured) is closed (idle.go), and one the
// rules no longer allow once they change, or whose name no longer
// resolves to the address it was made to (Recheck).
//
// Every egress connection is recorded at the point (OCSF Network Activity
// with the host name, the source identity and the rule), and every refusal
// where it is decided, with a reason code (flow.ReasonEgressDenied,
// flow.ReasonSNIMismatch, flow.ReasonHTTPRefused, …) that detection raises
// alerts on; a connection closed for being idle ends with
// flow.ReasonIdleTimeout, one the rules no longer allow with
// flow.ReasonPolicyChanged.
package egress

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/flow"
	"moat/internal/identity"
	"moat/internal/policy"
)

// ProductName names the egress path in flow records.
const ProductName = "moat-egress"

// PinTTL is how long an egress point's resolved addresses stay pinned in
// the host firewall; connections opened meanwhile outlive it.
const PinTTL = time.Minute

// PointConfig configures a Point.
type PointConfig struct {
	// Node names this node in records.
	Node        string
	TrustDomain spiffeid.TrustDomain
	// Policy returns the intentions in force; nil (or a nil Table) denies
	// everything.
	Policy func() *policy.Table
	// Resolver resolves allowed names; nil means the system's.
	Resolver *net.Resolver
	// Pin admits the resolved addresses in the host firewall before the
	// dial; nil when the node has none.
	Pin func(addrs []netip.Addr, port uint16, ttl time.Duration) error
	// Control prepares each outgoing socket (firewall.Control marks it so
	// the pins apply); nil leaves sockets as they are.
	Control func(network, address string, c syscall.RawConn) error
	// Dial, when set, replaces the dialer (and Control) for connections
	// out: tests dial from inside a network namespace.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Flows receives the records; nil discards them.
	Flows flow.Writer
	// DialTimeout bounds one resolution and each dial; zero means 5s.
	DialTimeout time.Duration
	// IdleTimeout closes a relayed connection on which no byte moved
	// either way for that long; zero means DefaultIdleTimeout.
	IdleTimeout time.Duration
	Now         func() time.Time
	Logger      *slog.Logger
}

// Point is an egress point: the last hop before the outside.
type Point struct {
	cfg   PointConfig
	log   *slog.Logger
	open  atomic.Int64
	total atomic.Int64

	mu   sync.Mutex                 // guards live
	live map[*Upstream]func() error // relayed connections, and what closes them
}

// NewPoint returns a Point.
func NewPoint(cfg PointConfig) (*Point, error) {
	if cfg.Policy == nil {
		return nil, errors.New("egress: PointConfig needs Policy")
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.IdleTimeout < 0 {
		return nil, errors.New("egress: a negative IdleTimeout")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Flows == nil {
		cfg.Flows = flow.Discard
	}
	return &Point{cfg: cfg, log: cfg.Logger, live: map[*Upstream]func() error{}}, nil
}

// Refusal is why an egress connection was not made: a reason code
// (flow.Reason*) and the text for people.
type Refusal struct {
	Code   string
	Reason string
	Rule   string
}

func (r *Refusal) Error() string { return "egress: " + r.Reason }

// Target is one request to leave the mesh.
type Target struct {
	Src    string // the calling service, authenticated
	SrcIP  string // where the caller connected from, for records
	Host   string // in policy.NormalizeHost's form
	Port   int
	ConnID string // shared with the source's records; "" makes one
	// Via is the egress gateway's service when the connection came
	// through it over the mesh; "" when the source is local.
	Via string
}

func (t Target) String() string { return net.JoinHostPort(t.Host, strconv.Itoa(t.Port)) }

// Upstream is an admitted egress connection, dialed and not yet relayed.
type Upstream struct {
	conn  net.Conn
	rule  string
	start time.Time
	tgt   Target
	// cut holds why Recheck closed the connection: the rules in force
	// no longer allow it.
	cut atomic.Pointer[string]
}

// Open decides t, resolves the host (names only), pins what it resolved
// and dials it. A refusal is a *Refusal, already recorded.
func (p *Point) Open(ctx context.Context, t Target) (*Upstream, error) {
	start := p.cfg.Now()
	if t.ConnID == "" {
		t.ConnID = flow.NewID()
	}
	d := p.cfg.Policy().DecideEgress(t.Src, t.Host, t.Port)
	if !d.Allow {
		return nil, p.refuse(start, t, &Refusal{Code: flow.ReasonEgressDenied, Rule: d.Rule,
			Reason: fmt.Sprintf("no egress rule lets %s reach %s", orNone(t.Src), t)})
	}
	dial := p.cfg.Dial
	if dial == nil {
		dial = (&net.Dialer{Control: p.cfg.Control}).DialContext
	}
	addrs, ref := p.resolve(ctx, t)
	if ref == nil {
		ref = unnamedScope(t, addrs, d.Network)
	}
	if ref == nil {
		addrs, ref = p.notOwn(ctx, dial, t, addrs, within(d.Network, loopback4) || within(d.Network, loopback6))
	}
	if ref != nil {
		ref.Rule = d.Rule
		return nil, p.refuse(start, t, ref)
	}
	if p.cfg.Pin != nil {
		if err := p.cfg.Pin(addrs, uint16(t.Port), PinTTL); err != nil {
			return nil, p.refuse(start, t, &Refusal{Code: flow.ReasonUnavailable, Rule: d.Rule, Reason: fmt.Sprintf("cannot pin %s in the host firewall: %v", t, err)})
		}
	}
	var errs []error
	for _, a := range addrs {
		dctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
		c, err := dial(dctx, "tcp", netip.AddrPortFrom(a, uint16(t.Port)).String())
		cancel()
		if err == nil {
			return &Upstream{conn: c, rule: d.Rule, start: start, tgt: t}, nil
		}
		errs = append(errs, err)
	}
	return nil, p.refuse(start, t, &Refusal{Code: flow.ReasonUnavailable, Rule: d.Rule,
		Reason: fmt.Sprintf("%s unreachable: %v", t, errors.Join(errs...))})
}

// resolve returns the addresses to dial: the address itself, or what this
// point's resolver says for the name (fully qualified), without internal
// addresses.
func (p *Point) resolve(ctx context.Context, t Target) ([]netip.Addr, *Refusal) {
	if a, err := netip.ParseAddr(t.Host); err == nil {
		return []netip.Addr{a}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
	defer cancel()
	// The name as a fully qualified one: never another name the
	// resolver's search domains make of it.
	got, err := p.cfg.Resolver.LookupNetIP(ctx, "ip", t.Host+".")
	if err != nil || len(got) == 0 {
		return nil, &Refusal{Code: flow.ReasonEgressResolve, Reason: fmt.Sprintf("%s does not resolve: %v", t.Host, err)}
	}
	var out []netip.Addr
	var internal []string
	for _, a := range got {
		a = a.Unmap()
		if isInternal(a) {
			internal = append(internal, a.String())
			continue
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, &Refusal{Code: flow.ReasonEgressInternal, Reason: fmt.Sprintf("%s resolves only to internal addresses %v: a name rule never reaches inside (use a network rule)", t.Host, internal)}
	}
	return out, nil
}

// notOwn drops the addresses to dial that are the egress node's own,
// whether a name resolved to them (its public address, say) or a network
// rule holding them admitted them as written (loopback, the unspecified
// address, any of its own, under 0.0.0.0/0 or the node's private
// network): a connection to one stays on the node, over loopback, which
// the host firewall admits, and would reach listeners the network cannot,
// as the agent, whose uid the firewall admits to every app port of a
// service registered with a uid. Only a rule of loopback addresses alone
// (loopback true: 127.0.0.1/32, ::1/128) reaches the node, on loopback:
// the operator named it. The kernel tells the node's own addresses: a UDP
// socket connected to one of them (which sends nothing) takes it as its
// own source. The sockets are the point's dial's, so in its network
// namespace. An address the kernel has no route to is dropped too.
func (p *Point) notOwn(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), t Target, addrs []netip.Addr, loopback bool) ([]netip.Addr, *Refusal) {
	var out []netip.Addr
	var own []string
	var errs []error
	for _, a := range addrs {
		a = a.Unmap()
		if a.IsLoopback() && loopback {
			out = append(out, a)
			continue
		}
		if a.IsLoopback() || a.IsUnspecified() {
			own = append(own, a.String())
			continue
		}
		dctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
		c, err := dial(dctx, "udp", netip.AddrPortFrom(a, uint16(t.Port)).String())
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		src, _ := netip.ParseAddrPort(c.LocalAddr().String())
		c.Close()
		if src.Addr().Unmap() == a {
			own = append(own, a.String())
			continue
		}
		out = append(out, a)
	}
	switch {
	case len(out) > 0:
		return out, nil
	case len(own) > 0:
		return nil, &Refusal{Code: flow.ReasonEgressInternal, Reason: fmt.Sprintf("%s is this node's own %v: the egress point never connects to its own node", t.Host, own)}
	}
	return nil, &Refusal{Code: flow.ReasonUnavailable, Reason: fmt.Sprintf("%s unreachable: %v", t, errors.Join(errs...))}
}

// Scopes a network rule reaches only when it names addresses of that
// scope alone: the egress node's loopback, and link-local addresses (the
// cloud's metadata service, 169.254.169.254, and with it the node's
// cloud credentials). A rule of every address, or of a network that
// holds them, does not reach them.
var (
	loopback4  = netip.MustParsePrefix("127.0.0.0/8")
	loopback6  = netip.MustParsePrefix("::1/128")
	linkLocal4 = netip.MustParsePrefix("169.254.0.0/16")
	linkLocal6 = netip.MustParsePrefix("fe80::/10")
)

// within reports whether network n lies inside scope.
func within(n, scope netip.Prefix) bool {
	return n.IsValid() && n.Bits() >= scope.Bits() && scope.Contains(n.Addr())
}

// unnamedScope refuses an address of a scope (loopback, link-local) that
// the network rule admitting it does not name alone (network: the
// rule's; not valid for a name rule, whose addresses resolve leaves
// outside every internal one).
func unnamedScope(t Target, addrs []netip.Addr, network netip.Prefix) *Refusal {
	for _, a := range addrs {
		a = a.Unmap()
		for _, scope := range []netip.Prefix{loopback4, loopback6, linkLocal4, linkLocal6} {
			if scope.Contains(a) && !within(network, scope) {
				return &Refusal{Code: flow.ReasonEgressInternal, Reason: fmt.Sprintf("%s is in %s, which only a rule of that network (or one inside it) reaches, not %s", a, scope, network)}
			}
		}
	}
	return nil
}

// isInternal reports addresses a name must not lead to, among them IPv6
// addresses that carry an internal IPv4 one to a translator or tunnel:
// NAT64's well-known prefix (64:ff9b::/96, RFC 6052; a DNS64 network
// takes 64:ff9b::a01:203 to 10.1.2.3), 6to4 (2002::/16) and the
// IPv4-compatible form (::/96). NAT64's local-use prefix (64:ff9b:1::/48,
// RFC 8215) is the operator's own network: internal, whatever it carries.
func isInternal(a netip.Addr) bool {
	a = a.Unmap()
	if v4, ok := embeddedIPv4(a); ok && isInternal(v4) {
		return true
	}
	return a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() ||
		a.IsMulticast() || a.IsUnspecified() || a.IsPrivate() || cgnat.Contains(a) || nat64Local.Contains(a)
}

var (
	cgnat      = netip.MustParsePrefix("100.64.0.0/10")
	nat64      = netip.MustParsePrefix("64:ff9b::/96")
	nat64Local = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFour  = netip.MustParsePrefix("2002::/16")
	v4Compat   = netip.MustParsePrefix("::/96")
)

// embeddedIPv4 is the IPv4 address an IPv6 address of NAT64's well-known
// prefix, 6to4 or the IPv4-compatible form carries.
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	if !a.Is6() {
		return netip.Addr{}, false
	}
	b := a.As16()
	switch {
	case nat64.Contains(a), v4Compat.Contains(a) && !a.IsUnspecified() && !a.IsLoopback():
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

// Relay joins client and the upstream until both are done, after checking
// the client's TLS server name against the host, or each of its plain
// HTTP requests' Host; it records the connection and closes both. first
// holds bytes already read from client. A connection on which no byte
// moved either way for the idle timeout is closed.
func (p *Point) Relay(client net.Conn, first []byte, up *Upstream) {
	p.open.Add(1)
	p.total.Add(1)
	defer p.open.Add(-1)
	defer client.Close()
	defer up.conn.Close()
	rec := p.record(up.start, up.tgt, flow.ActivityOpen, flow.VerdictAllow)
	rec.FirewallRule = &flow.Rule{Name: up.rule}
	rec.DstEndpoint.IP = addrOnly(up.conn.RemoteAddr())
	p.write(rec)
	idle := p.watchIdle(client, up)
	defer idle.Stop()
	upConn := up.conn
	p.mu.Lock()
	p.live[up] = func() error { client.Close(); return upConn.Close() }
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.live, up)
		p.mu.Unlock()
	}()

	var in, out atomic.Int64  // bytes from the upstream, to the upstream
	var answering atomic.Bool // the point answers the client itself
	down := make(chan struct{})
	sh := newServerHello()
	go func() {
		defer close(down)
		n, err := sh.copyHead(client, up.conn)
		if err == nil {
			m, _ := io.Copy(client, up.conn)
			n += m
		}
		in.Add(n)
		if !answering.Load() {
			closeWrite(client)
		}
	}()
	hello, sni, isTLS, err := readHello(client, first)
	code, reason := checkHello(up.tgt, sni, isTLS, err, len(hello))
	_, addrErr := netip.ParseAddr(up.tgt.Host)
	toName := addrErr != nil // a name rule's; an address is a network rule's
	if code == "" && !isTLS && len(hello) > 0 && hello[0] >= 0x80 && toName {
		// An SSLv2-compatible ClientHello (a two-byte record header with
		// the high bit set) carries no extensions, so no server name.
		code, reason = flow.ReasonSNIMismatch, fmt.Sprintf("an SSLv2-style ClientHello to %s, which names no server", up.tgt)
	}
	var rest []byte // read past the ClientHello
	if code == "" && isTLS {
		end, _, err := helloEnd(hello)
		if err != nil {
			code, reason = checkHello(up.tgt, sni, isTLS, err, len(hello))
		} else {
			hello, rest = hello[:end], hello[end:]
		}
	}
	switch {
	case code != "" || len(hello) == 0:
	case !isTLS && toName: // HTTP to a name is read request by request
		n, refused := relayPlain(client, hello, up.conn, up.tgt, sh)
		out.Add(n)
		if refused != nil {
			code, reason = flow.ReasonHTTPRefused, fmt.Sprintf("HTTP request to %s refused: %v", up.tgt, refused)
		}
	default:
		if _, err := up.conn.Write(hello); err == nil {
			out.Add(int64(len(hello)))
			var n int64
			if isTLS {
				var retried string
				n, retried, code, reason = relayRetried(&readerConn{Conn: client, ahead: bytes.NewReader(rest)}, up.conn, up.tgt, sh)
				if code != "" {
					sni = retried
				}
			} else {
				n, _ = io.Copy(up.conn, client)
			}
			out.Add(n)
		}
	}
	if code != "" {
		if code == flow.ReasonHTTPRefused {
			// The server answers the requests that went up before this
			// one; then the client gets the refusal.
			answering.Store(true)
			closeWrite(up.conn)
			t := time.NewTimer(httpHeadTimeout)
			select {
			case <-down:
			case <-t.C:
			}
			t.Stop()
			up.conn.Close()
			<-down
			answer(client, http.StatusForbidden, "egress refused: "+code)
			// What the client sent past the refused request is read
			// (bounded) so that closing does not reset the answer away.
			closeWrite(client)
			_ = client.SetReadDeadline(time.Now().Add(time.Second))
			_, _ = io.CopyN(io.Discard, client, maxHTTPHead)
		}
		client.Close()
		up.conn.Close()
		<-down
		r := p.record(up.start, up.tgt, flow.ActivityRefuse, flow.VerdictDeny)
		r.FirewallRule = &flow.Rule{Name: up.rule}
		r.DstEndpoint.IP = addrOnly(up.conn.RemoteAddr())
		r.TLS = &flow.TLS{Version: "tls", SNI: bounded(sni)}
		if code == flow.ReasonHTTPRefused {
			r.TLS = &flow.TLS{Version: "none"}
		}
		r.Unmapped.ReasonCode, r.Unmapped.Reason = code, reason
		p.log.Warn("egress: refused", "src", up.tgt.Src, "host", up.tgt.Host, "code", code, "reason", reason)
		p.write(r)
		return
	}
	closeWrite(up.conn)
	<-down
	end := p.record(up.start, up.tgt, flow.ActivityClose, flow.VerdictAllow)
	end.FirewallRule = &flow.Rule{Name: up.rule}
	end.DstEndpoint.IP = addrOnly(up.conn.RemoteAddr())
	end.TLS = &flow.TLS{Version: "none"}
	if isTLS {
		end.TLS = &flow.TLS{Version: "tls", SNI: bounded(sni)}
	}
	if idle.Fired() {
		end.Unmapped.ReasonCode = flow.ReasonIdleTimeout
		end.Unmapped.Reason = fmt.Sprintf("no byte moved either way for %v", p.cfg.IdleTimeout)
	}
	if why := up.cut.Load(); why != nil {
		end.Unmapped.ReasonCode, end.Unmapped.Reason = flow.ReasonPolicyChanged, *why
	}
	end.Traffic = &flow.Traffic{BytesIn: in.Load(), BytesOut: out.Load(), Bytes: in.Load() + out.Load()}
	end.EndTime = flow.Millis(p.cfg.Now())
	end.Duration = end.EndTime - end.StartTime
	p.write(end)
}

// Recheck decides every relayed connection again by the rules in force
// and closes those they no longer allow (a rule removed, or narrowed to
// other sources, hosts or ports), and of those made to a name, those whose
// address the name no longer resolves to: a rule names a host, and the
// addresses it stands for are what the point's resolver says now (a DNS
// record moved off a server retired or taken over). A name that does not
// resolve now, or only inside, closes its connections: the point cannot
// tell they still reach the host. Each is recorded with
// flow.ReasonPolicyChanged: a connection does not outlive its rule, nor
// the name's addresses. Each name is resolved once, maxRecheckLookups at
// a time, each within DialTimeout. The agent calls it whenever the
// intentions change, off the loop that applies them.
func (p *Point) Recheck(ctx context.Context) {
	pol := p.cfg.Policy()
	names := map[string][]*Upstream{}
	var cut []*Upstream
	var whys []string
	p.mu.Lock()
	for up := range p.live {
		if d := pol.DecideEgress(up.tgt.Src, up.tgt.Host, up.tgt.Port); !d.Allow {
			cut = append(cut, up)
			whys = append(whys, fmt.Sprintf("the egress rules in force no longer let %s reach %s (it was %s)", orNone(up.tgt.Src), up.tgt, up.rule))
			continue
		}
		if _, err := netip.ParseAddr(up.tgt.Host); err != nil {
			names[up.tgt.Host] = append(names[up.tgt.Host], up)
		}
	}
	p.mu.Unlock()
	for i, up := range cut {
		p.cut(up, whys[i])
	}
	sem := make(chan struct{}, maxRecheckLookups)
	var wg sync.WaitGroup
	for host, ups := range names {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			addrs, ref := p.resolve(ctx, ups[0].tgt)
			for _, up := range ups {
				at, _ := netip.ParseAddrPort(up.conn.RemoteAddr().String())
				switch {
				case ref != nil:
					p.cut(up, fmt.Sprintf("%s was connected to %s, and the name no longer resolves outside: %s", host, at.Addr(), ref.Reason))
				case !slices.Contains(addrs, at.Addr().Unmap()):
					p.cut(up, fmt.Sprintf("%s was connected to %s, and the name now resolves to %v", host, at.Addr(), addrs))
				}
			}
		}()
	}
	wg.Wait()
}

// maxRecheckLookups bounds the names Recheck resolves at once.
const maxRecheckLookups = 8

// cut closes a relayed connection for why, once.
func (p *Point) cut(up *Upstream, why string) {
	p.mu.Lock()
	closeBoth, ok := p.live[up]
	p.mu.Unlock()
	if ok && up.cut.CompareAndSwap(nil, &why) {
		_ = closeBoth()
	}
}

// checkHello says why the client's first bytes (n of them, a ClientHello
// when isTLS) may not go to t: a reason code and its text, or "".
func checkHello(t Target, sni string, isTLS bool, err error, n int) (code, reason string) {
	switch {
	case err != nil && n == 0:
		// The client sent nothing (or left): nothing to check or relay.
	case err != nil:
		return flow.ReasonSNIMismatch, fmt.Sprintf("TLS ClientHello to %s refused: %v", t, err)
	case isTLS && !sniMatches(t.Host, sni):
		return flow.ReasonSNIMismatch, fmt.Sprintf("TLS server name %q is not the host asked for, %s", sni, t.Host)
	}
	return "", ""
}

// relayRetried relays the client's TLS records after its ClientHello
// until the server's first message is in (sh). When that asked for
// another ClientHello (a HelloRetryRequest), the next one is checked as
// the first was. Then it copies the rest. It returns the bytes relayed,
// and a refused second hello's server name, reason code and text.
func relayRetried(client net.Conn, up net.Conn, t Target, sh *serverHello) (n int64, sni, code, reason string) {
	write := func(b []byte) bool {
		k, err := up.Write(b)
		n += int64(k)
		return err == nil
	}
	for {
		var hdr [5]byte
		k, err := io.ReadFull(client, hdr[:])
		if err != nil {
			write(hdr[:k])
			return n, "", "", ""
		}
		if hdr[0] == recordHandshake { // the client's next flight: the server has answered
			<-sh.done
		}
		select {
		case <-sh.done:
			if !sh.retry {
				if write(hdr[:]) {
					m, _ := copyUp(up, client)
					n += m
				}
				return n, "", "", ""
			}
			if hdr[0] == recordHandshake {
				hello, sni, isTLS, err := readHello(client, hdr[:])
				if code, reason := checkHello(t, sni, isTLS, err, len(hello)); code != "" {
					return n, sni, code, reason
				}
				if write(hello) {
					m, _ := copyUp(up, client)
					n += m
				}
				return n, "", "", ""
			}
		default:
		}
		// A record ahead of the server's answer (change_cipher_spec,
		// early data), or between a HelloRetryRequest and the second
		// ClientHello: relayed whole.
		body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
		k, err = io.ReadFull(client, body)
		if !write(append(hdr[:], body[:k]...)) || err != nil {
			return n, "", "", ""
		}
	}
}

// readerConn is a Conn that reads what ahead holds, then from Conn.
type readerConn struct {
	net.Conn
	ahead *bytes.Reader
}

func (c *readerConn) Read(b []byte) (int, error) {
	if c.ahead.Len() > 0 {
		return c.ahead.Read(b)
	}
	return c.Conn.Read(b)
}

// copyUp copies the rest of what the client sends to up: what c holds
// read ahead, then straight from the client's connection, so that a
// copy between two TCP connections is the kernel's (splice).
func copyUp(up net.Conn, c net.Conn) (int64, error) {
	rc, ok := c.(*readerConn)
	if !ok {
		return io.Copy(up, c)
	}
	n, err := io.Copy(up, rc.ahead)
	if err != nil {
		return n, err
	}
	m, err := io.Copy(up, rc.Conn)
	return n + m, err
}

func sniMatches(host, sni string) bool {
	if _, err := netip.ParseAddr(host); err == nil {
		return sni == "" // an address has no server name to send
	}
	n, err := policy.NormalizeHost(sni)
	return err == nil && n == host
}

func closeWrite(c net.Conn) {
	type cw interface{ CloseWrite() error }
	if w, ok := c.(cw); ok {
		_ = w.CloseWrite()
		return
	}
	_ = c.Close()
}

func addrOnly(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap().String()
	}
	return ""
}

func bounded(s string) string {
	if len(s) > 255 {
		return s[:255]
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "(no service identity)"
	}
	return s
}

// refuse records a refusal and returns it.
func (p *Point) refuse(start time.Time, t Target, r *Refusal) error {
	rec := p.record(start, t, flow.ActivityRefuse, flow.VerdictDeny)
	rec.FirewallRule = &flow.Rule{Name: r.Rule}
	rec.Unmapped.ReasonCode, rec.Unmapped.Reason = r.Code, r.Reason
	p.log.Info("egress: refused", "src", t.Src, "host", t.Host, "port", t.Port, "code", r.Code, "reason", r.Reason)
	p.write(rec)
	return r
}

func (p *Point) write(r flow.Record) {
	if err := p.cfg.Flows.Write(r); err != nil {
		p.log.Warn("egress: record not written", "err", err)
	}
}

// record is an egress record of t: the source's identity, the host, the
// rule (set by the caller).
func (p *Point) record(start time.Time, t Target, activity int, verdict string) flow.Record {
	return newRecord(p.cfg.TrustDomain, p.cfg.Node, start, p.cfg.Now(), t, activity, verdict)
}

func newRecord(td spiffeid.TrustDomain, node string, start, now time.Time, t Target, activity int, verdict string) flow.Record {
	r := flow.Header(flow.ClassNetworkActivity, activity, ProductName, now)
	r.StartTime = flow.Millis(start)
	r.SrcEndpoint = &flow.Endpoint{SvcName: t.Src, IP: t.SrcIP}
	if id, err := identity.ServiceID(td, t.Src); err == nil && t.Src != "" {
		r.SrcEndpoint.UID = id.String()
	}
	r.DstEndpoint = &flow.Endpoint{Port: t.Port}
	if a, err := netip.ParseAddr(t.Host); err == nil {
		r.DstEndpoint.IP = a.String()
	} else {
		r.DstEndpoint.Hostname = t.Host
	}
	if t.Via != "" {
		r.ProxyEndpoint = &flow.Endpoint{SvcName: t.Via}
		if id, err := identity.ServiceID(td, t.Via); err == nil {
			r.ProxyEndpoint.UID = id.String()
		}
		r.NetworkProxy()
	}
	r.ConnectionInfo = &flow.ConnectionInfo{UID: t.ConnID, ProtocolName: "tcp", ProtocolNum: 6, DirectionID: flow.DirectionOutbound, Direction: "Outbound"}
	r.Unmapped = &flow.Moat{Verdict: verdict, Kind: "egress", Node: node}
	r.SecurityControl() // action, disposition and the egress rule
	switch verdict {
	case flow.VerdictDeny:
		r.ActionID, r.Action, r.DispositionID, r.Disposition = flow.ActionDenied, "Denied", flow.DispositionBlocked, "Blocked"
		r.SeverityID, r.Severity = flow.SeverityMedium, "Medium"
		r.Message = fmt.Sprintf("egress refused: %s → %s", orNone(t.Src), t)
	default:
		r.ActionID, r.Action, r.DispositionID, r.Disposition = flow.ActionAllowed, "Allowed", flow.DispositionAllowed, "Allowed"
		r.Message = fmt.Sprintf("egress: %s → %s", t.Src, t)
	}
	return r
}

// Stats are the point's connection counts.
type Stats struct {
	Open, Total int64
}

// Stats returns the point's counts.
func (p *Point) Stats() Stats { return Stats{Open: p.open.Load(), Total: p.total.Load()} }
