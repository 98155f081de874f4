package egress

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/flow"
	"moat/internal/mesh"
	"moat/internal/policy"
)

// ProxyConfig configures a node's Proxy.
type ProxyConfig struct {
	// Node names this node in records.
	Node        string
	TrustDomain spiffeid.TrustDomain
	// ConnectAddr is the HTTP CONNECT proxy's loopback address; "" runs
	// none. (SetExternal adds listeners for external upstreams.)
	ConnectAddr string
	// SNIAddr is the TLS listener's loopback address; "" runs none.
	SNIAddr string
	// SNIPort is the port SNI connections go to; zero means 443.
	SNIPort int
	// Policy returns the intentions in force.
	Policy func() *policy.Table
	// PeerUID tells the uid owning a local caller's socket (sockdiag.PeerUID).
	PeerUID func(net.Conn) (int, error)
	// Callers lists the services a local uid may act as (those registered
	// with that uid, and those registered without one unless the node
	// requires uids); the first that a rule allows is the caller.
	Callers func(uid int) []string
	// Point, when set, connects out from this node (it may egress
	// directly). Otherwise connections go through the egress gateway.
	Point *Point
	// Gateway opens a mesh stream as service src to the egress gateway;
	// nil (or an error) when there is none.
	Gateway func(ctx context.Context, src string) (net.Conn, error)
	// Flows receives the records of refusals made here; nil discards.
	Flows flow.Writer
	// MaxConns bounds concurrent connections; zero means 1024.
	MaxConns int
	// MaxConnsPerUID bounds those of one local uid, so that one service
	// cannot hold every one; zero means a quarter of MaxConns.
	MaxConnsPerUID int
	DialTimeout    time.Duration
	Now            func() time.Time
	Logger         *slog.Logger
}

// Proxy is a node's way out for its services.
type Proxy struct {
	cfg    ProxyConfig
	log    *slog.Logger
	sem    chan struct{}
	mu     sync.Mutex // guards lns, ext, conns, perUID and runCtx
	lns    map[string]net.Listener
	ext    map[string]*extListener // external upstreams, by External.key
	conns  map[net.Conn]int        // each connection's caller's uid, -1 when not told
	perUID map[int]int             // connections held, by uid
	runCtx context.Context         // set while Run serves
	wg     sync.WaitGroup
	errc   chan error
}

// NewProxy binds the configured listeners; Run serves them.
func NewProxy(cfg ProxyConfig) (*Proxy, error) {
	if cfg.Policy == nil || cfg.PeerUID == nil || cfg.Callers == nil {
		return nil, errors.New("egress: ProxyConfig needs Policy, PeerUID and Callers")
	}
	if cfg.SNIPort == 0 {
		cfg.SNIPort = 443
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = 1024
	}
	if cfg.MaxConnsPerUID == 0 {
		cfg.MaxConnsPerUID = max(1, cfg.MaxConns/4)
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
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
	p := &Proxy{cfg: cfg, log: cfg.Logger, sem: make(chan struct{}, cfg.MaxConns), lns: map[string]net.Listener{}, ext: map[string]*extListener{}, conns: map[net.Conn]int{}, perUID: map[int]int{}}
	for kind, addr := range map[string]string{"connect": cfg.ConnectAddr, "sni": cfg.SNIAddr} {
		if addr == "" {
			continue
		}
		ln, err := mesh.ListenLoopback(addr)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("egress: %s listener: %w", kind, err)
		}
		p.lns[kind] = ln
	}
	return p, nil
}

// Addr returns the bound address of the "connect" or "sni" listener.
func (p *Proxy) Addr(kind string) net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ln, ok := p.lns[kind]; ok {
		return ln.Addr()
	}
	return nil
}

// Close stops the listeners; connections in flight finish (Run's end cuts
// them).
func (p *Proxy) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ln := range p.lns {
		_ = ln.Close()
	}
	for k, l := range p.ext {
		_ = l.ln.Close()
		delete(p.ext, k)
	}
	return nil
}

// Run serves until ctx ends.
func (p *Proxy) Run(ctx context.Context) error {
	p.mu.Lock()
	p.runCtx = ctx
	for kind, ln := range p.lns {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.accept(ln, func(c net.Conn) {
				if kind == "connect" {
					p.handleConnect(ctx, c)
				} else {
					p.handleSNI(ctx, c)
				}
			})
		}()
	}
	for _, l := range p.ext {
		p.serveExternal(ctx, l)
	}
	p.mu.Unlock()
	<-ctx.Done()
	p.Close()
	p.mu.Lock()
	p.runCtx = nil
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

