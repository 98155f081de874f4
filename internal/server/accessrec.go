package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/seal"
	"moat/internal/store"
)

var (
	sessionIDRE = regexp.MustCompile(`^[0-9a-f]{24}$`)
	sha256RE    = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Audit actions of sessions, written by the control plane on its agents'
// reports.
const (
	ActionSessionStart    = "access.session.start"
	ActionSessionEnd      = "access.session.end"
	ActionRecordingExpire = "access.recording.expire"
)

func sessionKey(grant, id string) string { return prefixSession + grant + "/" + id }

// checkReport validates an agent's report of a session of one of its grants.
func (s *Server) checkReport(ctx context.Context, node string, x api.AccessSession) (api.Grant, error) {
	if !sessionIDRE.MatchString(x.ID) {
		return api.Grant{}, errorf(http.StatusBadRequest, "session: malformed ID")
	}
	g, _, err := s.loadGrant(ctx, x.Grant)
	if err != nil {
		return api.Grant{}, err
	}
	switch {
	case g.Node != node:
		return api.Grant{}, errorf(http.StatusForbidden, "grant %s is not for node %q", g.ID, node)
	case x.Admin != g.Requester:
		return api.Grant{}, errorf(http.StatusBadRequest, "session %s: admin %q is not the grant's requester", x.ID, trimForError(x.Admin))
	case x.Mode != g.Mode:
		return api.Grant{}, errorf(http.StatusBadRequest, "session %s: mode %q is not the grant's", x.ID, trimForError(x.Mode))
	case len(x.Detail) > 128 || len(x.Remote) > 128 || len(x.EndReason) > 128:
		return api.Grant{}, errorf(http.StatusBadRequest, "session %s: oversized field", x.ID)
	case !printable(x.Detail) || !printable(x.Remote) || !printable(x.EndReason):
		// They go into the audit entries of the session as they are.
		return api.Grant{}, errorf(http.StatusBadRequest, "session %s: detail, remote and end_reason: printable characters only", x.ID)
	case x.Recording != "" && !sha256RE.MatchString(x.Recording):
		return api.Grant{}, errorf(http.StatusBadRequest, "session %s: recording: want a hex SHA-256", x.ID)
	}
	return g, nil
}

// handleAccessEvent records an agent's report that a session started or
// ended. Reports are retried until answered, so each is idempotent: the
// audit entry is written before the store changes, and a report the store
// already reflects is answered without a second entry.
func (s *Server) handleAccessEvent(w http.ResponseWriter, r *http.Request, c *caller) {
	ctx := r.Context()
	var ev api.AccessEvent
	if err := decodeLimit(r, &ev, 64<<10); err != nil {
		writeError(w, err)
		return
	}
	x := ev.Session
	g, err := s.checkReport(ctx, c.Name, x)
	if err != nil {
		writeError(w, err)
		return
	}
	x.Node = c.Name
	// The session is the grant's requester's: their account, which the
	// agent does not know, is the grant's.
	x.AdminAccount = g.RequesterAccount
	key := sessionKey(g.ID, x.ID)
	var cur api.AccessSession
	rev, err := getJSONRev(ctx, s.st, key, &cur)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		writeError(w, err)
		return
	}
	// A session not yet on record must be one the control plane relayed
	// to this node; its mark is spent with the session's first record.
	var relayedRev int64
	if rev == 0 {
		var m relayedSession
		relayedRev, err = getJSONRev(ctx, s.st, relayedKey(g.ID, x.ID), &m)
		if errors.Is(err, store.ErrNotFound) || err == nil && m.Node != c.Name {
			writeError(w, errorf(http.StatusForbidden, "session %s of grant %s was not relayed to node %q", x.ID, g.ID, c.Name))
			return
		}
		if err != nil {
			writeError(w, err)
			return
		}
	}
	entry := audit.Entry{Time: s.now().UTC(), Actor: x.Admin, Target: c.Name, Result: "ok",
		Detail: map[string]string{"grant": g.ID, "session": x.ID, "mode": x.Mode, "node": c.Name}}
	if x.Detail != "" {
		entry.Detail["detail"] = x.Detail
	}
	if x.Remote != "" {
		entry.Detail["remote"] = x.Remote
	}
	if x.AdminAccount != "" {
		entry.Detail[audit.DetailAccount] = x.AdminAccount
	}
	switch ev.Kind {
	case "start":
		if rev != 0 {
			writeJSON(w, http.StatusOK, cur)
			return
		}
		entry.Action = ActionSessionStart
		x.Started = within(x.Started, g.Starts, s.now().UTC())
		x.Ended, x.Recording, x.Stored = time.Time{}, "", false
	case "end":
		if rev != 0 && !cur.Ended.IsZero() {
			writeJSON(w, http.StatusOK, cur)
			return
		}
		if rev != 0 {
			x.Started = cur.Started
		} else {
			x.Started = within(x.Started, g.Starts, s.now().UTC())
		}
		x.Ended = within(x.Ended, x.Started, s.now().UTC())
		entry.Action = ActionSessionEnd
		entry.Detail["end_reason"] = x.EndReason
		if x.Recording != "" {
			entry.Detail["recording_sha256"] = x.Recording
		}
		entry.Detail["bytes_in"] = fmt.Sprint(x.BytesIn)
		entry.Detail["bytes_out"] = fmt.Sprint(x.BytesOut)
		x.Stored = false
	default:
		writeError(w, errorf(http.StatusBadRequest, "kind %q: want start or end", trimForError(ev.Kind)))
		return
	}
	if err := s.record(ctx, entry); err != nil {
		writeError(w, errorf(http.StatusServiceUnavailable, "the audit log is unavailable"))
		return
	}
	conds, ops := []store.Cond{{Key: key, ModRevision: rev}}, []store.Op{store.Put(key, mustJSON(x))}
	if rev == 0 {
		conds = append(conds, store.Cond{Key: relayedKey(g.ID, x.ID), ModRevision: relayedRev})
		ops = append(ops, store.Delete(relayedKey(g.ID, x.ID)))
	}
	if _, err := s.st.Txn(ctx, conds, ops); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, x)
}

