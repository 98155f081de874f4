// Package mesh is moat's data plane: the proxies an agent runs for the
// services on its node.
//
// Inbound, the agent has one mesh port. Peers connect with mutual TLS 1.3,
// presenting the SVID of the calling service; the agent verifies it against
// the live trust bundle and revocation list, then reads, for every stream, a
// tunnel header naming the destination service and port, and asks policy.
// Allowed streams are joined to the service's app on 127.0.0.1; refused ones
// get a response carrying the reason and are closed.
//
// Outbound, the agent listens on 127.0.0.1:LOCAL_PORT for each upstream a
// service declares. Every app connection becomes one stream of a pooled,
// multiplexed (yamux) mTLS tunnel from the source service to the
// destination service's agent, so only the first connection of a pair pays
// for a TLS handshake. Tunnels are recycled before the SVID they were opened
// with expires and as soon as the service's SVID rotates; streams in flight
// finish on the old tunnel.
//
// Flow records are OCSF Network Activity records; both ends' records of a
// connection carry its ID (connection_info.uid), derived from the one the
// source sent and the source's verified identity (connIDOf), so that no
// caller can give its connection another's recorded ID. The destination's records
// are the ones that count (talkers, totals): an Open record as soon as a
// connection is admitted, a Traffic record for each live connection every
// FlowInterval, and a Close (or Reset, when cut) record at the end; the
// bytes of each are those since the previous record of the connection, so
// a connection's records add up to its total. The source writes one record
// when its side ends. A refused stream is one Refuse record, a failed
// handshake one Fail record of kind "handshake": a peer's first 50 of one
// reason code, then 5 a second, the rest summarised each FlowInterval
// (flow.Gate; a stream's peer is its verified identity and address, a
// handshake's its address). Every refusal, failure and cut
// carries a machine-readable reason code (flow.Reason*). In records the
// destination port is the service port that policy names (8080 for "api"),
// not the app's loopback port or the agent's mesh port; EdgeOf turns a
// record back into a policy.Edge.
//
// The mesh port speaks mutual TLS only. A service whose peer mode is
// permissive also gets a plaintext listener (Service.PlaintextAddr) that
// ordinary clients connect to, with no tunnel header; intentions still
// decide (only a rule's from_plaintext admits a plaintext caller, by its
// address), and its records say TLS version "none".
//
// Upstream listeners of a service registered with a uid admit only local
// processes of that uid (Linux: the peer socket's owner, from the kernel's
// socket diagnostics); without a uid any local process may use them, so a
// registration without one does not isolate local users from each other.
//
// SetPolicy and trust updates apply to new streams at once and close live
// streams of pairs that are now denied or peers that are now revoked. A
// tunnel whose SVID merely expired takes no new stream but keeps the ones it
// carries: the source has opened a new tunnel with its renewed SVID before
// the expiry, and the old one drains.
package mesh

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-yamux/v5"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/flow"
	"moat/internal/identity"
	"moat/internal/mtls"
	"moat/internal/policy"
	"moat/internal/sockdiag"
)

// Identities hands out the current SVID of a service on this node. The mesh
// calls it at every handshake and whenever it opens a stream, so it must be
// cheap (a cached value) and must return the rotated SVID once rotation has
// happened.
type Identities interface {
	Certificate(service string) (*tls.Certificate, error)
}