// accept serves ln until it closes, handing each connection to handle
// within the connection limit; Run's end cuts the connections.
func (p *Proxy) accept(ln net.Listener, handle func(net.Conn)) {
	for {
		c, err := mesh.AcceptRetrying(ln, func(err error) { p.log.Debug("egress: accept failed; retrying", "err", err) })
		if err != nil {
			return
		}
		select {
		case p.sem <- struct{}{}:
		default:
			p.log.Warn("egress: too many connections; refusing", "limit", p.cfg.MaxConns)
			_ = c.Close()
			continue
		}
		uid, err := p.cfg.PeerUID(c)
		if err != nil {
			uid = -1 // the handler refuses it, saying why
		}
		p.mu.Lock()
		if uid >= 0 && p.perUID[uid] >= p.cfg.MaxConnsPerUID {
			p.mu.Unlock()
			<-p.sem
			p.busy(c, uid)
			continue
		}
		p.conns[c] = uid
		if uid >= 0 {
			p.perUID[uid]++
		}
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer func() {
				p.mu.Lock()
				delete(p.conns, c)
				if uid >= 0 {
					if p.perUID[uid]--; p.perUID[uid] == 0 {
						delete(p.perUID, uid)
					}
				}
				p.mu.Unlock()
				<-p.sem
			}()
			handle(c)
		}()
	}
}

// busy closes c, whose caller (uid) holds as many connections as it may,
// and records the refusal.
func (p *Proxy) busy(c net.Conn, uid int) {
	start := p.cfg.Now()
	_ = c.Close()
	t := Target{Host: "unknown", SrcIP: addrOnly(c.RemoteAddr()), ConnID: flow.NewID()}
	if srcs := p.cfg.Callers(uid); len(srcs) > 0 {
		t.Src = srcs[0]
	}
	p.refuse(start, t, &Refusal{Code: flow.ReasonEgressBusy,
		Reason: fmt.Sprintf("uid %d holds %d egress connections, as many as one uid may at once", uid, p.cfg.MaxConnsPerUID)})
}

// peerUID is the uid of c's caller, as accept told it.
func (p *Proxy) peerUID(c net.Conn) (int, error) {
	p.mu.Lock()
	uid, ok := p.conns[c]
	p.mu.Unlock()
	if ok && uid >= 0 {
		return uid, nil
	}
	return p.cfg.PeerUID(c)
}

// caller decides which local service is calling and whether a rule lets
// it reach host:port: the first of the uid's services that one does.
func (p *Proxy) caller(c net.Conn, t *Target) *Refusal {
	t.SrcIP = addrOnly(c.RemoteAddr())
	uid, err := p.peerUID(c)
	if err != nil {
		return &Refusal{Code: flow.ReasonNoIdentity, Reason: fmt.Sprintf("the caller's uid cannot be told: %v", err)}
	}
	srcs := p.cfg.Callers(uid)
	if len(srcs) == 0 {
		return &Refusal{Code: flow.ReasonNoIdentity, Reason: fmt.Sprintf("uid %d runs no service registered on this node", uid)}
	}
	pol := p.cfg.Policy()
	for _, s := range srcs {
		if d := pol.DecideEgress(s, t.Host, t.Port); d.Allow {
			t.Src = s
			return nil
		}
	}
	t.Src = srcs[0]
	return &Refusal{Code: flow.ReasonEgressDenied, Rule: policy.DefaultDeny,
		Reason: fmt.Sprintf("no egress rule lets %s (uid %d) reach %s", strings.Join(srcs, " or "), uid, t)}
}

// refuse records a refusal decided on this node.
func (p *Proxy) refuse(start time.Time, t Target, r *Refusal) {
	rec := newRecord(p.cfg.TrustDomain, p.cfg.Node, start, p.cfg.Now(), t, flow.ActivityRefuse, flow.VerdictDeny)
	rec.FirewallRule = &flow.Rule{Name: r.Rule}
	if r.Rule == "" {
		rec.FirewallRule.Name = policy.DefaultDeny
	}
	rec.Unmapped.ReasonCode, rec.Unmapped.Reason = r.Code, r.Reason
	p.log.Info("egress: refused", "src", t.Src, "host", t.Host, "port", t.Port, "code", r.Code, "reason", r.Reason)
	if err := p.cfg.Flows.Write(rec); err != nil {
		p.log.Warn("egress: record not written", "err", err)
	}
}

// maxRequest bounds a CONNECT request's head.
const maxRequest = 8 << 10

