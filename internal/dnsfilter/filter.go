// Package dnsfilter is a node's DNS filter: a resolver that the host
// firewall sends every local user's DNS to (all but the agent's own), and
// the DNS the node routes for its containers, and that forwards a query to
// the node's resolvers only when its name is allowed. Without it, a local user or a compromised service carries data
// off the node in names (aGVsbG8.evil.example), which a recursing resolver
// takes to any domain's servers: DNS tunnels such as iodine and dnscat2.
//
// The filter answers REFUSED to a name that is not allowed and records it
// (flow.ReasonDNSRefused); in audit mode it forwards it and records it as
// what would have been refused. What it forwards goes out unchanged, and
// the resolver's answer comes back unchanged, once checked to answer that
// question.
//
// What a client sends is bounded before it is looked at (ParseQuery): one
// question of class IN, no ANY nor zone transfer, a name of letters,
// digits, '-' and '_' within DNS's lengths, MaxQuery bytes. The listeners
// answer MaxInFlight queries at once (a datagram past that is dropped, as
// a busy resolver's would be) and hold MaxConns TCP connections, each idle
// for at most IdleTimeout; refusals are recorded at most RecordRate a
// second, the rest counted in the next record.
//
// One client may hold only a share of those: MaxClientInFlight queries
// (past it, answered REFUSED and recorded) and MaxClientConns connections
// (past it, closed). A client is the uid owning the socket a query came
// from, when the query was sent to a loopback address (the firewall
// redirects local users' DNS to 127.0.0.1 and ::1) and the kernel tells
// the socket's owner; otherwise it is the query's source address (a
// container's, or a local socket's the kernel no longer has).
//
// The shares bound queries held, not their rate: a local user sending
// faster than the filter reads would fill its socket's receive buffer, and
// the kernel would drop the other users' queries with the flood. The host
// firewall bounds that rate per local uid before the datagrams reach the
// filter (firewall.Spec.DNSRate).
package dnsfilter

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/time/rate"

	"moat/internal/flow"
	"moat/internal/sockdiag"
)

// ProductName names the filter in flow records.
const ProductName = "moat-dns"

// Defaults of Config's bounds.
const (
	DefaultMaxInFlight = 256
	DefaultMaxConns    = 64
	DefaultTimeout     = 2 * time.Second
	DefaultIdleTimeout = 10 * time.Second
	DefaultRecordRate  = 20
	// clientShare is the part of MaxInFlight and MaxConns one client
	// may hold unless Config says otherwise: an eighth.
	clientShare = 8
)

// Config configures a Filter.
type Config struct {
	// Node names this node in records.
	Node string
	// Resolvers returns where allowed queries go, tried in order until
	// one answers; it is called for every query. Nil or empty: every
	// query is answered SERVFAIL.
	Resolvers func() []netip.AddrPort
	// Allowed says whether a name (Name's form) may be resolved, and by
	// which rule or list; nil allows nothing.
	Allowed func(name string) (rule string, ok bool)
	// Audit forwards names that are not allowed too, and records them as
	// what enforce mode would refuse. Queries past the bounds are refused
	// in either mode.
	Audit bool
	// Flows receives a record of each refused query; nil discards them.
	Flows flow.Writer
	// Dial opens the connections to the resolvers; nil means a
	// net.Dialer's. Tests dial from inside a network namespace.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Owner tells the uid owning the local socket with address from
	// that a query came from over network ("udp" or "tcp"); ok is false
	// when it cannot. Nil asks the kernel (Linux; elsewhere, never ok).
	// Tests ask inside a network namespace.
	Owner func(network string, from netip.AddrPort) (uid int, ok bool)
	// Timeout bounds each resolver's answer; zero means DefaultTimeout.
	Timeout time.Duration
	// IdleTimeout closes a client's TCP connection that sent no whole
	// query for that long; zero means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxInFlight bounds the queries answered at once; zero means
	// DefaultMaxInFlight.
	MaxInFlight int
	// MaxConns bounds clients' TCP connections held at once; zero means
	// DefaultMaxConns.
	MaxConns int
	// MaxClientInFlight bounds the queries one client has answered at
	// once; zero means an eighth of MaxInFlight (at least one).
	MaxClientInFlight int
	// MaxClientConns bounds the TCP connections one client holds at
	// once; zero means an eighth of MaxConns (at least one).
	MaxClientConns int
	// RecordRate bounds refusal records a second (a burst of five times
	// that); zero means DefaultRecordRate.
	RecordRate int
	Now        func() time.Time
	Logger     *slog.Logger
}