// Config configures a Mesh.
type Config struct {
	// Node names this agent in flow records.
	Node string
	// Listen is the mesh port's address; "" means 127.0.0.1:0.
	Listen      string
	TrustDomain spiffeid.TrustDomain
	// Trust verifies peers. Required. An empty Trust refuses everyone.
	Trust *identity.Trust
	// Identities supplies the SVIDs of this node's services. Required.
	Identities Identities
	// Policy decides inbound streams; nil denies everything.
	Policy *policy.Table
	// Flows receives the flow records; nil discards them.
	Flows flow.Writer
	// Resolve returns the mesh address of the agent that runs service.
	// Required for outbound traffic.
	Resolve func(service string) (agentAddr string, err error)
	// Now is the clock for expiry decisions; nil means time.Now.
	Now func() time.Time
	// Logger gets operational messages; nil discards them.
	Logger *slog.Logger
	// DialTimeout bounds tunnel dials and app dials; zero means 5s.
	DialTimeout time.Duration
	// FlowInterval is how often a live connection's destination writes a
	// Traffic record with the bytes since its last record; zero means 60s
	// (as VPC Flow Logs aggregate).
	FlowInterval time.Duration
	// HealthChanged, when set, is called (without locks held) whenever a
	// local listener starts failing or recovers; Health says how things are.
	HealthChanged func()
	// StreamBuffer bounds what the node's inbound streams hold of their
	// sources' bytes, received and not yet delivered to their apps, all
	// sources together (see streamBudget); zero means
	// DefaultStreamBuffer. Past it, streams of the source holding the
	// most are reset.
	StreamBuffer int64
	// callerStreams bounds the streams one source (verified identity and
	// address) has open on this node at once: callerStreamsOf(StreamBuffer)
	// unless a test sets it. Past it, new streams are refused, overloaded.
	callerStreams int
	// PeerUID returns the uid owning the local socket at the other end of
	// an accepted loopback connection; nil means the kernel's answer
	// (Linux only; elsewhere every uid-guarded listener refuses all).
	PeerUID func(c net.Conn) (int, error)

	// protocols are the tunnel ALPN names offered and accepted, newest
	// first; nil means tunnelProtocols. Tests set moat-tunnel/1 alone to
	// stand for an agent from before version 2.
	protocols []string
}

// Service is one service on this node.
type Service struct {
	Name string
	// Port is the port callers name (and policy rules name); zero means
	// AppAddr's port.
	Port int
	// AppAddr is where the app listens, normally 127.0.0.1:PORT.
	AppAddr string
	// Mode overrides the policy's peer mode for this service; "" follows
	// the policy (strict unless it says permissive).
	Mode policy.PeerMode
	// PlaintextAddr is where the agent listens for plaintext callers while
	// the service is permissive; "" means no plaintext listener (a
	// permissive service is then reachable over mutual TLS only).
	PlaintextAddr string
	// UID, when set, is the only local uid whose processes may use this
	// service's upstream listeners (and so call as this service).
	UID *int
	// Upstreams are the services this one calls.
	Upstreams []Upstream
	// Handler, when set, serves the service inside the agent instead of
	// an app at AppAddr (the egress gateway is one): it decides who may
	// call (the intentions' rules for the service do not apply) and takes
	// each admitted connection.
	Handler Handler
}

// Handler serves a service in-process. Its methods are called
// concurrently.
type Handler interface {
	// Decide says whether the authenticated service src may call.
	Decide(src string) policy.Decision
	// Serve takes one admitted connection from src (its bytes, after the
	// tunnel header), identified by connID in both ends' records; it owns
	// conn and returns when done with it.
	Serve(conn net.Conn, src, connID string)
}

// Upstream is a service another one calls through a local port.
type Upstream struct {
	Service string
	Port    int
	// LocalAddr is the loopback address the caller's app connects to; a
	// port of 0 picks one (see LocalAddr).
	LocalAddr string
}

// Stats are cumulative counters, except the gauges marked so.
type Stats struct {
	ClientHandshakes  int64 // completed TLS handshakes opening tunnels
	ServerHandshakes  int64 // completed TLS handshakes accepting tunnels
	HandshakeFailures int64 // both sides
	TunnelsOpen       int64 // gauge: outbound tunnels
	StreamsOut        int64 // outbound connections carried
	StreamsIn         int64 // inbound streams and plaintext connections
	Refused           int64 // inbound streams refused
	Cut               int64 // live inbound streams closed by a policy, service or trust change
	Plaintext         int64 // plaintext connections accepted
	ListenFailures    int64 // failed attempts to bind a local listener
	ListenersFailing  int64 // gauge: local listeners not bound now
	UIDRefused        int64 // local connections refused for their uid
	AcceptFailures    int64 // failed accepts on the mesh port and local listeners, each retried
	HandshakesShed    int64 // mesh port connections closed at once: too many in their handshake (mtls.Pending)
	TunnelsShed       int64 // inbound tunnels closed once their handshake ended: too many held from their source or in all
	StreamsShed       int64 // inbound streams reset at once: too many waiting for their tunnel header from their source or in all
	BufferShed        int64 // inbound streams reset because their source held the most of the stream buffer when it was full
	DialsShed         int64 // inbound streams refused: too many connections to apps being made for their source or in all
	CallerStreamsShed int64 // inbound streams refused: too many streams open from their source
	StreamBuffered    int64 // gauge: bytes inbound streams hold, received and not yet delivered to their apps
	StreamBufferPeak  int64 // the most StreamBuffered has been
	AppUnreachable    int64 // allowed inbound streams whose service's app could not be reached
}

