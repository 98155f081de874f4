package server

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/identity"
	"moat/internal/store"
)

// caller is who made a request.
type caller struct {
	ID   string // SPIFFE ID, or "" when anonymous
	Kind string // identity.KindNode, KindAdmin, or ""
	Name string
	Role string // for admins
	// Account is an admin's account ID (adminRecord.Account), "" for an
	// account made before accounts carried an ID; Adopted says the
	// account was given one since.
	Account string
	Adopted bool
	Leaf    *x509.Certificate
	// MFA is the second factor behind an admin's MFA session certificate,
	// "" for any other certificate; Grant is the access grant of an
	// access-grant certificate.
	MFA, Grant string
	// account is the account mark of the certificate (see
	// identity.AdminMarks), "" when it has none.
	account string
	// join is a node's latest join (nodeRecord.JoinID), which its
	// certificate carries.
	join string
	// mfaChecked and mfaLive cache sessionLive's answer for the call, and
	// mfaIssued when the live session was issued (zero if not recorded).
	mfaChecked, mfaLive bool
	mfaIssued           time.Time
	// detail is what an admin handler adds to its audit entry.
	detail map[string]string
}

// note adds a key to the call's audit entry.
func (c *caller) note(k, v string) {
	if c.detail == nil {
		c.detail = map[string]string{}
	}
	c.detail[k] = v
}

// noteAccount records in e the account of the administrator who made the
// call (audit.DetailAccount), which tells apart two accounts of one name;
// an account made before accounts carried an ID has none to record.
func (c *caller) noteAccount(e *audit.Entry) {
	if c.Account == "" {
		return
	}
	if e.Detail == nil {
		e.Detail = map[string]string{}
	}
	e.Detail[audit.DetailAccount] = c.Account
}

// httpError is an error with the status it answers with. Its message is
// shown to the caller, so it never carries internals.
type httpError struct {
	code   int
	msg    string
	reason string // api.Error.Reason, for answers a client branches on
	// retryAfter, when set, is sent as Retry-After (in whole seconds).
	retryAfter time.Duration
}

func (e *httpError) Error() string { return e.msg }

// retrySeconds is retryAfter in whole seconds, at least one.
func (e *httpError) retrySeconds() int {
	return max(1, int((e.retryAfter+time.Second-1)/time.Second))
}

func errorf(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

// identify returns the verified caller of r (and, when it refuses an
// admin certificate of an earlier account of the name, the caller it
// claims, with the error). The TLS handshake already
// verified any presented chain; it is checked again here so that a
// revocation cuts callers on connections opened before it.
func (s *Server) identify(ctx context.Context, r *http.Request) (*caller, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return &caller{}, nil
	}
	id, err := s.trust.Verify(r.TLS.PeerCertificates)
	if err != nil {
		return nil, errorf(http.StatusUnauthorized, "client certificate refused: %v", err)
	}
	kind, name, ok := identity.Parse(id)
	if !ok {
		return nil, errorf(http.StatusUnauthorized, "client certificate %q is not a moat identity", id)
	}
	c := &caller{ID: id.String(), Kind: kind, Name: name, Leaf: r.TLS.PeerCertificates[0]}
	if kind == identity.KindNode {
		if err := s.sameJoin(ctx, c); err != nil {
			return c, err // named as the refusal's source
		}
	}
	if kind == identity.KindAdmin {
		if err := callerMarks(c); err != nil {
			return nil, err
		}
		var rec adminRecord
		if err := getJSON(ctx, s.st, prefixAdmin+name, &rec); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return c, nil // an admin with no role: denied by every check
			}
			return nil, uncheckedCert("administrator", name, "its account and role", err)
		}
		if err := sameAccount(c, rec); err != nil {
			return c, err // named as the refusal's source
		}
		c.Role, c.Account, c.Adopted = rec.Role, rec.Account, rec.Adopted
	}
	return c, nil
}

// uncheckedCert refuses a certificate whose holder's record (what) could
// not be read: when the store is unavailable, with 503 naming the cause.
// Such records are read with quorum only, so the refusal says the store
// could not confirm the record, never that a copy of it was taken.
func uncheckedCert(kind, name, what string, err error) error {
	if !errors.Is(err, store.ErrUnavailable) {
		return err
	}
	return errorf(http.StatusServiceUnavailable, "client certificate of %s %q not checked: %s cannot be read with quorum%s; refused until the store answers",
		kind, name, what, storeCause(err))
}