// within is a time a node reported, t, kept between lo and hi: a
// session's times are the node's word, and the recordings' retention
// counts from its end, so a node that backdated a session would have its
// recording deleted at the next retention pass, and one that dated it
// ahead would have it kept for ever. A time not reported (zero) is hi.
func within(t, lo, hi time.Time) time.Time {
	switch {
	case t.IsZero() || t.After(hi):
		return hi
	case t.Before(lo):
		return lo
	}
	return t
}

// findSession finds a session by its ID alone.
func (s *Server) findSession(ctx context.Context, id string) (api.AccessSession, int64, error) {
	if !sessionIDRE.MatchString(id) {
		return api.AccessSession{}, 0, errorf(http.StatusBadRequest, "session %q: malformed ID", trimForError(id))
	}
	kvs, _, err := s.st.List(ctx, prefixSession)
	if err != nil {
		return api.AccessSession{}, 0, err
	}
	for _, kv := range kvs {
		if strings.HasSuffix(kv.Key, "/"+id) {
			var x api.AccessSession
			if err := json.Unmarshal(kv.Value, &x); err != nil {
				return x, 0, fmt.Errorf("server: stored %q: %w", kv.Key, err)
			}
			return x, kv.ModRevision, nil
		}
	}
	return api.AccessSession{}, 0, errorf(http.StatusNotFound, "no session %q", id)
}

func (s *Server) recordingPath(session string) (string, error) {
	if s.cfg.Access.RecordingsDir == "" || s.cfg.Sealer == nil {
		return "", errorf(http.StatusServiceUnavailable, "this server keeps no recordings (no recordings directory or keyring)")
	}
	return filepath.Join(s.cfg.Access.RecordingsDir, session+".cast.sealed"), nil
}

