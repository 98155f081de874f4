package server

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/libp2p/go-yamux/v5"

	"moat/internal/api"
	"moat/internal/identity"
)

// nodeTunnel is an agent's open access tunnel to this server: a yamux
// session over one long-lived HTTP stream the agent opened, on which this
// server opens a stream per relayed connection. The node listens on
// nothing for it.
type nodeTunnel struct {
	node  string
	sess  *yamux.Session
	since time.Time
	id    string            // names this tunnel in its store record
	leaf  *x509.Certificate // the node certificate that opened it
}

// untrusted says why the node certificate that opened t is no longer
// trusted (revoked or expired), or "".
func (s *Server) untrusted(t *nodeTunnel) string {
	if err := identity.CheckValidity(t.leaf, s.now()); err != nil {
		return err.Error()
	}
	if id, err := identity.LeafID(t.leaf); err != nil || s.trust.Revoked(t.leaf, id) {
		return "the node's certificate is revoked"
	}
	return ""
}

// openTunnel returns node's open tunnel to this server while the
// certificate that opened it is trusted; one that is not is closed.
func (s *Server) openTunnel(node string) *nodeTunnel {
	t := s.access.tunnel(node)
	if t != nil && s.untrusted(t) != "" {
		_ = t.sess.Close()
		return nil
	}
	return t
}

// relay is one administrator connection carried to a node.
type relay struct {
	grant  string
	cancel context.CancelFunc
}

// streamOf makes a net.Conn of a full-duplex HTTP exchange.
func streamOf(w http.ResponseWriter, r *http.Request) (net.Conn, error) {
	rc := http.NewResponseController(w)
	_ = rc.EnableFullDuplex() // HTTP/1.1 needs it; HTTP/2 is full duplex already
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return nil, err
	}
	remote := r.RemoteAddr
	return &api.StreamConn{R: r.Body, W: w, Flush: rc.Flush, Closer: r.Body.Close,
		Remote: addrString(remote)}, nil
}

type addrString string

func (a addrString) Network() string { return "tcp" }
func (a addrString) String() string  { return string(a) }

// handleAccessTunnel keeps an agent's tunnel until it or the server ends.
// A node has one tunnel per server: a new one replaces the old.
func (s *Server) handleAccessTunnel(w http.ResponseWriter, r *http.Request, c *caller) {
	w.Header().Set(api.HeaderMaxRecording, strconv.FormatInt(s.cfg.Access.MaxRecording, 10))
	conn, err := streamOf(w, r)
	if err != nil {
		return
	}
	sess, err := yamux.Client(conn, api.AccessMuxConfig(), nil)
	if err != nil {
		return
	}
	t := &nodeTunnel{node: c.Name, sess: sess, since: s.now(), id: newSessionID(), leaf: c.Leaf}
	s.access.mu.Lock()
	old := s.access.tunnels[c.Name]
	s.access.tunnels[c.Name] = t
	s.access.mu.Unlock()
	if old != nil {
		_ = old.sess.Close()
	}
	s.log.Info("access tunnel open", "node", c.Name)
	ctx := r.Context()
	s.publishTunnel(ctx, t)
	// Like the watch stream, the tunnel lasts no longer than the node's
	// certificate is trusted: a revocation (looked at as each reaches this
	// server) or its end closes it.
	sb := s.hub.subscribe()
	defer s.hub.unsubscribe(sb)
	changes := sb.ch
	tick := time.NewTicker(s.cfg.Heartbeat)
	defer tick.Stop()
wait:
	for {
		select {
		case <-sess.CloseChan():
			break wait
		case <-ctx.Done():
			break wait
		case f, ok := <-changes:
			if !ok {
				changes = nil // dropped as a slow reader: the ticker still looks
				continue
			}
			if f.u.Revocations == nil {
				continue
			}
			if why := s.untrusted(t); why != "" {
				s.log.Warn("access tunnel of an untrusted node closed", "node", c.Name, "why", why)
				break wait
			}
		case <-tick.C:
			if why := s.untrusted(t); why != "" {
				s.log.Warn("access tunnel of an untrusted node closed", "node", c.Name, "why", why)
				break wait
			}
		}
	}
	_ = sess.Close()
	s.access.mu.Lock()
	if s.access.tunnels[c.Name] == t {
		delete(s.access.tunnels, c.Name)
	}
	s.access.mu.Unlock()
	s.unpublishTunnel(context.WithoutCancel(ctx), t)
	s.log.Info("access tunnel closed", "node", c.Name)
}

// tunnel returns node's open tunnel to this server.
func (a *accessState) tunnel(node string) *nodeTunnel {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.tunnels[node]
	if t != nil && t.sess.IsClosed() {
		return nil
	}
	return t
}

// cut ends every relay of grant this server carries.
func (a *accessState) cut(grant string) {
	a.mu.Lock()
	rs := a.relays[grant]
	delete(a.relays, grant)
	a.mu.Unlock()
	for r := range rs {
		r.cancel()
	}
}