// Filter is the DNS filter. Its methods are safe for concurrent use.
type Filter struct {
	cfg      Config
	log      *slog.Logger
	inFlight chan struct{}
	conns    chan struct{}
	records  *rate.Limiter
	// clientQueries and clientConns count what each client holds of
	// inFlight and conns.
	clientQueries, clientConns *shares

	suppressed atomic.Int64 // refusals not recorded since the last record
	dropped    atomic.Int64 // datagrams dropped for want of a slot
	busy       atomic.Int64 // refused for their client's share
	refused    atomic.Int64
	forwarded  atomic.Int64
}

// New returns a Filter; it listens on nothing until Serve.
func New(cfg Config) (*Filter, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.RecordRate == 0 {
		cfg.RecordRate = DefaultRecordRate
	}
	if cfg.MaxClientInFlight == 0 {
		cfg.MaxClientInFlight = max(1, cfg.MaxInFlight/clientShare)
	}
	if cfg.MaxClientConns == 0 {
		cfg.MaxClientConns = max(1, cfg.MaxConns/clientShare)
	}
	if cfg.Timeout < 0 || cfg.IdleTimeout < 0 || cfg.MaxInFlight < 0 || cfg.MaxConns < 0 || cfg.RecordRate < 0 || cfg.MaxClientInFlight < 0 || cfg.MaxClientConns < 0 {
		return nil, errors.New("dnsfilter: a negative bound")
	}
	if cfg.Allowed == nil {
		cfg.Allowed = func(string) (string, bool) { return "", false }
	}
	if cfg.Flows == nil {
		cfg.Flows = flow.Discard
	}
	if cfg.Dial == nil {
		cfg.Dial = (&net.Dialer{}).DialContext
	}
	if cfg.Owner == nil {
		cfg.Owner = sockdiag.Owner
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Filter{cfg: cfg, log: cfg.Logger, inFlight: make(chan struct{}, cfg.MaxInFlight), conns: make(chan struct{}, cfg.MaxConns),
		records:       rate.NewLimiter(rate.Limit(cfg.RecordRate), 5*cfg.RecordRate),
		clientQueries: newShares(cfg.MaxClientInFlight), clientConns: newShares(cfg.MaxClientConns)}, nil
}

// Stats counts what the filter did: queries forwarded and refused,
// datagrams and connections dropped for want of a slot, and of those
// refused, the queries (and connections closed) past their client's
// share.
type Stats struct {
	Forwarded, Refused, Dropped, Busy int64
}

// Stats returns the filter's counts so far.
func (f *Filter) Stats() Stats {
	return Stats{Forwarded: f.forwarded.Load(), Refused: f.refused.Load(), Dropped: f.dropped.Load(), Busy: f.busy.Load()}
}

// Serve answers queries on pcs (UDP) and lns (TCP) until ctx ends, then
// closes them. It returns the first error that ends a listener otherwise.
func (f *Filter) Serve(ctx context.Context, pcs []net.PacketConn, lns []net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, len(pcs)+len(lns))
	for _, pc := range pcs {
		wg.Add(1)
		go func() { defer wg.Done(); errc <- f.serveUDP(ctx, pc) }()
	}
	for _, ln := range lns {
		wg.Add(1)
		go func() { defer wg.Done(); errc <- f.serveTCP(ctx, ln) }()
	}
	go func() {
		<-ctx.Done()
		for _, pc := range pcs {
			pc.Close()
		}
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var first error
	for range len(pcs) + len(lns) {
		if err := <-errc; err != nil && first == nil && ctx.Err() == nil {
			first = err
			cancel()
		}
	}
	wg.Wait()
	return first
}

// errRetry is serveErr's answer for an error the serve loop reads past.
var errRetry = errors.New("dnsfilter: retry")

// serveErr sorts a serve loop's read or accept error: nil when the filter
// is stopping, errRetry for a timeout, else the error to end the loop with.
func serveErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errRetry
	}
	return fmt.Errorf("dnsfilter: %w", err)
}

// admit takes a place in sem (queries in flight, TCP connections), or
// counts the query or connection as dropped when there is none.
func (f *Filter) admit(sem chan struct{}) bool {
	select {
	case sem <- struct{}{}:
		return true
	default:
		f.dropped.Add(1)
		return false
	}
}

