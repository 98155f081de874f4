package agent

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-yamux/v5"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/api"
	"moat/internal/config"
	"moat/internal/flow"
	"moat/internal/identity"
	"moat/internal/mtls"
)

// Break-glass access on the node.
//
// The agent keeps one tunnel open to the control plane (an HTTP stream it
// opened, carrying yamux), so the node listens on no port for access. The
// control plane opens a stream on it for each administrator connection it
// relays, headed by a line naming the session; the administrator's client
// then runs mutual TLS with the agent over it, presenting an access-grant
// certificate, which the agent checks against the grants the watch stream
// gave it: the grant's requester (the account, by the ID the certificate
// carries, not the name), this node, the mode the client asks for (by
// ALPN), active now. Anything else is refused and recorded as a security
// event (reason outside_grant). A shell grant's connection then carries SSH
// to the agent's in-process server, whose sessions run as the configured
// local user in a PTY and are recorded; a forward grant's carries one TCP
// connection to the granted service, decided by the intentions for the
// source admin/<name> like any mesh stream. Revoking or expiring the grant
// ends its sessions at once, and with a session end the processes it
// started, wherever they went (see accesssup_linux.go).

// AccessConfig configures break-glass access on a node.
type AccessConfig struct {
	// Off closes the access tunnel: no administrator can reach the node
	// through moat.
	Off bool
	// User is the local account shells and commands run as; empty refuses
	// shell grants on this node. Root (uid 0) is refused unless AllowRoot.
	User      string
	AllowRoot bool
	// Shell runs interactive sessions and commands; empty means the user's
	// login shell from the passwd database, or /bin/sh.
	Shell string
	// RecordInput also records what the administrator types on a
	// terminal; off, since typed secrets would be kept. The commands a
	// shell without a terminal reads are recorded either way.
	RecordInput bool
	// SFTPServer is the program of the sftp subsystem (sftp, and scp since
	// OpenSSH 9); empty looks for OpenSSH's in the usual places.
	SFTPServer string
	// MaxRecording bounds one session's recording; a session that would
	// exceed it is ended. Zero means 64 MiB. The control plane's bound
	// (its access.max_recording_bytes) applies too when it is lower: the
	// agent learns it as its access tunnel opens, and warns.
	MaxRecording int64
}

// access is the agent's break-glass side.
type access struct {
	a   *Agent
	cfg AccessConfig

	hostMu sync.Mutex // guards host
	host   *sshHost

	mu   sync.Mutex // guards live
	live map[*liveSession]struct{}

	shipWake chan struct{}
	execs    *execWatch

	// refusals holds back the security events of a source refused as
	// fast as it connects, for a summary (flow.Gate).
	refusals flow.Gate[flow.Record]

	// serverMax is the largest recording the control plane takes, as the
	// last access tunnel's answer said (0: not said).
	serverMax atomic.Int64
}

// liveSession is one administrator connection being served.
type liveSession struct {
	info   api.AccessSession
	grant  string
	cancel context.CancelCauseFunc
}

// errGrantEnded is the cause of a session cut for its grant.
var errGrantEnded = errors.New("the grant was revoked or expired")

func newAccess(a *Agent, cfg AccessConfig) *access {
	if cfg.MaxRecording == 0 {
		cfg.MaxRecording = 64 << 20
	}
	return &access{a: a, cfg: cfg, live: map[*liveSession]struct{}{}, shipWake: make(chan struct{}, 1), execs: newExecWatch(a.log)}
}

// Grant returns the grant id of this node, as the watch stream last said.
func (a *Agent) Grant(id string) (api.Grant, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	g, ok := a.state.grants[id]
	return g, ok
}