// handleRecordingUpload takes a finished session's recording from its
// agent: a JSON line naming the session and size, then the asciicast. It
// is kept only if its SHA-256 is the one the agent reported at the session's
// end (and the audit log holds), sealed under the keyring.
func (s *Server) handleRecordingUpload(w http.ResponseWriter, r *http.Request, c *caller) {
	ctx := r.Context()
	// The pace is the socket's, so on the wall clock.
	body := newPacedBody(w, r.Body, time.Now(), s.cfg.Access.UploadGrace, s.cfg.Access.UploadMinRate)
	br := bufio.NewReader(io.LimitReader(body, s.cfg.Access.MaxRecording+64<<10))
	line, err := br.ReadSlice('\n')
	if err != nil {
		writeError(w, body.refusal(err, "recording: no header line"))
		return
	}
	up, err := parseRecordingHeader(line, s.cfg.Access.MaxRecording)
	if err != nil {
		writeError(w, err)
		return
	}
	g, err := s.checkReport(ctx, c.Name, up.Session)
	if err != nil {
		writeError(w, err)
		return
	}
	key := sessionKey(g.ID, up.Session.ID)
	var cur api.AccessSession
	rev, err := getJSONRev(ctx, s.st, key, &cur)
	if errors.Is(err, store.ErrNotFound) || (err == nil && cur.Ended.IsZero()) {
		writeError(w, errorf(http.StatusConflict, "session %s has not ended here yet: report its end first", up.Session.ID))
		return
	}
	if err != nil {
		writeError(w, err)
		return
	}
	// One recording at a time from a node, a few at once in all, each
	// held in memory only as far as its bytes have arrived: a node cannot
	// make the server set aside room for recordings it never sends, and
	// one whose bytes fall behind the minimum rate is cut off, so that
	// nodes trickling theirs do not keep the others' waiting (and wait
	// uploadCooldown for their next).
	done, err := s.access.startUpload(c.Name, up.Session.ID)
	if err != nil {
		writeError(w, err)
		return
	}
	cutOff := false
	defer func() { done(cutOff) }()
	rec, err := io.ReadAll(io.LimitReader(br, up.Size))
	cutOff = errors.Is(err, os.ErrDeadlineExceeded)
	if err != nil || int64(len(rec)) != up.Size {
		if cutOff {
			s.log.Warn("access: recording upload cut off: its bytes arrived too slowly",
				"node", c.Name, "session", up.Session.ID, "announced", up.Size, "arrived", len(rec))
		}
		writeError(w, body.refusal(err, fmt.Sprintf("recording: %d bytes announced, fewer sent", up.Size)))
		return
	}
	sum := sha256.Sum256(rec)
	if got := hex.EncodeToString(sum[:]); got != cur.Recording {
		s.log.Warn("access: recording refused: its digest is not the one reported at the session's end",
			"node", c.Name, "session", cur.ID, "reported", cur.Recording, "got", got)
		writeError(w, errorf(http.StatusConflict, "recording of session %s: SHA-256 %s is not the %s reported at its end", cur.ID, got, cur.Recording))
		return
	}
	if cur.Stored {
		writeJSON(w, http.StatusOK, cur)
		return
	}
	path, err := s.recordingPath(cur.ID)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		writeError(w, err)
		return
	}
	if err := seal.WriteSealedFile(path, s.cfg.Sealer, "recording/"+cur.ID, rec); err != nil {
		writeError(w, err)
		return
	}
	cur.Stored, cur.StoredOn = true, s.cfg.Name
	if err := s.putRev(ctx, key, rev, cur); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, cur)
}

// pacedBody is an upload's body that must keep arriving at rate bytes a
// second after grace from start: each read pushes the request's read
// deadline back by the time its bytes earned, so a body that falls behind
// ends in a deadline error while one at the rate or faster never does.
type pacedBody struct {
	r     io.Reader
	rc    *http.ResponseController
	start time.Time
	grace time.Duration
	rate  int64
	n     int64 // bytes read
}

func newPacedBody(w http.ResponseWriter, r io.Reader, start time.Time, grace time.Duration, rate int64) *pacedBody {
	p := &pacedBody{r: r, rc: http.NewResponseController(w), start: start, grace: grace, rate: rate}
	_ = p.rc.SetReadDeadline(p.deadline())
	return p
}

func (p *pacedBody) deadline() time.Time {
	return p.start.Add(p.grace + time.Duration(p.n)*time.Second/time.Duration(p.rate))
}

func (p *pacedBody) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.n += int64(n)
		_ = p.rc.SetReadDeadline(p.deadline())
	}
	return n, err
}