// sameAccount refuses an admin certificate issued to another account of
// the caller's name than rec, the current one: an account removed and
// made again has the same name and a new ID. A certificate without an
// account mark was issued before accounts carried one, and is taken only
// for an account of that time (rec.Account "", or adopted since).
func sameAccount(c *caller, rec adminRecord) error {
	switch {
	case c.account == rec.Account:
		return nil
	case c.account == "" && (rec.Account == "" || rec.Adopted):
		return nil
	}
	return &httpError{code: http.StatusUnauthorized, reason: api.ReasonEarlierAccount,
		msg: fmt.Sprintf("client certificate refused: it was issued to an earlier account named %q, removed since; the account of that name now is another", c.Name)}
}

// sameJoin refuses a node certificate of another join of the caller's
// node than its latest (nodeRecord.JoinID), and records the join in c. A
// node joined again with a token is the operator's word that what joined
// is the node: whoever kept a copy of an earlier join's certificate and
// key must not keep the node's identity by renewing it. A certificate
// without a join mark is taken only for a node whose latest join had no
// ID (one that joined before joins had one).
func (s *Server) sameJoin(ctx context.Context, c *caller) error {
	mark, err := identity.ReadJoin(c.Leaf)
	if err != nil {
		return errorf(http.StatusUnauthorized, "client certificate refused: %v", err)
	}
	// A quorum read, never one member's copy: a member cut off from its
	// cluster, or behind it, may not hold the latest join, and would take
	// the earlier one's certificate. Without quorum the node's calls are
	// refused; its agent keeps serving with what it holds (SECURITY.md).
	var node nodeRecord
	if err := getJSON(ctx, s.st, prefixNode+c.Name, &node); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errorf(http.StatusUnauthorized, "client certificate refused: node %q is not registered: join it with a token", c.Name)
		}
		return uncheckedCert("node", c.Name, "its latest join", err)
	}
	if mark != node.JoinID {
		return errorf(http.StatusUnauthorized, "client certificate refused: it is of an earlier join of node %q, which joined again at %s",
			c.Name, node.Joined.UTC().Format(time.RFC3339))
	}
	c.join = node.JoinID
	return nil
}

// nodeAction names a node call for metrics and refusals.
func nodeAction(path string) string {
	switch path {
	case api.PathNodeRenew:
		return "node.renew"
	case api.PathSVID:
		return "svid.sign"
	case api.PathWatch:
		return "watch"
	case api.PathFlows:
		return "flows.ingest"
	case api.PathNodeAudit:
		return "audit.witness"
	case api.PathNodeHealth:
		return "node.health"
	case api.PathNodeCarried:
		return ActionCarried
	}
	return "node"
}

// node wraps a handler that only agents (node SVIDs) may call.
func (s *Server) node(h func(http.ResponseWriter, *http.Request, *caller)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := s.identify(r.Context(), r)
		if err == nil && c.Kind != identity.KindNode {
			err = errorf(http.StatusUnauthorized, "this call needs a node certificate")
		}
		if err != nil {
			s.refuse(r, c, nodeAction(r.URL.Path), err)
			writeError(w, err)
			return
		}
		h(w, r, c)
	}
}