// runAccess keeps the tunnel, enforces grants on live sessions and ships
// recordings until ctx ends.
func (x *access) run(ctx context.Context) error {
	if x.cfg.Off {
		return nil
	}
	x.checkShells()
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); x.enforce(ctx) }()
	go func() { defer wg.Done(); x.ship(ctx) }()
	go func() { defer wg.Done(); x.summarise(ctx) }()
	defer wg.Wait()
	fails := 0
	for ctx.Err() == nil {
		if !x.a.Synced() {
			select {
			case <-ctx.Done():
				return nil
			case <-x.a.Updates():
			}
			continue
		}
		err := x.tunnel(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			fails++
			x.a.log.Debug("access tunnel", "err", err)
		} else {
			fails = 0
		}
		select {
		case <-ctx.Done():
		case <-x.a.cfg.After(x.a.backoff(fails)):
		}
	}
	return nil
}

// tunnel opens the tunnel to the control plane and serves what it relays
// until it breaks or the node certificate is renewed (the next tunnel
// presents the new one).
func (x *access) tunnel(ctx context.Context) error {
	renewed := x.a.nodeChanged.C()
	if err := x.refreshHost(ctx); err != nil {
		x.a.log.Warn("access: no SSH host certificate; shell grants are refused until one is issued", "err", err)
	}
	conn, err := x.a.api().Stream(ctx, api.PathNodeAccessTunnel, nil)
	if err != nil {
		return err
	}
	if sc, ok := conn.(*api.StreamConn); ok {
		x.learnServerMax(sc.Header.Get(api.HeaderMaxRecording))
	}
	sess, err := yamux.Server(conn, api.AccessMuxConfig(), nil)
	if err != nil {
		conn.Close()
		return err
	}
	defer sess.Close()
	go func() {
		select {
		case <-ctx.Done():
		case <-renewed:
		case <-sess.CloseChan():
		}
		_ = sess.Close()
	}()
	x.a.log.Info("access tunnel open")
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("access tunnel closed: %w", err)
		}
		go x.serve(ctx, st)
	}
}

// learnServerMax takes the control plane's bound on a recording, v, from
// a tunnel's answer, and warns when the node's own is above it: a
// recording past it would be refused each time it was sent, so sessions
// end at the lower bound (maxRecording).
func (x *access) learnServerMax(v string) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= closeRoom {
		return // not said (an older server): the node's own bound
	}
	if old := x.serverMax.Swap(n); old != n && n < x.cfg.MaxRecording {
		x.a.log.Warn("access: max_recording_bytes is above the control plane's: sessions end when their recording reaches the control plane's bound",
			"max_recording_bytes", x.cfg.MaxRecording, "control_plane", n)
	}
}

// maxRecording bounds a new session's recording: the node's
// max_recording_bytes, or the control plane's bound when it is lower.
func (x *access) maxRecording() int64 {
	if n := x.serverMax.Load(); n > 0 && n < x.cfg.MaxRecording {
		return n
	}
	return x.cfg.MaxRecording
}

// bufConn replays what a bufio.Reader holds before reading on.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// serve takes one relayed stream: the relay's hello, then mutual TLS with
// the administrator's client, then the grant's protocol.
func (x *access) serve(ctx context.Context, st net.Conn) {
	defer st.Close()
	br := bufio.NewReaderSize(st, 4096)
	line, err := br.ReadSlice('\n')
	if err != nil {
		return
	}
	hello, err := api.ParseRelayHello(line)
	if err != nil {
		x.a.log.Warn("access: malformed relay hello", "err", err)
		return
	}
	x.awaitGrant(ctx, hello.Grant)
	var peer verifiedPeer
	conf := &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{api.ALPNAccessSSH, api.ALPNAccessForward},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return x.a.nodeCertificate()
		},
		ClientAuth: tls.RequireAnyClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			p, err := x.verify(cs, hello)
			if err != nil {
				return err
			}
			peer = p
			return nil
		},
	}
	tc := tls.Server(&bufConn{Conn: st, r: br}, conf)
	hctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err = tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		x.a.log.Info("access: connection refused", "session", hello.Session, "admin", hello.Admin, "err", err)
		return
	}
	defer tc.Close()
	info := api.AccessSession{ID: hello.Session, Grant: peer.grant.ID, Admin: peer.id, Node: x.a.cfg.Node,
		Mode: peer.grant.Mode, Remote: hello.Remote, Started: x.a.cfg.Now().UTC()}
	sctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	ls := &liveSession{info: info, grant: peer.grant.ID, cancel: stop}
	x.mu.Lock()
	x.live[ls] = struct{}{}
	x.mu.Unlock()
	defer func() {
		x.mu.Lock()
		delete(x.live, ls)
		x.mu.Unlock()
	}()
	// A grant revoked while the handshake ran is caught here.
	if g, ok := x.a.Grant(peer.grant.ID); !ok || !g.Active(x.a.cfg.Now()) {
		return
	}
	expiry := time.AfterFunc(peer.grant.Expires.Sub(x.a.cfg.Now()), func() { stop(errGrantEnded) })
	defer expiry.Stop()
	go func() {
		<-sctx.Done()
		_ = tc.Close()
	}()
	switch tc.ConnectionState().NegotiatedProtocol {
	case api.ALPNAccessSSH:
		x.serveSSH(sctx, tc, ls)
	case api.ALPNAccessForward:
		x.serveForward(sctx, tc, ls, peer)
	}
}

