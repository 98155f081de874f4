package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"moat/internal/api"
	"moat/internal/seal"
	"moat/internal/store"
)

// Break-glass access in a cluster.
//
// An agent keeps its access tunnel to one server, the one it follows; an
// administrator may reach any. The server holding a node's tunnel records
// so in the shared store (prefixTunnel+node: its name and advertised
// address), and a server asked to relay to a node whose tunnel it does not
// hold carries the connection to that server over mutual TLS with its own
// server SVID (PathPeerAccessDial, which only a server of the cluster may
// call), which relays it on the tunnel as it would its own administrator's.
// The agent still admits the administrator only by the grant certificate
// inside the relayed TLS, so a relaying server adds no trust. Every server
// watches the store's grants and cuts the relays it carries the moment a
// grant is revoked, whichever server took the revocation.
//
// Recordings stay on the server their agent sent them to (StoredOn); the
// others fetch them from it (PathPeerRecording), checked against the
// digest in the audit log on arrival as on disk.

const prefixTunnel = "access/tunnel/"

// tunnelRecord says which server holds a node's access tunnel.
type tunnelRecord struct {
	Node   string    `json:"node"`
	Server string    `json:"server"`
	Addr   string    `json:"addr"`
	Tunnel string    `json:"tunnel"` // the tunnel's ID, so only its holder removes the record
	Since  time.Time `json:"since"`
}

// publishTunnel records that this server holds t, retrying while the
// store cannot be written, until it succeeds or the tunnel closes. A
// server without an advertised address cannot be reached by the others,
// and records nothing.
func (s *Server) publishTunnel(ctx context.Context, t *nodeTunnel) {
	addr := s.advertised()
	if addr == "" {
		return
	}
	rec := tunnelRecord{Node: t.node, Server: s.cfg.Name, Addr: addr, Tunnel: t.id, Since: t.since.UTC()}
	go func() {
		for {
			err := putJSON(ctx, s.st, prefixTunnel+t.node, rec)
			if err == nil || ctx.Err() != nil {
				return
			}
			s.log.Warn("access: recording the node's tunnel in the store failed; other servers cannot relay to it until it is", "node", t.node, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-t.sess.CloseChan():
				return
			case <-time.After(2 * time.Second):
			}
		}
	}()
}

// unpublishTunnel removes t's record unless a newer tunnel replaced it.
func (s *Server) unpublishTunnel(ctx context.Context, t *nodeTunnel) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	key := prefixTunnel + t.node
	var rec tunnelRecord
	rev, err := getJSONRev(ctx, s.st, key, &rec)
	if err != nil || rec.Tunnel != t.id {
		return
	}
	if _, err := s.st.Txn(ctx, []store.Cond{{Key: key, ModRevision: rev}}, []store.Op{store.Delete(key)}); err != nil && !errors.Is(err, store.ErrConflict) {
		s.log.Warn("access: removing the node's tunnel record failed", "node", t.node, "err", err)
	}
}

// tunnelHolder returns the other server holding node's tunnel.
func (s *Server) tunnelHolder(ctx context.Context, node string) (tunnelRecord, error) {
	var rec tunnelRecord
	err := getJSON(ctx, s.st, prefixTunnel+node, &rec)
	if errors.Is(err, store.ErrNotFound) || (err == nil && rec.Server == s.cfg.Name) {
		return rec, errorf(http.StatusServiceUnavailable, "node %q has no access tunnel open to the control plane (is its agent running?)", node)
	}
	if err != nil {
		return rec, err
	}
	var m memberRecord
	if err := getJSON(ctx, s.st, prefixMember+rec.Server, &m); err == nil && s.now().Sub(m.Seen) >= memberAlive {
		return rec, errorf(http.StatusServiceUnavailable, "node %q: its access tunnel was open to server %q, which is gone; the agent opens one to another server", node, rec.Server)
	}
	return rec, nil
}

// relayVia carries the caller's connection to the server holding the
// node's tunnel.
func (s *Server) relayVia(w http.ResponseWriter, r *http.Request, holder tunnelRecord, g api.Grant, hello api.RelayHello) {
	line, err := hello.Encode()
	if err != nil {
		writeError(w, err)
		return
	}
	pc := s.peerClient(holder.Addr)
	defer pc.Close()
	up, err := pc.Stream(r.Context(), api.PathPeerAccessDial, http.Header{api.HeaderRelayHello: {string(line)}})
	if err != nil {
		s.log.Warn("access: the server holding the node's tunnel did not take the connection", "node", g.Node, "server", holder.Server, "err", err)
		var se *api.StatusError
		if errors.As(err, &se) {
			writeError(w, errorf(se.Code, "node %q (tunnel on server %q): %s", g.Node, holder.Server, se.Msg))
			return
		}
		writeError(w, errorf(http.StatusServiceUnavailable, "node %q: its access tunnel is open to server %q, which does not answer", g.Node, holder.Server))
		return
	}
	defer up.Close()
	s.pipe(w, r, up, g)
}

