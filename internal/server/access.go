package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"

	"moat/internal/api"
	"moat/internal/identity"
	"moat/internal/store"
)

// Break-glass access.
//
// An administrator asks for a grant (access.request): one node, one mode (a
// shell, or one service's port forwarded), a reason and a duration. Unless
// the target needs no approval, other administrators approve it
// (access.approve; a requester never approves their own); the grant then
// runs for its duration from the last approval. Agents learn their node's
// grants from the watch stream. The requester fetches the grant's
// credentials (access.cert: an X.509 certificate marked with the grant,
// and an SSH certificate for a shell) and connects (access.connect): the
// control plane relays the connection over the tunnel the node's agent
// keeps open to it, so the node listens on no new port; the administrator's
// client and the agent speak mutual TLS end to end inside the relay.
// access.revoke ends the grant and its live sessions at once. Agents report
// each session's start and end (the end with the SHA-256 of its
// recording), which the audit log records, and send the recordings.

// Store keys of break-glass access.
const (
	prefixGrant   = "access/grant/"
	prefixSession = "access/session/"
	// prefixRelayed holds the sessions relayed to a node and not yet
	// reported by it, access/relayed/<grant>/<session>: a node reports
	// only those (see relayedKey).
	prefixRelayed = "access/relayed/"
	keySSHCA      = "access/sshca"
)

// accessState is what a server holds of access in memory: the agents'
// tunnels to it and the relays it carries.
type accessState struct {
	s *Server

	mu      sync.Mutex // guards the fields below
	tunnels map[string]*nodeTunnel
	relays  map[string]map[*relay]struct{} // by grant ID
	uploads map[string]bool                // nodes with a recording arriving
	slow    map[string]time.Time           // nodes whose last upload was cut off, until when they wait
}

// maxUploads is how many recordings a server takes at once, one per node.
const maxUploads = 4

// uploadCooldown is how long a node whose upload was cut off for
// arriving too slowly waits for its next: the slots are the other nodes'
// meanwhile, however soon it asks again.
const uploadCooldown = time.Minute

func newAccessState(s *Server) *accessState {
	return &accessState{s: s, tunnels: map[string]*nodeTunnel{}, relays: map[string]map[*relay]struct{}{},
		uploads: map[string]bool{}, slow: map[string]time.Time{}}
}

// startUpload reserves node's one upload slot for session, if it and a
// server slot are free and node is not waiting after an upload cut off;
// done releases it, and has node wait uploadCooldown when its upload was
// cut off.
func (a *accessState) startUpload(node, session string) (done func(cutOff bool), err error) {
	now := a.s.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if until, ok := a.slow[node]; ok && now.Before(until) {
		e := &httpError{code: http.StatusServiceUnavailable, retryAfter: until.Sub(now)}
		e.msg = fmt.Sprintf("recording of session %s: this node's last upload arrived too slowly and was cut off: try again in %ds", session, e.retrySeconds())
		return nil, e
	}
	delete(a.slow, node)
	if a.uploads[node] || len(a.uploads) >= maxUploads {
		return nil, errorf(http.StatusServiceUnavailable, "recording of session %s: too many recordings arriving (one at a time per node): try again later", session)
	}
	a.uploads[node] = true
	return func(cutOff bool) {
		a.mu.Lock()
		defer a.mu.Unlock()
		delete(a.uploads, node)
		if cutOff {
			a.slow[node] = a.s.now().Add(uploadCooldown)
		}
	}, nil
}

func (s *Server) accessRoutes(t *routeTable) {
	admin := t.admin
	admin("GET", api.PathAccess, api.RoleViewer, "access.list", s.handleAccessList)
	admin("POST", api.PathAccess, api.RoleOperator, "access.request", s.handleAccessRequest)
	admin("POST", api.PathAccessApprov, api.RoleOperator, "access.approve", s.handleAccessApprove)
	admin("POST", api.PathAccessRevoke, api.RoleOperator, "access.revoke", s.handleAccessRevoke)
	admin("POST", api.PathAccessCert, api.RoleOperator, "access.cert", s.handleAccessCert)
	admin("POST", api.PathAccessDial, api.RoleViewer, "access.connect", s.handleAccessConnect)
	admin("GET", api.PathAccessRec, api.RoleOperator, "access.recording", s.handleAccessRecording)
	t.node("POST", api.PathNodeAccessTunnel, s.handleAccessTunnel)
	t.node("POST", api.PathNodeAccessEvent, s.handleAccessEvent)
	t.node("POST", api.PathNodeAccessRec, s.handleRecordingUpload)
	t.node("POST", api.PathNodeSSHHost, s.handleSSHHostCert)
	t.peer("POST", api.PathPeerAccessDial, s.handlePeerAccessDial)
	t.peer("GET", api.PathPeerRecording, s.handlePeerRecording)
}