func (f *Filter) serveUDP(ctx context.Context, pc net.PacketConn) error {
	sock, err := newDatagrams(pc)
	if err != nil {
		return fmt.Errorf("dnsfilter: %w", err)
	}
	local := addrPort(pc.LocalAddr()).Addr()
	buf := make([]byte, MaxResponse)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		n, from, err := sock.read(buf)
		if err != nil {
			if err := serveErr(ctx, err); err != errRetry {
				return err
			}
			continue
		}
		if !f.admit(f.inFlight) {
			continue
		}
		raw := append([]byte(nil), buf[:n]...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-f.inFlight }()
			to := local
			if a, ok := netip.AddrFromSlice(from.to); ok {
				to = a
			}
			src := addrPort(from.addr)
			if resp := f.answer(ctx, raw, "udp", src, f.client("udp", src, to)); resp != nil {
				sock.write(resp, from)
			}
		}()
	}
}

func (f *Filter) serveTCP(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if err := serveErr(ctx, err); err != errRetry {
				return err
			}
			continue
		}
		if !f.admit(f.conns) {
			c.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.serveClient(ctx, c)
		}()
	}
}

// serveClient serves c, within its client's share of connections, and
// closes it once the places it held are free again: a client that sees
// its connection closed may connect again at once.
func (f *Filter) serveClient(ctx context.Context, c net.Conn) {
	from := addrPort(c.RemoteAddr())
	who := f.client("tcp", from, addrPort(c.LocalAddr()).Addr())
	if f.clientConns.take(who) {
		f.serveConn(ctx, c, from, who)
		f.clientConns.give(who)
	} else {
		f.busy.Add(1)
	}
	<-f.conns
	c.Close()
}

// serveConn answers the queries of who, from, on c one after another
// until it closes, sends what is no query of at most MaxQuery bytes, or
// stays idle; the caller closes c.
func (f *Filter) serveConn(ctx context.Context, c net.Conn, from netip.AddrPort, who string) {
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	var hdr [2]byte
	buf := make([]byte, MaxQuery)
	for {
		c.SetReadDeadline(time.Now().Add(f.cfg.IdleTimeout))
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(hdr[:]))
		if n > MaxQuery {
			f.refuse(nil, "tcp", from, errTooLarge)
			return
		}
		if _, err := io.ReadFull(c, buf[:n]); err != nil {
			return
		}
		select {
		case f.inFlight <- struct{}{}:
		case <-ctx.Done():
			return
		}
		resp := f.answer(ctx, buf[:n], "tcp", from, who)
		<-f.inFlight
		if resp == nil {
			return
		}
		c.SetWriteDeadline(time.Now().Add(f.cfg.IdleTimeout))
		out := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(resp)), uint16(len(resp)))
		if _, err := c.Write(append(out, resp...)); err != nil {
			return
		}
	}
}

// answer decides one query of who, from, and returns the answer to send,
// nil for none.
func (f *Filter) answer(ctx context.Context, raw []byte, network string, from netip.AddrPort, who string) []byte {
	q, err := ParseQuery(raw)
	if err != nil {
		f.refuse(q.Msg, network, from, err)
		if q.Msg == nil {
			return nil
		}
		return reply(q.Msg, dns.RcodeRefused)
	}
	if !f.clientQueries.take(who) {
		f.busy.Add(1)
		f.refuse(q.Msg, network, from, errClientBusy)
		return reply(q.Msg, dns.RcodeRefused)
	}
	defer f.clientQueries.give(who)
	if _, ok := f.cfg.Allowed(q.Name); !ok {
		f.refuse(q.Msg, network, from, errNotAllowed)
		if !f.cfg.Audit {
			return reply(q.Msg, dns.RcodeRefused)
		}
	}
	resp, err := f.exchange(ctx, raw, q.Msg, network)
	if err != nil {
		f.log.Warn("dnsfilter: no resolver answered", "name", recordedName(q.Msg), "err", err)
		return reply(q.Msg, dns.RcodeServerFailure)
	}
	f.forwarded.Add(1)
	return resp
}

// reply is an answer to q with rcode and no records.
func reply(q *dns.Msg, rcode int) []byte {
	m := new(dns.Msg)
	m.SetRcode(q, rcode)
	m.RecursionAvailable = true
	b, err := m.Pack()
	if err != nil {
		return nil
	}
	return b
}