// refusal is the error answering a body that ended with err: 408 when
// its bytes fell behind, else 400 with msg.
func (p *pacedBody) refusal(err error, msg string) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return errorf(http.StatusRequestTimeout, "%s: %d bytes arrived in %s, slower than %d bytes a second after the first %s: send it again",
			msg, p.n, time.Since(p.start).Round(time.Millisecond), p.rate, p.grace)
	}
	return errorf(http.StatusBadRequest, "%s", msg)
}

// parseRecordingHeader reads the JSON line heading a recording upload,
// strictly: a known session ID, a digest of the right form, a size within
// max.
func parseRecordingHeader(line []byte, max int64) (api.RecordingUpload, error) {
	var up api.RecordingUpload
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&up); err != nil {
		return up, errorf(http.StatusBadRequest, "recording header: %v", err)
	}
	if dec.More() {
		return up, errorf(http.StatusBadRequest, "recording header: trailing data")
	}
	if up.Size < 0 || up.Size > max {
		return up, errorf(http.StatusRequestEntityTooLarge, "recording of %d bytes: at most %d", up.Size, max)
	}
	if !sessionIDRE.MatchString(up.Session.ID) {
		return up, errorf(http.StatusBadRequest, "recording header: session: malformed ID")
	}
	if !sha256RE.MatchString(up.Session.Recording) {
		return up, errorf(http.StatusBadRequest, "recording header: recording: want a hex SHA-256")
	}
	return up, nil
}

// Who reads a recording. A recording holds whatever was typed and shown in
// a shell on a node, often as root, so it is not for every operator: the
// administrator who held the session reads it, and so do the approvers of
// its grant (who signed off on the access and oversee it), and any
// administrator of access.recording_role or above reads every one. The
// holder and the approvers are matched by their account's ID, never by
// name: a name removed and made again is another account, which reads
// none of the earlier one's recordings; and a session or approval
// recorded before accounts carried an ID matches no account (only the
// role reads it).
const (
	readerHeld     = "held the session"
	readerApproved = "approved its grant"
	readerRole     = "role"
)

// recordingReader says why c may read the recording of session x of
// grant g (g may be the zero Grant when the grant is not kept), or "" when
// c may not.
func recordingReader(cfg *AccessConfig, c *caller, x api.AccessSession, g api.Grant) string {
	switch {
	case api.RoleRank(c.Role) >= api.RoleRank(cfg.RecordingRole):
		return readerRole
	case c.ID == "" || c.Account == "":
	case x.Admin == c.ID && x.AdminAccount == c.Account:
		return readerHeld
	case g.ID != "" && g.ID == x.Grant:
		for _, a := range g.Approvals {
			if a.By == c.ID && a.Account == c.Account {
				return readerApproved
			}
		}
	}
	return ""
}

// readerByName says why c would read the recording of session x of grant
// g by name alone, which recordingReader does not go by: for the audit
// entry of a refusal.
func readerByName(c *caller, x api.AccessSession, g api.Grant) string {
	switch {
	case c.ID == "":
	case x.Admin == c.ID:
		return readerHeld
	case g.ID != "" && g.ID == x.Grant:
		for _, a := range g.Approvals {
			if a.By == c.ID {
				return readerApproved
			}
		}
	}
	return ""
}

// recordingRefused is the one refusal of a recording, the same whether
// the session exists, has a recording or not, so that whoever may not
// read it learns nothing of it. It says why a name is not enough: holders
// and approvers are accounts, matched by ID, and a session or approval
// recorded before accounts carried an ID matches none.
func (s *Server) recordingRefused(c *caller, session string) error {
	return errorf(http.StatusForbidden, "role %q may not read the recording of session %s: it is for the account that held the session, its grant's approvers, and role %q or above (matched by account ID, not name; none recorded before IDs)",
		c.Role, session, s.cfg.Access.RecordingRole)
}