// newID is 128 random bits in hex, without a leading zero: a grant's ID,
// an administrator account's (identity.ValidGrantID, ValidAccountID).
func newID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[0] |= 0x10
	return hex.EncodeToString(b[:]), nil
}

// validReason checks a request's reason: printable, bounded, non-empty.
func validReason(r string) error {
	if strings.TrimSpace(r) == "" {
		return errorf(http.StatusBadRequest, "reason: say why (an incident, a ticket)")
	}
	if len(r) > api.MaxReason {
		return errorf(http.StatusBadRequest, "reason: at most %d bytes", api.MaxReason)
	}
	if !printable(r) {
		return errorf(http.StatusBadRequest, "reason: printable characters only")
	}
	return nil
}

// printable says whether s holds printable characters only: no line
// break, escape sequence or direction override, which would forge what a
// reader of the audit log or a terminal sees.
func printable(s string) bool {
	for _, c := range s {
		if !unicode.IsPrint(c) {
			return false
		}
	}
	return true
}

func (s *Server) handleAccessRequest(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	if api.RoleRank(c.Role) < api.RoleRank(s.cfg.Access.RequestRole) {
		return nil, "", errorf(http.StatusForbidden, "role %q may not request access (needs %q)", c.Role, s.cfg.Access.RequestRole)
	}
	var req api.AccessRequest
	if err := decode(r, &req); err != nil {
		return nil, "", err
	}
	g, err := s.newGrant(ctx, c, req)
	if err != nil {
		return nil, req.Node, err
	}
	if err := s.putRev(ctx, prefixGrant+g.ID, 0, g); err != nil {
		return nil, g.ID, err
	}
	c.note("node", g.Node)
	c.note("mode", g.Mode)
	if g.Service != "" {
		c.note("service", fmt.Sprintf("%s:%d", g.Service, g.Port))
	}
	c.note("reason", g.Reason)
	c.note("for", g.For.String())
	c.note("approvals_needed", fmt.Sprint(g.Needed))
	return s.listing(ctx, g)
}

// newGrant validates a request against the registry and the configuration.
func (s *Server) newGrant(ctx context.Context, c *caller, req api.AccessRequest) (api.Grant, error) {
	if err := validReason(req.Reason); err != nil {
		return api.Grant{}, err
	}
	if req.For <= 0 || req.For > s.cfg.Access.MaxFor {
		return api.Grant{}, errorf(http.StatusBadRequest, "for %s: want a positive duration of at most %s", req.For, s.cfg.Access.MaxFor)
	}
	if c.Account == "" {
		return api.Grant{}, errorf(http.StatusForbidden, "%s", legacyAccount(c.Name, "no grant can be bound to it"))
	}
	g := api.Grant{Requester: c.ID, RequesterAccount: c.Account, Mode: req.Mode, Reason: req.Reason, For: req.For, Node: req.Node}
	switch req.Mode {
	case api.ModeShell:
		if req.Service != "" || req.Port != 0 {
			return api.Grant{}, errorf(http.StatusBadRequest, "a shell grant names a node only, not a service or port")
		}
	case api.ModeForward:
		if err := identity.ValidName(req.Service); err != nil {
			return api.Grant{}, errorf(http.StatusBadRequest, "service: %v", err)
		}
		var reg api.Registration
		if err := getJSON(ctx, s.st, prefixService+req.Service, &reg); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return api.Grant{}, errorf(http.StatusNotFound, "service %q is not registered", req.Service)
			}
			return api.Grant{}, err
		}
		if req.Node != "" && req.Node != reg.Node {
			return api.Grant{}, errorf(http.StatusBadRequest, "service %q runs on node %q, not %q", req.Service, reg.Node, req.Node)
		}
		if req.Port != 0 && req.Port != reg.Port {
			return api.Grant{}, errorf(http.StatusBadRequest, "service %q serves port %d, not %d", req.Service, reg.Port, req.Port)
		}
		g.Node, g.Service, g.Port = reg.Node, reg.Name, reg.Port
	default:
		return api.Grant{}, errorf(http.StatusBadRequest, "mode %q: want %q or %q", req.Mode, api.ModeShell, api.ModeForward)
	}
	if err := identity.ValidName(g.Node); err != nil {
		return api.Grant{}, errorf(http.StatusBadRequest, "node: %v", err)
	}
	if err := getJSON(ctx, s.st, prefixNode+g.Node, &api.Node{}); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return api.Grant{}, errorf(http.StatusNotFound, "node %q has not joined", g.Node)
		}
		return api.Grant{}, err
	}
	id, err := newID()
	if err != nil {
		return api.Grant{}, err
	}
	now := s.now().UTC()
	g.ID, g.Requested, g.PendingUntil = id, now, now.Add(s.cfg.Access.PendingFor)
	g.Needed = s.cfg.Access.approvalsFor(g.Node, g.Service)
	if g.Needed == 0 {
		g.Starts, g.Expires = now, now.Add(g.For)
	}
	return g, nil
}