// grantCatchUp bounds how long a relayed connection waits for the watch
// stream to bring the grant it names.
const grantCatchUp = 10 * time.Second

// awaitGrant waits, at most grantCatchUp, until the watch stream shows
// grant id active on this node. The server relays a connection once the
// grant is active in its store, and the approval may still be on its way
// here (just made, or the stream reconnecting to another server): the
// administrator who connects at once must not be refused for that. It
// decides nothing: verify admits or refuses from the state as it is then.
func (x *access) awaitGrant(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(ctx, grantCatchUp)
	defer cancel()
	for {
		next := x.a.updates.C() // taken before the check, so no frame is missed
		if g, ok := x.a.Grant(id); ok && g.Node == x.a.cfg.Node && g.Active(x.a.cfg.Now()) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-next:
		}
	}
}

// verifiedPeer is an administrator the agent admitted, and their grant.
type verifiedPeer struct {
	id    string
	grant api.Grant
	cs    tls.ConnectionState
}

// verify admits an access-grant certificate for an active grant of this
// node, issued to its requester's account, in the mode the client asks
// for. Every refusal is a security event.
func (x *access) verify(cs tls.ConnectionState, hello api.RelayHello) (verifiedPeer, error) {
	var id spiffeid.ID // the certificate's, once verified
	refuse := func(code, why string, grant string) (verifiedPeer, error) {
		x.securityEvent(hello, cs, id, code, why, grant)
		return verifiedPeer{}, errors.New("access: " + why)
	}
	presented, err := x.a.trust.Verify(cs.PeerCertificates)
	if err != nil {
		return refuse(identityCode(err), err.Error(), hello.Grant)
	}
	id = presented
	kind, _, _ := identity.Parse(id)
	if kind != identity.KindAdmin {
		return refuse(flow.ReasonOutsideGrant, fmt.Sprintf("%s is not an administrator", id), hello.Grant)
	}
	marks, err := identity.ReadAdminMarks(cs.PeerCertificates[0])
	if err != nil || marks.Grant == "" {
		return refuse(flow.ReasonOutsideGrant, "an administrator must present the certificate of an access grant", hello.Grant)
	}
	g, ok := x.a.Grant(marks.Grant)
	now := x.a.cfg.Now()
	want := api.ModeShell
	if cs.NegotiatedProtocol == api.ALPNAccessForward {
		want = api.ModeForward
	}
	switch {
	case !ok || g.Node != x.a.cfg.Node:
		return refuse(flow.ReasonOutsideGrant, fmt.Sprintf("grant %s is not a grant of node %q", marks.Grant, x.a.cfg.Node), marks.Grant)
	case g.Requester != id.String():
		return refuse(flow.ReasonOutsideGrant, fmt.Sprintf("grant %s is not %s's", g.ID, id), g.ID)
	case g.RequesterAccount == "":
		// Recorded before accounts carried an ID: no account's, as the
		// control plane holds (it issues no certificate for it).
		return refuse(flow.ReasonOutsideGrant, fmt.Sprintf("grant %s was recorded before accounts carried an ID, so it is no account's, %s's included: ask for a new grant", g.ID, id), g.ID)
	case marks.Account != g.RequesterAccount:
		// The name's, but not the account's: a certificate of another
		// account of the requester's name (an earlier one, removed since,
		// or one made after it).
		return refuse(flow.ReasonOutsideGrant, fmt.Sprintf("grant %s belongs to another account named %s than this certificate's", g.ID, id), g.ID)
	case marks.Grant != hello.Grant:
		return refuse(flow.ReasonOutsideGrant, "the certificate's grant is not the one the relay named", g.ID)
	case g.Mode != want:
		return refuse(flow.ReasonOutsideGrant, fmt.Sprintf("grant %s is for %s, not %s", g.ID, g.Mode, want), g.ID)
	case !g.Active(now):
		return refuse(flow.ReasonGrantEnded, fmt.Sprintf("grant %s is %s", g.ID, g.State(now)), g.ID)
	}
	return verifiedPeer{id: id.String(), grant: g, cs: cs}, nil
}