// handleAccessRecording answers a session's recording to those
// recordingReader allows, after checking it against the digest reported at
// the session's end. Who may read it is decided before anything is said of
// the recording (whether it is stored, where), and a caller who may read
// no recording is told the same of a session that does not exist.
func (s *Server) handleAccessRecording(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	id := r.URL.Query().Get("session")
	x, _, err := s.findSession(ctx, id)
	if err != nil {
		var he *httpError
		if errors.As(err, &he) && he.code == http.StatusNotFound && recordingReader(&s.cfg.Access, c, api.AccessSession{}, api.Grant{}) == "" {
			return nil, id, s.recordingRefused(c, id)
		}
		return nil, trimForError(id), err
	}
	var g api.Grant // its approvers; none if the grant is no longer kept
	if err := getJSON(ctx, s.st, prefixGrant+x.Grant, &g); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, x.ID, err
	}
	why := recordingReader(&s.cfg.Access, c, x, g)
	if why == "" {
		if byName := readerByName(c, x, g); byName != "" {
			// The name matches, the account does not: detection wants
			// to know of a name reaching for its predecessor's sessions.
			c.note("refused_reader", byName+" under the same name, by another account")
		}
		return nil, x.ID, s.recordingRefused(c, x.ID)
	}
	c.note("grant", x.Grant)
	c.note("reader", why)
	if !x.Stored {
		return nil, x.ID, errorf(http.StatusNotFound, "session %s: the control plane holds no recording (not yet sent, or past retention)", x.ID)
	}
	var b []byte
	if x.StoredOn == "" || x.StoredOn == s.cfg.Name {
		b, err = s.localRecording(x)
	} else {
		c.note("stored_on", x.StoredOn)
		b, err = s.peerRecording(ctx, x)
	}
	if err != nil {
		return nil, x.ID, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-asciicast")
		w.Header().Set("Moat-Recording-SHA256", x.Recording)
		_, _ = w.Write(b)
	}), x.ID, nil
}

// expireRecordings deletes recordings past retention, each with an audit
// entry saying so, so that a recording missing without one stands out.
func (s *Server) expireRecordings(ctx context.Context) error {
	if s.cfg.Access.RecordingsDir == "" {
		return nil
	}
	kvs, _, err := s.st.List(ctx, prefixSession)
	if err != nil {
		return err
	}
	cutoff := s.now().Add(-s.cfg.Access.Retention)
	for _, kv := range kvs {
		var x api.AccessSession
		if err := json.Unmarshal(kv.Value, &x); err != nil || !x.Stored || x.Ended.After(cutoff) {
			continue
		}
		if x.StoredOn != "" && x.StoredOn != s.cfg.Name {
			continue // another server of the cluster keeps it, and expires it
		}
		entry := audit.Entry{Time: s.now().UTC(), Actor: "control-plane", Action: ActionRecordingExpire, Target: x.Node, Result: "ok",
			Detail: map[string]string{"grant": x.Grant, "session": x.ID, "recording_sha256": x.Recording, "retention": s.cfg.Access.Retention.String()}}
		if err := s.record(ctx, entry); err != nil {
			return err
		}
		path, _ := s.recordingPath(x.ID)
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		x.Stored, x.StoredOn = false, ""
		if err := s.putRev(ctx, kv.Key, kv.ModRevision, x); err != nil && !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return nil
}

// relayedSlack is how long after its grant's end a relayed session's
// mark is kept: its start is reported as it begins, while the grant is
// active, so a mark still there an hour after is of a connection that
// never became a session.
const relayedSlack = time.Hour

// dropRelayed deletes the marks of relayed sessions whose grant ended
// over relayedSlack ago.
func (s *Server) dropRelayed(ctx context.Context) error {
	kvs, _, err := s.st.List(ctx, prefixRelayed)
	if err != nil {
		return err
	}
	cutoff := s.now().Add(-relayedSlack)
	var ops []store.Op
	for _, kv := range kvs {
		var m relayedSession
		if json.Unmarshal(kv.Value, &m) == nil && m.Expires.After(cutoff) {
			continue
		}
		if ops = append(ops, store.Delete(kv.Key)); len(ops) == store.MaxTxnOps {
			if _, err := s.st.Txn(ctx, nil, ops); err != nil {
				return err
			}
			ops = nil
		}
	}
	if len(ops) > 0 {
		_, err = s.st.Txn(ctx, nil, ops)
	}
	return err
}

// runAccess applies the recordings' retention, and drops the marks of
// relayed sessions never reported, every hour until ctx ends.
func (s *Server) runAccess(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if err := s.expireRecordings(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("access: recording retention", "err", err)
		}
		if err := s.dropRelayed(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("access: relayed sessions never reported", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