// loadGrant reads a grant by ID.
func (s *Server) loadGrant(ctx context.Context, id string) (api.Grant, int64, error) {
	if err := identity.ValidGrantID(id); err != nil {
		return api.Grant{}, 0, errorf(http.StatusBadRequest, "%v", err)
	}
	var g api.Grant
	rev, err := getJSONRev(ctx, s.st, prefixGrant+id, &g)
	if errors.Is(err, store.ErrNotFound) {
		return api.Grant{}, 0, errorf(http.StatusNotFound, "no grant %q", id)
	}
	return g, rev, err
}

// isRequester says whether c may be g's requester, to refuse it what the
// requester may not do: the requester's account, or any account of the
// requester's name (a later account of a name may be the same person).
func isRequester(c *caller, g api.Grant) bool {
	return g.Requester == c.ID || g.RequesterAccount != "" && g.RequesterAccount == c.Account
}

// holdsGrant says whether c is g's requester, to give it what only the
// requester may have: the account that asked, matched by its ID, never
// by name. A grant recorded before accounts carried an ID is no one's.
func holdsGrant(c *caller, g api.Grant) bool {
	return g.RequesterAccount != "" && g.RequesterAccount == c.Account && g.Requester == c.ID
}

// legacyAccount says that the account name was made before accounts
// carried an ID, so that what follows (why) cannot be.
func legacyAccount(name, why string) string {
	return fmt.Sprintf("admin %q's account was made before accounts carried an ID, so %s: renew its certificate (\"moat admin renew\"), which gives the account one, and try again", name, why)
}

// notRequester is the refusal of a grant's use by c, who is not its
// requester's account; it notes why in the call's audit entry.
func notRequester(c *caller, g api.Grant) error {
	switch {
	case g.Requester != c.ID:
		c.note("outside_grant", "not the requester")
		return errorf(http.StatusForbidden, "grant %s belongs to %s", g.ID, g.Requester)
	case g.RequesterAccount == "":
		c.note("outside_grant", "grant of no account")
		return errorf(http.StatusForbidden, "grant %s was recorded before accounts carried an ID, so it is no account's, %s's included: ask for a new grant", g.ID, c.ID)
	}
	c.note("outside_grant", "an earlier account of the requester's name")
	return errorf(http.StatusForbidden, "grant %s belongs to an earlier account named %s, removed since: yours is another; ask for a grant of your own", g.ID, c.ID)
}

// handleAccessApprove adds the caller's approval. The requester's own
// approval is refused, and said so in the audit entry (detection raises
// it): the two-person rule is the point.
func (s *Server) handleAccessApprove(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	var req api.GrantRef
	if err := decode(r, &req); err != nil {
		return nil, "", err
	}
	if api.RoleRank(c.Role) < api.RoleRank(s.cfg.Access.ApproveRole) {
		return nil, req.ID, errorf(http.StatusForbidden, "role %q may not approve access (needs %q)", c.Role, s.cfg.Access.ApproveRole)
	}
	g, rev, err := s.loadGrant(ctx, req.ID)
	if err != nil {
		return nil, req.ID, err
	}
	c.note("requester", g.Requester)
	c.note("node", g.Node)
	now := s.now().UTC()
	switch {
	case isRequester(c, g):
		c.note("self_approval", "true")
		return nil, g.ID, errorf(http.StatusForbidden, "a requester cannot approve their own grant: another admin must")
	case g.State(now) != api.GrantPending:
		return nil, g.ID, errorf(http.StatusConflict, "grant %s is %s, not pending", g.ID, g.State(now))
	}
	// An account the requester made may be the requester's second hand.
	if made, err := s.madeBy(ctx, c.Name, g.Requester, g.RequesterAccount); err != nil {
		return nil, g.ID, err
	} else if made {
		c.note("approver_made_by_requester", "true")
		if s.cfg.Access.IndependentApprovers {
			return nil, g.ID, errorf(http.StatusForbidden, "%s was created by the requester (%s), and approvers must be independent of the requester: another admin must approve", c.ID, g.Requester)
		}
	}
	// One approval per name: a later account of an approver's name
	// may be the same person.
	for _, a := range g.Approvals {
		if a.By == c.ID || a.Account != "" && a.Account == c.Account {
			return nil, g.ID, errorf(http.StatusConflict, "you already approved grant %s", g.ID)
		}
	}
	g.Approvals = append(g.Approvals, api.Approval{By: c.ID, Account: c.Account, At: now})
	if len(g.Approvals) >= g.Needed {
		g.Starts, g.Expires = now, now.Add(g.For)
		c.note("expires", g.Expires.Format(time.RFC3339))
	}
	if err := s.putRev(ctx, prefixGrant+g.ID, rev, g); err != nil {
		return nil, g.ID, err
	}
	return s.listing(ctx, g)
}