type counters struct {
	clientHS, serverHS, hsFail, tunnels, out, in, refused, cut, plain, listenFail, uidRefused, acceptFail, shed, tunnelsShed, streamsShed, bufShed, dialsShed, callerShed, appFail atomic.Int64
}

// acceptFailed counts a failed accept, and logs the first of a run of them
// and then one in a thousand.
func (m *Mesh) acceptFailed(err error) {
	if n := m.stats.acceptFail.Add(1); n%1000 == 1 {
		m.log.Warn("mesh: accept failed; retrying", logErr, err.Error(), "failures", n)
	}
}

// Mesh is one agent's data plane. Its methods are safe for concurrent use.
type Mesh struct {
	cfg       Config
	log       *slog.Logger
	now       func() time.Time
	flows     flow.Writer
	ln        net.Listener
	srvTLS    *tls.Config
	mux       *yamux.Config
	protocols []string // tunnel ALPN names, newest first
	// derivesIDs says the mesh records connection IDs derived from the
	// source's identity (connIDOf): it speaks version 3. Only tests
	// standing for an older agent turn it off.
	derivesIDs bool
	stats      counters
	pending    mtls.Pending       // connections to the mesh port in their handshake
	tunnels    mtls.Pending       // established inbound tunnels
	headers    mtls.Pending       // inbound streams waiting for their tunnel header
	dials      mtls.Pending       // connections to apps being made for inbound streams
	budget     *streamBudget      // what inbound streams hold, not yet delivered
	outLedger  *streamBudget      // what outbound streams hold: no bound, see openStream
	refusals   flow.Gate[*record] // refused handshakes and streams written one by one, the rest summarised

	policy   atomic.Pointer[policy.Table]
	services atomic.Pointer[map[string]Service]
	// servicesSet is set by the first SetServices: before it, the mesh
	// does not know its services yet, and says so (errNotReady).
	servicesSet atomic.Bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	retry chan struct{} // wakes the listener retry loop

	mu         sync.Mutex                // guards the fields below
	listeners  map[string]*localListener // by listenerSpec.key
	pool       map[poolKey]*poolEntry    // outbound tunnels
	inbound    map[*inTunnel]struct{}    // accepted tunnels
	inStreams  map[*inStream]struct{}    // live inbound connections (streams and plaintext)
	appDown    map[string]logRun         // by service: its app's failed dials since the last log line
	bufShedRun logRun                    // streams shed for the stream buffer since the last log line
	closed     bool
}

// logRun is a run of like events logged at most once every logEvery: the
// line says how many there were since the last.
type logRun struct {
	logged time.Time
	since  int64
}

// note counts an event at now and reports whether to log it, with the
// events since the last line logged (this one included).
func (r *logRun) note(now time.Time) (log bool, since int64) {
	r.since++
	if !r.logged.IsZero() && now.Sub(r.logged) < logEvery && !now.Before(r.logged) {
		return false, 0
	}
	since = r.since
	r.logged, r.since = now, 0
	return true, since
}

// logEvery is the least time between two log lines of one run of events
// a peer may cause as fast as it likes (a service's app being
// unreachable, the stream buffer running out).
const logEvery = time.Minute

// appUnreachable counts a failed dial of svc's app and logs it when it is
// the first of the service's for logEvery: an allowed caller, or a
// busy one, may open stream after stream while the app is down, each
// recorded as a flow, and must not write a line each into the node's
// journal. The line says how many failed since the last.
func (m *Mesh) appUnreachable(svc Service, err error) {
	m.stats.appFail.Add(1)
	now := m.now()
	m.mu.Lock()
	run := m.appDown[svc.Name]
	log, since := run.note(now)
	m.appDown[svc.Name] = run
	m.mu.Unlock()
	if log {
		m.log.Warn("mesh: app unreachable", logService, svc.Name, logAddr, svc.AppAddr, logErr, err.Error(), "failed", since)
	}
}