func (a *accessState) add(r *relay) {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := a.relays[r.grant]
	if m == nil {
		m = map[*relay]struct{}{}
		a.relays[r.grant] = m
	}
	m[r] = struct{}{}
}

func (a *accessState) remove(r *relay) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.relays[r.grant], r)
	if len(a.relays[r.grant]) == 0 {
		delete(a.relays, r.grant)
	}
}

func newSessionID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// relayedSession marks a session relayed to a node and not yet reported
// by it: a node's report makes a session only of one so marked, so that a
// compromised node cannot invent sessions (each an audit entry and a
// stored record) beyond the connections administrators made.
type relayedSession struct {
	Node    string    `json:"node"`
	Expires time.Time `json:"expires,omitzero"` // the grant's end
}

func relayedKey(grant, session string) string { return prefixRelayed + grant + "/" + session }

// handleAccessConnect relays the caller to the node of an active grant of
// theirs. Only the grant's requester may use it, in the grant's mode; the
// refusals are audited (detection watches for access outside a grant).
func (s *Server) handleAccessConnect(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	id := r.Header.Get(api.HeaderGrant)
	alpn := r.Header.Get(api.HeaderALPN)
	g, _, err := s.loadGrant(ctx, id)
	if err != nil {
		return nil, trimForError(id), err
	}
	c.note("grant", g.ID)
	c.note("node", g.Node)
	want := api.ALPNOf(g.Mode)
	now := s.now()
	switch {
	case !holdsGrant(c, g):
		return nil, g.Node, notRequester(c, g)
	case alpn != want:
		c.note("outside_grant", "mode")
		return nil, g.Node, errorf(http.StatusForbidden, "grant %s is for %s, not %q", g.ID, g.Mode, trimForError(alpn))
	case !g.Active(now):
		c.note("outside_grant", g.State(now))
		return nil, g.Node, errorf(http.StatusForbidden, "grant %s is %s", g.ID, g.State(now))
	}
	session := newSessionID()
	hello := api.RelayHello{Session: session, Grant: g.ID, Admin: c.ID, Remote: r.RemoteAddr, ALPN: alpn}
	// The session is on record as relayed before the node hears of it:
	// the node's report of its start is taken for it alone.
	relayed := func() error {
		return putJSON(ctx, s.st, relayedKey(g.ID, session), relayedSession{Node: g.Node, Expires: g.Expires})
	}
	if t := s.openTunnel(g.Node); t != nil {
		if err := relayed(); err != nil {
			return nil, g.Node, err
		}
		c.note("session", session)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.relay(w, r, t, g, hello)
		}), g.Node, nil
	}
	// The node's agent follows another server of the cluster: carry the
	// connection there.
	holder, err := s.tunnelHolder(ctx, g.Node)
	if err != nil {
		return nil, g.Node, err
	}
	if err := relayed(); err != nil {
		return nil, g.Node, err
	}
	c.note("session", session)
	c.note("via", holder.Server)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.relayVia(w, r, holder, g, hello)
	}), g.Node, nil
}

// relay joins the caller's stream to a new stream of the node's tunnel
// until either ends, the grant expires, or it is cut.
func (s *Server) relay(w http.ResponseWriter, r *http.Request, t *nodeTunnel, g api.Grant, hello api.RelayHello) {
	up, err := t.sess.OpenStream(r.Context())
	if err != nil {
		writeError(w, errorf(http.StatusServiceUnavailable, "node %q: tunnel closed", g.Node))
		return
	}
	defer up.Close()
	line, err := hello.Encode()
	if err != nil {
		writeError(w, err)
		return
	}
	if _, err := up.Write(append(line, '\n')); err != nil {
		writeError(w, errorf(http.StatusServiceUnavailable, "node %q: tunnel closed", g.Node))
		return
	}
	s.pipe(w, r, up, g)
}

// pipe answers the caller with a full-duplex stream and copies it to and
// from up until either ends, the grant expires, or it is cut (revocation,
// on this server or seen in the store).
func (s *Server) pipe(w http.ResponseWriter, r *http.Request, up net.Conn, g api.Grant) {
	down, err := streamOf(w, r)
	if err != nil {
		return
	}
	defer down.Close()
	ctx, cancel := context.WithDeadline(r.Context(), g.Expires)
	defer cancel()
	rl := &relay{grant: g.ID, cancel: cancel}
	s.access.add(rl)
	defer s.access.remove(rl)
	// A revocation between the grant's check and this registration would
	// miss the relay: look again now that it is registered.
	if cur, _, err := s.loadGrant(ctx, g.ID); err != nil || !cur.Active(s.now()) {
		return
	}
	// The copy towards the caller writes to w, so it must end before this
	// handler returns; the other one only reads the request body (closed
	// below) and writes to the upstream.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		_, _ = io.Copy(up, down)
		_ = up.Close()
	}()
	go func() {
		defer wg.Done()
		_, _ = io.Copy(down, up)
		cancel()
	}()
	<-ctx.Done()
	_ = up.Close()
	wg.Wait()
	_ = down.Close()
}