// handlePeerAccessDial relays, for another server of the cluster, an
// administrator's connection on the node's tunnel this server holds. The
// grant is checked here again, from the store.
func (s *Server) handlePeerAccessDial(w http.ResponseWriter, r *http.Request, c *caller) {
	hello, err := api.ParseRelayHello([]byte(r.Header.Get(api.HeaderRelayHello)))
	if err != nil {
		writeError(w, errorf(http.StatusBadRequest, "%v", err))
		return
	}
	g, _, err := s.loadGrant(r.Context(), hello.Grant)
	if err != nil {
		writeError(w, err)
		return
	}
	want := api.ALPNOf(g.Mode)
	now := s.now()
	switch {
	case g.Requester != hello.Admin:
		writeError(w, errorf(http.StatusForbidden, "grant %s belongs to %s", g.ID, g.Requester))
		return
	case g.RequesterAccount == "":
		// The hello names no account (members of another version would
		// not send one); the first server matched it, and a grant of no
		// account matches none.
		writeError(w, errorf(http.StatusForbidden, "grant %s was recorded before accounts carried an ID, so it is no account's", g.ID))
		return
	case hello.ALPN != want:
		writeError(w, errorf(http.StatusForbidden, "grant %s is for %s", g.ID, g.Mode))
		return
	case !g.Active(now):
		writeError(w, errorf(http.StatusForbidden, "grant %s is %s", g.ID, g.State(now)))
		return
	}
	t := s.openTunnel(g.Node)
	if t == nil {
		writeError(w, errorf(http.StatusServiceUnavailable, "node %q has no access tunnel open to server %q", g.Node, s.cfg.Name))
		return
	}
	s.log.Info("access: relaying for another server", "server", c.Name, "node", g.Node, "grant", g.ID, "session", hello.Session)
	s.relay(w, r, t, g, hello)
}

// handlePeerRecording answers a recording this server keeps to another
// server of the cluster, after checking it against the session's digest.
func (s *Server) handlePeerRecording(w http.ResponseWriter, r *http.Request, c *caller) {
	x, _, err := s.findSession(r.Context(), r.URL.Query().Get("session"))
	if err != nil {
		writeError(w, err)
		return
	}
	if !x.Stored || x.StoredOn != s.cfg.Name {
		writeError(w, errorf(http.StatusNotFound, "server %q keeps no recording of session %s", s.cfg.Name, x.ID))
		return
	}
	b, err := s.localRecording(x)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-asciicast")
	_, _ = w.Write(b)
}

// localRecording reads x's recording from this server's recordings
// directory and checks it against the digest reported at the session's end.
func (s *Server) localRecording(x api.AccessSession) ([]byte, error) {
	path, err := s.recordingPath(x.ID)
	if err != nil {
		return nil, err
	}
	b, err := seal.ReadSealedFile(path, s.cfg.Sealer, "recording/"+x.ID)
	if err != nil {
		s.log.Error("access: recording unreadable", "session", x.ID, "err", err)
		return nil, errorf(http.StatusConflict, "session %s: the stored recording is missing or does not open", x.ID)
	}
	if err := checkRecording(x, b); err != nil {
		return nil, err
	}
	return b, nil
}

func checkRecording(x api.AccessSession, b []byte) error {
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != x.Recording {
		return errorf(http.StatusConflict, "session %s: the stored recording does not match the digest in the audit log", x.ID)
	}
	return nil
}

// peerRecording fetches x's recording from the server that keeps it.
func (s *Server) peerRecording(ctx context.Context, x api.AccessSession) ([]byte, error) {
	var m memberRecord
	if err := getJSON(ctx, s.st, prefixMember+x.StoredOn, &m); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, errorf(http.StatusServiceUnavailable, "session %s: its recording is kept by server %q, which is not a member of the cluster now", x.ID, x.StoredOn)
		}
		return nil, err
	}
	pc := s.peerClient(m.Addr)
	defer pc.Close()
	buf := &boundedBuffer{max: s.cfg.Access.MaxRecording}
	if _, err := pc.Download(ctx, http.MethodGet, api.PathPeerRecording+"?session="+url.QueryEscape(x.ID), nil, buf); err != nil {
		s.log.Warn("access: fetching a recording from the server that keeps it failed", "session", x.ID, "server", x.StoredOn, "err", err)
		return nil, errorf(http.StatusServiceUnavailable, "session %s: its recording is kept by server %q, which did not answer it", x.ID, x.StoredOn)
	}
	if err := checkRecording(x, buf.b); err != nil {
		return nil, err
	}
	return buf.b, nil
}

// boundedBuffer is a bytes buffer that refuses to grow past max.
type boundedBuffer struct {
	b   []byte
	max int64
}

func (w *boundedBuffer) Write(p []byte) (int, error) {
	if int64(len(w.b)+len(p)) > w.max {
		return 0, fmt.Errorf("server: answer over %d bytes", w.max)
	}
	w.b = append(w.b, p...)
	return len(p), nil
}