// bufferShed counts a stream of src reset for the stream buffer, and logs
// it when it is the first for logEvery: the source may open streams as
// fast as they are reset.
func (m *Mesh) bufferShed(src bufSourceKey) {
	m.stats.bufShed.Add(1)
	now := m.now()
	m.mu.Lock()
	log, since := m.bufShedRun.note(now)
	m.mu.Unlock()
	if log {
		m.log.Warn("mesh: stream buffer full; resetting streams of the source holding the most", logPeer, src.peer, logRemote, src.addr.String(),
			"held", m.budget.heldBy(src), "budget", m.budget.limit, "reset", since)
	}
}

// muxConfig is the yamux configuration of every tunnel, both ends.
func muxConfig() *yamux.Config {
	c := yamux.DefaultConfig()
	c.LogOutput = io.Discard
	// A stream's window is two full frames from the start. go-yamux opens
	// a stream at 256 KB and widens it only when a window's worth is read
	// within four of its measured round trips, which on loopback, where
	// its pings come back in tens of microseconds, it never was: bulk's
	// frames were cut to the 256 KB window and the source waited for each
	// to be read before sending the next. The receiver grants more once it
	// has read half its window: with two full frames' window, that is as
	// soon as the first is read, so the next frame travels while the
	// destination writes the one before to its app.
	c.InitialStreamWindowSize = streamWindow
	c.MaxStreamWindowSize = streamWindow
	// A frame carries what one read of a copy buffer returned: a full
	// buffer's frame is thirty-two full TLS records (see frame.go).
	c.MaxMessageSize = largeBuf + yamuxHeaderLen
	// Every connection between two services is a stream of their one
	// tunnel: the destination takes as many as the source opens (the
	// library's default would reset the 1,001st).
	c.MaxIncomingStreams = math.MaxUint32
	// A tunnel's liveness is keepAlive's, which costs a busy tunnel no
	// timer per frame received.
	c.EnableKeepAlive = false
	return c
}