// identityCode maps a refused chain to its reason code (mtls.ReasonCode);
// a refusal it does not name is a bad certificate.
func identityCode(err error) string {
	if code := mtls.ReasonCode(err); code != "" {
		return code
	}
	return flow.ReasonBadCertificate
}

// enforce ends live sessions whose grant the watch stream revoked.
func (x *access) enforce(ctx context.Context) {
	for {
		updated := x.a.Updates()
		now := x.a.cfg.Now()
		x.mu.Lock()
		var cut []*liveSession
		for s := range x.live {
			if g, ok := x.a.Grant(s.grant); !ok || !g.Active(now) {
				cut = append(cut, s)
			}
		}
		x.mu.Unlock()
		for _, s := range cut {
			s.cancel(errGrantEnded)
		}
		select {
		case <-ctx.Done():
			return
		case <-updated:
		}
	}
}

// report tells the control plane a session started; the session goes on
// only once it is on record.
func (x *access) reportStart(ctx context.Context, info api.AccessSession) error {
	return x.a.api().Call(ctx, http.MethodPost, api.PathNodeAccessEvent, api.AccessEvent{Kind: "start", Session: info}, nil)
}

// AccessFile is the "access" section of moat agent's configuration file.
type AccessFile struct {
	Off          bool   `yaml:"off"`
	User         string `yaml:"user"`
	AllowRoot    bool   `yaml:"allow_root"`
	Shell        string `yaml:"shell"`
	RecordInput  bool   `yaml:"record_input"`
	SFTPServer   string `yaml:"sftp_server"`
	MaxRecording int64  `yaml:"max_recording_bytes"`
}

// Config validates f; errors name keys under path.
func (f AccessFile) Config(path string) (AccessConfig, error) {
	c := AccessConfig(f)
	if c.User == "root" && !c.AllowRoot {
		return c, config.Errorf(config.Join(path, "user"), "root shells are refused unless allow_root is true")
	}
	if len(c.User) > 64 || strings.ContainsAny(c.User, ":/ \n") {
		return c, config.Errorf(config.Join(path, "user"), "%q is not a user name", c.User)
	}
	for _, p := range []struct{ key, v string }{{"shell", c.Shell}, {"sftp_server", c.SFTPServer}} {
		if p.v != "" && !filepath.IsAbs(p.v) {
			return c, config.Errorf(config.Join(path, p.key), "%q: want an absolute path", p.v)
		}
	}
	if c.MaxRecording < 0 || c.MaxRecording > 1<<30 {
		return c, config.Errorf(config.Join(path, "max_recording_bytes"), "%d: want at most 1 GiB", c.MaxRecording)
	}
	return c, nil
}