func (p *Proxy) handleConnect(ctx context.Context, c net.Conn) {
	defer c.Close()
	start := p.cfg.Now()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReaderSize(io.LimitReader(c, maxRequest), 4096)
	req, err := http.ReadRequest(br)
	_ = c.SetReadDeadline(time.Time{})
	if err != nil {
		answer(c, http.StatusBadRequest, "bad request")
		return
	}
	if req.Method != http.MethodConnect {
		answer(c, http.StatusMethodNotAllowed, "this proxy takes CONNECT only (set HTTPS_PROXY; plain http:// goes through no proxy here)")
		return
	}
	hostStr, portStr, err := net.SplitHostPort(req.Host)
	port, perr := strconv.Atoi(portStr)
	if err != nil || perr != nil || port < 1 || port > 65535 {
		answer(c, http.StatusBadRequest, "CONNECT wants host:port")
		return
	}
	host, err := policy.NormalizeHost(hostStr)
	if err != nil {
		answer(c, http.StatusBadRequest, "CONNECT wants a host name or an address")
		return
	}
	t := Target{Host: host, Port: port, ConnID: flow.NewID()}
	if r := p.caller(c, &t); r != nil {
		p.refuse(start, t, r)
		answer(c, http.StatusForbidden, "egress refused: "+r.Code)
		return
	}
	first, _ := br.Peek(br.Buffered()) // bytes the client sent past the request
	p.forward(ctx, start, c, t, func(r *Refusal) {
		status := http.StatusBadGateway
		if r.Code == flow.ReasonEgressDenied || r.Code == flow.ReasonEgressInternal {
			status = http.StatusForbidden
		}
		answer(c, status, "egress refused: "+r.Code)
	}, func() error {
		_, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		return err
	}, append([]byte(nil), first...))
}

func (p *Proxy) handleSNI(ctx context.Context, c net.Conn) {
	defer c.Close()
	start := p.cfg.Now()
	_ = c.SetReadDeadline(time.Now().Add(helloTimeout))
	hello, sni, isTLS, err := readHello(c, nil)
	_ = c.SetReadDeadline(time.Time{})
	t := Target{Port: p.cfg.SNIPort, ConnID: flow.NewID()}
	if err != nil || !isTLS || sni == "" {
		t.Host = "unknown"
		if r := p.caller(c, &t); r != nil && r.Code == flow.ReasonNoIdentity {
			p.refuse(start, t, r)
			return
		}
		why := "the TLS listener needs a ClientHello naming the server"
		if err != nil {
			why += ": " + err.Error()
		}
		p.refuse(start, t, &Refusal{Code: flow.ReasonSNIMismatch, Reason: why})
		return
	}
	host, err := policy.NormalizeHost(sni)
	if err != nil {
		t.Host = "unknown"
		p.refuse(start, t, &Refusal{Code: flow.ReasonSNIMismatch, Reason: fmt.Sprintf("server name: %v", err)})
		return
	}
	t.Host = host
	if r := p.caller(c, &t); r != nil {
		p.refuse(start, t, r)
		return
	}
	p.forward(ctx, start, c, t, func(*Refusal) {}, func() error { return nil }, hello)
}

// forward takes an admitted caller to its egress point: this node's, or
// the egress gateway over the mesh. refused answers the client when the
// point refuses; admitted when it connected.
func (p *Proxy) forward(ctx context.Context, start time.Time, c net.Conn, t Target, refused func(*Refusal), admitted func() error, first []byte) {
	if p.cfg.Point != nil {
		up, err := p.cfg.Point.Open(ctx, t)
		if err != nil {
			var r *Refusal
			errors.As(err, &r)
			refused(r)
			return
		}
		if admitted() != nil {
			up.conn.Close()
			return
		}
		p.cfg.Point.Relay(c, first, up)
		return
	}
	var st net.Conn
	err := errors.New("no egress gateway and this node may not egress itself")
	if p.cfg.Gateway != nil {
		st, err = p.cfg.Gateway(ctx, t.Src)
	}
	if err != nil {
		r := &Refusal{Code: flow.ReasonUnavailable, Reason: fmt.Sprintf("egress gateway: %v", err)}
		p.refuse(start, t, r)
		refused(r)
		return
	}
	defer st.Close()
	req, err := appendRequest(nil, t.Host, t.Port)
	if err == nil {
		_ = st.SetDeadline(time.Now().Add(3 * p.cfg.DialTimeout))
		if _, err = st.Write(req); err == nil {
			var r *Refusal
			if r, err = readResponse(st); err == nil && r != nil {
				refused(r) // the gateway recorded it
				return
			}
		}
		_ = st.SetDeadline(time.Time{})
	}
	if err != nil {
		r := &Refusal{Code: flow.ReasonUnavailable, Reason: fmt.Sprintf("egress gateway: %v", err)}
		p.refuse(start, t, r)
		refused(r)
		return
	}
	if admitted() != nil {
		return
	}
	if len(first) > 0 {
		if _, err := st.Write(first); err != nil {
			return
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(c, st)
		closeWrite(c)
	}()
	_, _ = io.Copy(st, c)
	closeWrite(st)
	<-done
}

func answer(c net.Conn, status int, msg string) {
	body := msg + "\n"
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, http.StatusText(status), len(body), body)
}