// admin wraps an admin call: authenticate, authorize by role, run, and
// record it in the audit log.
//
// A refused call (no admin certificate, a role too weak) is counted, not
// audited one by one (see refusals.go). A call that may change state (role
// operator or above, or one on the caller's own credentials,
// ownCredentialActions) is recorded twice: an intent entry, with a request ID
// and the digest of the request body, before the handler runs, and the
// outcome after; when the intent cannot be recorded the call is refused
// before anything changes. A read is recorded once, before it is answered.
// No answer leaves before its entry is durable.
func (s *Server) admin(role, action string, h func(context.Context, *caller, *http.Request) (any, string, error)) http.HandlerFunc {
	mutating := api.RoleRank(role) >= api.RoleRank(api.RoleOperator) || ownCredentialActions[action]
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		// Who calls, in which role, with which factor, is read with
		// quorum: a member's copy may not hold a removal, a lowered role, a
		// revoked session. Only a read's answer may then come from one
		// member's copy when the store has no quorum, and it says so.
		c, err := s.identify(ctx, r)
		switch {
		case err != nil:
		case c.Kind != identity.KindAdmin:
			err = errorf(http.StatusUnauthorized, "this call needs an admin certificate")
		case api.RoleRank(c.Role) < api.RoleRank(role):
			err = errorf(http.StatusForbidden, "role %q may not %s (needs %q)", c.Role, action, role)
		default:
			err = s.checkFactor(ctx, c, action)
		}
		if err != nil {
			s.refuse(r, c, action, err)
			writeError(w, err)
			return
		}
		var stale *store.Stale
		if r.Method == http.MethodGet {
			ctx, stale = store.AllowStale(ctx)
		}
		req := ""
		if mutating {
			digest, err := bufferBody(r)
			if err != nil {
				s.refuse(r, c, action, err)
				writeError(w, err)
				return
			}
			req = requestID()
			intent := audit.Entry{Time: s.now().UTC(), Actor: c.ID, Role: c.Role, Action: action, Result: resultPending,
				Detail: map[string]string{"request": req, "request_sha256": digest}}
			c.noteAccount(&intent)
			if aerr := s.record(ctx, intent); aerr != nil {
				s.log.Error("audit: intent not recorded; call refused", "action", action, "err", aerr)
				s.m.calls.WithLabelValues(action, "unaudited").Inc()
				writeError(w, errorf(http.StatusServiceUnavailable, "the audit log cannot be written%s; nothing was changed", storeCause(aerr)))
				return
			}
		}
		out, target, err := h(ctx, c, r)
		entry := audit.Entry{Time: s.now().UTC(), Actor: c.ID, Role: c.Role, Action: action, Target: target, Detail: c.detail, Result: "ok"}
		if err != nil {
			entry.Result = resultOf(err)
		}
		if req != "" {
			if entry.Detail == nil {
				entry.Detail = map[string]string{}
			}
			entry.Detail["request"] = req
		}
		c.noteAccount(&entry)
		s.m.calls.WithLabelValues(action, resultClass(entry.Result)).Inc()
		if aerr := s.record(ctx, entry); aerr != nil {
			s.log.Error("audit: outcome not recorded", "action", action, "request", req, "err", aerr)
			if mutating {
				writeError(w, errorf(http.StatusServiceUnavailable, "the audit log cannot be written%s: request %s is on record, its outcome is not; check the state before retrying", storeCause(aerr), req))
			} else {
				writeError(w, errorf(http.StatusServiceUnavailable, "the audit log cannot be written%s; nothing was answered", storeCause(aerr)))
			}
			return
		}
		if err != nil {
			writeError(w, err)
			return
		}
		if stale != nil && stale.Reason() != "" {
			w.Header().Set(api.HeaderStale, stale.Reason())
		}
		if h, ok := out.(http.Handler); ok { // a file, such as a backup
			h.ServeHTTP(w, r)
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func resultOf(err error) string {
	var he *httpError
	if errors.As(err, &he) {
		switch he.code {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests:
			return "denied: " + he.msg
		}
		return "error: " + he.msg
	}
	return "error: internal"
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if v == nil {
		v = struct{}{}
	}
	_ = json.NewEncoder(w).Encode(v)
}

// storeCause names, for an error shown to an administrator, why the store
// could not be reached (" (control-plane store unavailable: no etcd
// quorum …)"), or "" when that is not what failed.
func storeCause(err error) string {
	if !errors.Is(err, store.ErrUnavailable) {
		return ""
	}
	msg := err.Error()
	if i := strings.Index(msg, store.ErrUnavailable.Error()); i >= 0 {
		return " (" + msg[i:] + ")"
	}
	return " (" + store.ErrUnavailable.Error() + ")"
}

func writeError(w http.ResponseWriter, err error) {
	var he *httpError
	if errors.As(err, &he) {
		if he.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(he.retrySeconds()))
		}
		writeJSON(w, he.code, api.Error{Error: he.msg, Reason: he.reason})
		return
	}
	if errors.Is(err, store.ErrConflict) {
		writeJSON(w, http.StatusConflict, api.Error{Error: "a concurrent change won; try again"})
		return
	}
	if errors.Is(err, store.ErrUnavailable) {
		// The store's error names only the cause (no quorum, out of reach).
		msg := store.ErrUnavailable.Error()
		if _, cause, ok := strings.Cut(err.Error(), store.ErrUnavailable.Error()+": "); ok {
			msg += ": " + cause
		}
		writeJSON(w, http.StatusServiceUnavailable, api.Error{Error: msg})
		return
	}
	writeJSON(w, http.StatusInternalServerError, api.Error{Error: "internal error"})
}

// decode reads a JSON request body strictly.
func decode(r *http.Request, v any) error { return decodeLimit(r, v, 1<<20) }

// decodeLimit reads a JSON request body of at most limit bytes strictly.
func decodeLimit(r *http.Request, v any, limit int64) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, "bad request body: %v", strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

func (s *Server) handleBundle(w http.ResponseWriter, r *http.Request) {
	a := s.CA()
	st := a.State()
	writeJSON(w, http.StatusOK, api.CertResponse{
		Bundle:      api.DERs(a.Bundle().X509Authorities()),
		TrustDomain: s.td.Name(),
		Signing:     api.Pin(st.Authorities[st.Active].Root),
	})
}

func (s *Server) handleWhoami(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	return api.Whoami{ID: c.ID, Role: c.Role}, c.ID, nil
}

// trimForError shortens a caller's value to quote in an error.
func trimForError(v string) string {
	if len(v) > 64 {
		return v[:64] + "…"
	}
	return v
}

func mustParseID(s string) spiffeid.ID {
	id, _ := spiffeid.FromString(s)
	return id
}