// New checks c, binds the mesh port and returns a Mesh that serves once Run
// is called (once). Close (or Run's return) releases the port. Until
// SetServices names the node's services, the mesh port answers for none and
// there are no outbound listeners; until SetPolicy (or Config.Policy) every
// stream is denied.
func New(c Config) (*Mesh, error) {
	if c.Trust == nil || c.Identities == nil {
		return nil, errors.New("mesh: Config needs Trust and Identities")
	}
	if c.TrustDomain.IsZero() {
		c.TrustDomain = c.Trust.TrustDomain()
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:0"
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.FlowInterval == 0 {
		c.FlowInterval = 60 * time.Second
	}
	if c.PeerUID == nil {
		c.PeerUID = sockdiag.PeerUID
	}
	if c.protocols == nil {
		c.protocols = tunnelProtocols
	}
	switch {
	case c.StreamBuffer == 0:
		c.StreamBuffer = DefaultStreamBuffer
	case c.StreamBuffer < MinStreamBuffer:
		return nil, fmt.Errorf("mesh: StreamBuffer %d is below %d bytes, four streams' windows", c.StreamBuffer, MinStreamBuffer)
	}
	if c.callerStreams == 0 {
		c.callerStreams = callerStreamsOf(c.StreamBuffer)
	}
	m := &Mesh{
		cfg:        c,
		protocols:  c.protocols,
		derivesIDs: slices.Contains(c.protocols, alpnTunnelV3),
		log:        c.Logger,
		now:        c.Now,
		flows:      c.Flows,
		retry:      make(chan struct{}, 1),
		listeners:  map[string]*localListener{},
		pool:       map[poolKey]*poolEntry{},
		inbound:    map[*inTunnel]struct{}{},
		inStreams:  map[*inStream]struct{}{},
		appDown:    map[string]logRun{},
		pending:    mtls.Pending{PerSource: maxPendingPerSource, Total: maxPendingHandshakes},
		tunnels:    mtls.Pending{PerSource: maxTunnelsPerSource, Total: maxInboundTunnels, ByAddress: true},
		headers:    mtls.Pending{PerSource: maxHeaderWaitsPerSource, Total: maxHeaderWaits, ByAddress: true},
		dials:      mtls.Pending{PerSource: maxDialsPerSource, Total: maxDials, ByAddress: true},
	}
	m.budget = newStreamBudget(c.StreamBuffer, m.bufferShed)
	m.outLedger = newStreamBudget(math.MaxInt64, nil)
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.flows == nil {
		m.flows = flow.Discard
	}
	m.policy.Store(c.Policy)
	empty := map[string]Service{}
	m.services.Store(&empty)
	m.mux = muxConfig()
	var err error
	m.srvTLS, err = m.serverTLS()
	if err != nil {
		return nil, err
	}
	m.ln, err = net.Listen("tcp", c.Listen)
	if err != nil {
		return nil, fmt.Errorf("mesh: listen %q: %w", c.Listen, err)
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	return m, nil
}

// Addr is the mesh port's address.
func (m *Mesh) Addr() net.Addr { return m.ln.Addr() }

// Run serves the mesh port, watches the trust bundle, writes interim flow
// records and retries failed local listeners until ctx ends or Close is
// called, then closes every listener, tunnel and connection.
func (m *Mesh) Run(ctx context.Context) error {
	for _, f := range []func(){m.watchTrust, m.interimLoop, m.retryListeners} {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			f()
		}()
	}
	stop := context.AfterFunc(ctx, func() { _ = m.Close() })
	defer stop()
	for {
		c, err := AcceptRetrying(m.ln, m.acceptFailed)
		if err != nil {
			if m.ctx.Err() != nil {
				m.wg.Wait()
				return nil
			}
			_ = m.Close()
			m.wg.Wait()
			return fmt.Errorf("mesh: accept: %w", err)
		}
		release, ok := m.pending.Take(c.RemoteAddr())
		if !ok {
			m.shed(&m.stats.shed, "mesh: too many connections in their handshake; closing new ones", logRemote, c.RemoteAddr().String(),
				"per_source", maxPendingPerSource, "in_all", maxPendingHandshakes)
			_ = c.Close()
			continue
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.serveConn(c, release)
		}()
	}
}

// Connections to the mesh port in their handshake are bounded
// (mtls.Pending): a peer agent opens one tunnel per service pair it
// calls, a handful at once, and the agent unit has 65536 descriptors.
const (
	maxPendingPerSource  = 64
	maxPendingHandshakes = 4096
)

// Established inbound tunnels, and their streams waiting for their tunnel
// header, are bounded per source address (an IPv6 address too, not its
// /64 as for handshakes: a cloud subnet's /64 may hold a whole fleet of
// agents, each with its tunnels) and in all (mtls.Pending). Any holder of an SVID of the trust domain completes
// the handshake, intentions or not, and may then keep tunnels open and
// open streams that send nothing: each tunnel holds a descriptor and its
// session's goroutines, each silent stream a goroutine until the header
// deadline. An honest agent opens one tunnel for each pair of services it
// calls (and a few more while old ones drain after rotations), and its
// headers follow their streams at once.
const (
	maxTunnelsPerSource     = 1024
	maxInboundTunnels       = 16384
	maxHeaderWaitsPerSource = 1024
	maxHeaderWaits          = 8192
)

// Connections to apps being made for inbound streams are bounded per
// source address and in all (mtls.Pending): each holds a descriptor, and
// an app that is slow to accept (its backlog full) holds each for up to
// DialTimeout while an allowed caller opens stream after stream. An
// honest source's dials complete at once, a few at a time.
const (
	maxDialsPerSource = 256
	maxDials          = 4096
)

// shed counts, in n, a connection or stream closed at once for a bound,
// and logs the first of a run of them and then one in a thousand.
func (m *Mesh) shed(n *atomic.Int64, msg string, args ...any) {
	if c := n.Add(1); c%1000 == 1 {
		m.log.Warn(msg, append(args, "closed", c)...)
	}
}

// Close stops everything: the mesh port, the local listeners, every tunnel
// and every connection, accepted app connections included (a local app
// holding a connection open never keeps the mesh from stopping). It is
// idempotent.
func (m *Mesh) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.cancel()
	var closers []io.Closer
	for _, l := range m.listeners {
		closers = append(closers, l.closersLocked()...)
	}
	for _, e := range m.pool {
		for _, t := range e.all() {
			closers = append(closers, t.sess)
		}
	}
	for t := range m.inbound {
		closers = append(closers, t.conn)
	}
	for s := range m.inStreams {
		closers = append(closers, closerFunc(func() error { s.cut(flow.ReasonShutdown, "the agent is stopping"); return nil }))
	}
	m.mu.Unlock()
	err := m.ln.Close()
	for _, c := range closers {
		_ = c.Close()
	}
	m.flushRefusals() // the refused handshakes held back are summarised, not lost
	return err
}