// exchange asks the resolvers in turn for raw, over network, and returns
// the first answer that answers q: a response with q's ID and question.
func (f *Filter) exchange(ctx context.Context, raw []byte, q *dns.Msg, network string) ([]byte, error) {
	err := errUnavailable
	var rs []netip.AddrPort
	if f.cfg.Resolvers != nil {
		rs = f.cfg.Resolvers()
	}
	for _, r := range rs {
		ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
		var resp []byte
		resp, err = f.exchangeOne(ctx, r, raw, q, network)
		cancel()
		if err == nil {
			return resp, nil
		}
	}
	return nil, err
}

func (f *Filter) exchangeOne(ctx context.Context, r netip.AddrPort, raw []byte, q *dns.Msg, network string) ([]byte, error) {
	c, err := f.cfg.Dial(ctx, network, r.String())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d)
	}
	if network == "tcp" {
		out := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(raw)), uint16(len(raw)))
		if _, err := c.Write(append(out, raw...)); err != nil {
			return nil, err
		}
		var hdr [2]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return nil, err
		}
		resp := make([]byte, binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.ReadFull(c, resp); err != nil {
			return nil, err
		}
		if !answers(resp, q) {
			return nil, fmt.Errorf("%s answered another question", r)
		}
		return resp, nil
	}
	if _, err := c.Write(raw); err != nil {
		return nil, err
	}
	buf := make([]byte, MaxUDPResponse)
	for {
		// A connected UDP socket takes datagrams from the resolver
		// alone; one that answers another question (a late answer, a
		// spoofed one) is passed over until the deadline.
		n, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		if answers(buf[:n], q) {
			return append([]byte(nil), buf[:n]...), nil
		}
	}
}

// answers reports whether resp is a response to q: its ID, and its one
// question the same (names compared without regard to case, as resolvers
// that randomise it answer).
func answers(resp []byte, q *dns.Msg) bool {
	m := new(dns.Msg)
	if err := m.Unpack(resp); err != nil {
		return false
	}
	if !m.Response || m.Id != q.Id || len(m.Question) != 1 {
		return false
	}
	a, b := m.Question[0], q.Question[0]
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
}

// refuse counts a refusal and records it, within the record rate; what is
// past it is counted in the next record written.
func (f *Filter) refuse(q *dns.Msg, network string, from netip.AddrPort, why error) {
	f.refused.Add(1)
	if !f.records.Allow() {
		f.suppressed.Add(1)
		return
	}
	audit := f.cfg.Audit && errors.Is(why, errNotAllowed)
	r := f.record(q, network, from, why, audit)
	r.Unmapped.Suppressed = int(f.suppressed.Swap(0))
	if err := f.cfg.Flows.Write(r); err != nil {
		f.log.Warn("dnsfilter: record not written", "err", err)
	}
}

// record is the flow record of a refused query: the client, the name
// asked (escaped where it does not print, bounded), its type and why.
func (f *Filter) record(q *dns.Msg, network string, from netip.AddrPort, why error, audit bool) flow.Record {
	activity := flow.ActivityRefuse
	verdict, action, disp := flow.VerdictDeny, flow.ActionDenied, flow.DispositionBlocked
	what := "refused"
	if audit {
		activity, verdict, action, disp = flow.ActivityOpen, flow.VerdictAudit, flow.ActionAllowed, flow.DispositionLogged
		what = "would refuse (audit mode)"
	}
	r := flow.Header(flow.ClassNetworkActivity, activity, ProductName, f.cfg.Now())
	r.SecurityControl()
	r.ActionID, r.DispositionID = action, disp
	r.Action = map[int]string{flow.ActionAllowed: "Allowed", flow.ActionDenied: "Denied"}[action]
	r.Disposition = map[int]string{flow.DispositionBlocked: "Blocked", flow.DispositionLogged: "Logged"}[disp]
	r.SrcEndpoint = &flow.Endpoint{}
	if from.IsValid() {
		r.SrcEndpoint.IP, r.SrcEndpoint.Port = from.Addr().Unmap().String(), int(from.Port())
	}
	name := flow.PrintableText(recordedName(q))
	r.DstEndpoint = &flow.Endpoint{Port: 53, Hostname: name}
	num := 17
	if network == "tcp" {
		num = 6
	}
	r.ConnectionInfo = &flow.ConnectionInfo{ProtocolName: network, ProtocolNum: num, DirectionID: flow.DirectionOutbound, Direction: "Outbound"}
	r.FirewallRule = &flow.Rule{Name: "dns-filter"}
	qtype := questionType(q)
	r.Message = fmt.Sprintf("DNS filter %s %s %s query for %q", what, network, qtype, name)
	r.Unmapped = &flow.Moat{Verdict: verdict, Kind: "dns", Node: f.cfg.Node, ReasonCode: flow.ReasonDNSRefused,
		Reason: fmt.Sprintf("%s: %v", strings.TrimSpace(qtype+" "+name), why)}
	return r
}