// handleAccessRevoke ends a grant: agents cut its sessions as soon as the
// watch stream tells them, and this server cuts the relays it carries at
// once. The answer waits (a few seconds at most) for the agents to report
// the sessions ended, so the audit log holds their ends before the
// revocation's outcome.
func (s *Server) handleAccessRevoke(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	var req api.GrantRef
	if err := decode(r, &req); err != nil {
		return nil, "", err
	}
	g, rev, err := s.loadGrant(ctx, req.ID)
	if err != nil {
		return nil, req.ID, err
	}
	if !g.Revoked.IsZero() {
		return nil, g.ID, errorf(http.StatusConflict, "grant %s was already revoked by %s", g.ID, g.RevokedBy)
	}
	live, err := s.liveSessions(ctx, g.ID)
	if err != nil {
		return nil, g.ID, err
	}
	g.Revoked, g.RevokedBy = s.now().UTC(), c.ID
	if err := s.putRev(ctx, prefixGrant+g.ID, rev, g); err != nil {
		return nil, g.ID, err
	}
	s.access.cut(g.ID)
	deadline := time.NewTimer(3 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	left := live
	for left > 0 {
		select {
		case <-ctx.Done():
			return nil, g.ID, ctx.Err()
		case <-deadline.C:
			left = -left
		case <-tick.C:
			if left, err = s.liveSessions(ctx, g.ID); err != nil {
				return nil, g.ID, err
			}
		}
	}
	if left < 0 {
		left = -left
	}
	c.note("requester", g.Requester)
	c.note("sessions_ended", fmt.Sprint(live-left))
	if left > 0 {
		c.note("sessions_unconfirmed", fmt.Sprint(left))
	}
	l, _, err := s.listing(ctx, g)
	if err != nil {
		return nil, g.ID, err
	}
	return api.RevokeAnswer{Grant: l.(api.GrantListing), Ended: live - left, Live: left}, g.ID, nil
}

// liveSessions counts the sessions of grant whose end is not yet reported.
func (s *Server) liveSessions(ctx context.Context, grant string) (int, error) {
	sess, err := s.sessionsOf(ctx, grant)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, x := range sess {
		if x.Ended.IsZero() {
			n++
		}
	}
	return n, nil
}

func (s *Server) sessionsOf(ctx context.Context, grant string) ([]api.AccessSession, error) {
	kvs, _, err := s.st.List(ctx, prefixSession+grant+"/")
	if err != nil {
		return nil, err
	}
	out := make([]api.AccessSession, 0, len(kvs))
	for _, kv := range kvs {
		var x api.AccessSession
		if err := json.Unmarshal(kv.Value, &x); err != nil {
			return nil, fmt.Errorf("server: stored %q: %w", kv.Key, err)
		}
		out = append(out, x)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out, nil
}

func (s *Server) listing(ctx context.Context, g api.Grant) (any, string, error) {
	sess, err := s.sessionsOf(ctx, g.ID)
	if err != nil {
		return nil, g.ID, err
	}
	return api.GrantListing{Grant: g, State: g.State(s.now()), Sessions: sess}, g.ID, nil
}

// handleAccessList lists grants, newest first: with ?id=ID one grant, with
// ?all=1 every grant kept, else those pending or active.
func (s *Server) handleAccessList(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	if id := r.URL.Query().Get("id"); id != "" {
		g, _, err := s.loadGrant(ctx, id)
		if err != nil {
			return nil, id, err
		}
		l, _, err := s.listing(ctx, g)
		return []api.GrantListing{l.(api.GrantListing)}, id, err
	}
	all := r.URL.Query().Get("all") != ""
	grants, err := s.grants(ctx)
	if err != nil {
		return nil, "", err
	}
	now := s.now()
	out := []api.GrantListing{}
	for _, g := range grants {
		st := g.State(now)
		if !all && st != api.GrantPending && st != api.GrantActive {
			continue
		}
		l, _, err := s.listing(ctx, g)
		if err != nil {
			return nil, "", err
		}
		out = append(out, l.(api.GrantListing))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Requested.After(out[j].Requested) })
	return out, "", nil
}

func (s *Server) grants(ctx context.Context) ([]api.Grant, error) {
	kvs, _, err := s.st.List(ctx, prefixGrant)
	if err != nil {
		return nil, err
	}
	out := make([]api.Grant, 0, len(kvs))
	for _, kv := range kvs {
		var g api.Grant
		if err := json.Unmarshal(kv.Value, &g); err != nil {
			return nil, fmt.Errorf("server: stored %q: %w", kv.Key, err)
		}
		out = append(out, g)
	}
	return out, nil
}