// Stats returns a snapshot of the counters.
func (m *Mesh) Stats() Stats {
	s := &m.stats
	buffered, peak := m.budget.held()
	return Stats{
		ClientHandshakes: s.clientHS.Load(), ServerHandshakes: s.serverHS.Load(), HandshakeFailures: s.hsFail.Load(),
		TunnelsOpen: s.tunnels.Load(), StreamsOut: s.out.Load(), StreamsIn: s.in.Load(),
		Refused: s.refused.Load(), Cut: s.cut.Load(), Plaintext: s.plain.Load(),
		ListenFailures: s.listenFail.Load(), ListenersFailing: m.failingListeners(), UIDRefused: s.uidRefused.Load(),
		AcceptFailures: s.acceptFail.Load(), HandshakesShed: s.shed.Load(),
		TunnelsShed: s.tunnelsShed.Load(), StreamsShed: s.streamsShed.Load(), AppUnreachable: s.appFail.Load(),
		BufferShed: s.bufShed.Load(), DialsShed: s.dialsShed.Load(), CallerStreamsShed: s.callerShed.Load(), StreamBuffered: buffered, StreamBufferPeak: peak,
	}
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// SetPolicy swaps the policy. New streams see it at once; live inbound
// connections it no longer allows are closed, and plaintext listeners
// follow the services' peer modes.
func (m *Mesh) SetPolicy(t *policy.Table) {
	m.policy.Store(t)
	// A service's peer mode decides whether its plaintext listener runs.
	for _, err := range m.reconcileListeners(*m.services.Load()) {
		m.log.Warn("mesh: local listener", logErr, err.Error())
	}
	m.sweep()
}

// SetServices replaces the set of local services and reconciles the local
// listeners: new upstreams and plaintext ports start listening, removed ones
// stop and their connections close, and live connections to services that
// left are cut. Each service stands alone: one that does not validate is
// left out, and a listener that cannot be bound (its address still taken)
// is retried with backoff while the rest serve; the error names every such
// problem, and Health shows the listeners' state.
func (m *Mesh) SetServices(svcs []Service) error {
	next := make(map[string]Service, len(svcs))
	var errs []error
	for i, s := range svcs {
		s, err := checkService(i, s, next)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		next[s.Name] = s
	}
	m.services.Store(&next)
	m.servicesSet.Store(true)
	errs = append(errs, m.reconcileListeners(next)...)
	m.sweep()
	return errors.Join(errs...)
}

func checkService(i int, s Service, seen map[string]Service) (Service, error) {
	if err := identity.ValidName(s.Name); err != nil {
		return s, fmt.Errorf("mesh: services[%d]: %w", i, err)
	}
	if _, dup := seen[s.Name]; dup {
		return s, fmt.Errorf("mesh: services[%d]: %q given twice", i, s.Name)
	}
	if s.Port == 0 {
		_, p, err := net.SplitHostPort(s.AppAddr)
		if err != nil {
			return s, fmt.Errorf("mesh: service %q: app address %q: %w", s.Name, s.AppAddr, err)
		}
		s.Port, _ = strconv.Atoi(p)
	}
	if s.Port < 1 || s.Port > 65535 {
		return s, fmt.Errorf("mesh: service %q: port %d out of range", s.Name, s.Port)
	}
	switch s.Mode {
	case "", policy.Strict, policy.Permissive:
	default:
		return s, fmt.Errorf("mesh: service %q: mode %q (want strict or permissive)", s.Name, s.Mode)
	}
	if s.UID != nil && *s.UID < 0 {
		return s, fmt.Errorf("mesh: service %q: uid %d", s.Name, *s.UID)
	}
	for j, u := range s.Upstreams {
		if err := identity.ValidName(u.Service); err != nil {
			return s, fmt.Errorf("mesh: service %q: upstreams[%d]: %w", s.Name, j, err)
		}
		if u.Port < 1 || u.Port > 65535 {
			return s, fmt.Errorf("mesh: service %q: upstreams[%d]: port %d out of range", s.Name, j, u.Port)
		}
	}
	return s, nil
}

func (m *Mesh) service(name string) (Service, bool) {
	s, ok := (*m.services.Load())[name]
	return s, ok
}

// peerMode is the effective mode of a local service.
func (m *Mesh) peerMode(s Service) policy.PeerMode {
	if s.Mode != "" {
		return s.Mode
	}
	return m.policy.Load().PeerMode(s.Name)
}

// recheckEvery is how often live tunnels are re-verified even without a
// trust update, so that an SVID that expires by the injected clock (which
// need not follow the timers) closes its tunnels too.
const recheckEvery = 10 * time.Second

// watchTrust re-verifies every live tunnel's peer at each trust update and
// every recheckEvery.
func (m *Mesh) watchTrust() {
	tick := time.NewTicker(recheckEvery)
	defer tick.Stop()
	for {
		ch := m.cfg.Trust.Changed()
		select {
		case <-m.ctx.Done():
			return
		case <-ch:
			m.sweep()
		case <-tick.C:
			m.sweep()
		}
	}
}

// sweep closes what the current trust, policy and services no longer allow:
// tunnels whose peer fails verification, and inbound streams whose pair is
// now denied.
func (m *Mesh) sweep() {
	m.mu.Lock()
	var tunnels []*inTunnel
	for t := range m.inbound {
		tunnels = append(tunnels, t)
	}
	var outs []*tunnel
	for _, e := range m.pool {
		outs = append(outs, e.all()...)
	}
	var streams []*inStream
	for s := range m.inStreams {
		streams = append(streams, s)
	}
	m.mu.Unlock()
	distrusted := map[*inTunnel]string{}
	for _, t := range tunnels {
		if err := m.peerDistrusted(t.peerChain); err != nil {
			distrusted[t] = "peer no longer trusted: " + err.Error()
		} else if t.expired(m.now()) && t.sess.NumStreams() == 0 {
			_ = t.conn.Close() // drained after its SVID expired
		}
	}
	for _, s := range streams {
		if why, ok := distrusted[s.tun]; ok && s.tun != nil {
			s.cut(flow.ReasonPeerRevoked, why)
		}
	}
	for t, why := range distrusted {
		m.log.Info("mesh: closing inbound tunnel", logPeer, t.peer.String(), logReason, why)
		_ = t.conn.Close()
	}
	for _, t := range outs {
		if err := m.peerDistrusted(t.peerChain); err != nil {
			m.log.Info("mesh: closing outbound tunnel", logPeer, t.peer.String(), logReason, err.Error())
			t.close()
		}
	}
	pol := m.policy.Load()
	for _, s := range streams {
		if code, reason := m.stillAllowed(pol, s); reason != "" {
			s.cut(code, reason)
		}
	}
}

// peerDistrusted says why a live tunnel's peer must go: its chain no longer
// verifies for a reason other than its age. An SVID that merely expired
// keeps the streams it carries (its service holds a renewed one by now),
// while a revoked identity or a root taken out of the bundle cuts them.
func (m *Mesh) peerDistrusted(chain []*x509.Certificate) error {
	_, err := m.cfg.Trust.Verify(chain)
	if err == nil || !errors.Is(err, identity.ErrExpired) {
		return err
	}
	_, err = m.cfg.Trust.VerifyAt(chain, chain[0].NotAfter)
	return err
}

func (m *Mesh) stillAllowed(pol *policy.Table, s *inStream) (code, reason string) {
	svc, ok := m.service(s.dst)
	if !ok {
		return flow.ReasonServiceRemoved, fmt.Sprintf("service %q left this node", s.dst)
	}
	if s.plaintext {
		if m.peerMode(svc) != policy.Permissive {
			return flow.ReasonPolicyChanged, fmt.Sprintf("service %q is now strict", s.dst)
		}
		if d := pol.DecidePlaintext(s.srcIP, s.dst, s.port); !d.Allow {
			return flow.ReasonPolicyChanged, fmt.Sprintf("policy %s no longer admits plaintext %s → %s:%d (%s)", short(pol.Version()), s.srcIP, s.dst, s.port, d.Rule)
		}
		return "", ""
	}
	if d := m.decide(pol, svc, s.src, s.port); !d.Allow {
		return flow.ReasonPolicyChanged, fmt.Sprintf("policy %s no longer allows %s → %s:%d (%s)", short(pol.Version()), s.src, s.dst, s.port, d.Rule)
	}
	return "", ""
}

func short(v string) string {
	if len(v) > 12 {
		return v[:12]
	}
	return v
}