// client names who sent a query from from to the address to, over
// network: "uid N" for a local socket (a query sent to a loopback
// address) whose owner the kernel tells, else the source address.
func (f *Filter) client(network string, from netip.AddrPort, to netip.Addr) string {
	if to.Unmap().IsLoopback() {
		if uid, ok := f.cfg.Owner(network, from); ok {
			return "uid " + strconv.Itoa(uid)
		}
	}
	return from.Addr().String()
}

// shares counts what each client holds of a bound, max each. Only
// clients holding something are kept: as many as the bound at most.
type shares struct {
	max int

	mu   sync.Mutex // guards held
	held map[string]int
}

func newShares(n int) *shares { return &shares{max: n, held: map[string]int{}} }

// take counts one more for who, unless who holds max already.
func (s *shares) take(who string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held[who] >= s.max {
		return false
	}
	s.held[who]++
	return true
}

// give counts one less for who.
func (s *shares) give(who string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held[who]--; s.held[who] <= 0 {
		delete(s.held, who)
	}
}

// addrPort is a net.Addr's address and port, unmapped; the zero AddrPort
// when it has none.
func addrPort(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	case *net.TCPAddr:
		ap = a.AddrPort()
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// datagrams is a UDP listener as serveUDP reads and answers it. On a
// socket bound to a wildcard address ("udp4" 0.0.0.0 or "udp6" ::, where
// the agent's filter takes the DNS the node routes, redirected to the
// address of the interface it came in by) each answer is sent from the
// address its query was sent to: from another, it would match no
// connection the redirect made, and the client would not take it. A
// dual-stack socket answers IPv4 clients from the address routing picks.
type datagrams struct {
	pc net.PacketConn
	p4 *ipv4.PacketConn // set for a wildcard IPv4 socket
	p6 *ipv6.PacketConn // set for a wildcard IPv6 socket
}

// sender is a query's client and the address (and interface) it sent to,
// when the socket tells.
type sender struct {
	addr    net.Addr
	to      net.IP
	ifIndex int
}

func newDatagrams(pc net.PacketConn) (*datagrams, error) {
	d := &datagrams{pc: pc}
	ua, ok := pc.LocalAddr().(*net.UDPAddr)
	if !ok || !ua.IP.IsUnspecified() {
		return d, nil
	}
	if ua.IP.To4() != nil {
		d.p4 = ipv4.NewPacketConn(pc)
		return d, d.p4.SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true)
	}
	d.p6 = ipv6.NewPacketConn(pc)
	return d, d.p6.SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true)
}

func (d *datagrams) read(b []byte) (int, sender, error) {
	switch {
	case d.p4 != nil:
		n, cm, from, err := d.p4.ReadFrom(b)
		s := sender{addr: from}
		if cm != nil {
			s.to, s.ifIndex = cm.Dst, cm.IfIndex
		}
		return n, s, err
	case d.p6 != nil:
		n, cm, from, err := d.p6.ReadFrom(b)
		s := sender{addr: from}
		if cm != nil {
			s.to, s.ifIndex = cm.Dst, cm.IfIndex
		}
		return n, s, err
	}
	n, from, err := d.pc.ReadFrom(b)
	return n, sender{addr: from}, err
}

func (d *datagrams) write(b []byte, to sender) error {
	var err error
	switch {
	case d.p4 != nil && to.to != nil:
		_, err = d.p4.WriteTo(b, &ipv4.ControlMessage{Src: to.to}, to.addr)
	case d.p6 != nil && to.to != nil:
		_, err = d.p6.WriteTo(b, &ipv6.ControlMessage{Src: to.to, IfIndex: to.ifIndex}, to.addr)
	default:
		_, err = d.pc.WriteTo(b, to.addr)
	}
	return err
}
