package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/ca"
	"moat/internal/identity"
	"moat/internal/store"
)

// Second factors.
//
// An administrator enrols a TOTP authenticator (RFC 6238: SHA-1, six
// digits, 30-second steps, one step of clock skew either way) with
// mfa.enroll, which answers the secret once, and mfa.confirm with a first
// code. The secret is stored sealed under the keyring (and the store seals
// it again). mfa.session then trades a code for an MFA session certificate
// of SessionTTL; the calls MFAConfig names need one.
//
// A code is accepted once: the step it belongs to is remembered, and a code
// of that step or an earlier one is refused. MaxFailures wrong codes in a
// row lock the factor for Lockout. Every attempt is audited; detection
// counts the refusals.

const (
	prefixMFA = "mfa/"
	// totpPeriod and totpDigits are what authenticator apps assume.
	totpPeriod = 30
	totpDigits = otp.DigitsSix
	// pendingTOTP is how long an enrolment waits for its first code.
	pendingTOTP = 10 * time.Minute
)

// mfaRecord is an administrator's second factors, under prefixMFA+name.
type mfaRecord struct {
	// Account is the account (adminRecord.Account) the factors are of.
	// Removing an account deletes its record, but a write under way then
	// (an enrolment, a login) may land after: such a record, of an earlier
	// account of the name, is none of the current account's (ownsMFA),
	// which finds no second factor there and may enrol its own over it.
	Account     string      `json:"account,omitempty"`
	TOTP        *totpFactor `json:"totp,omitempty"`
	Pending     *totpFactor `json:"pending,omitempty"`
	Failures    int         `json:"failures,omitempty"`
	LockedUntil time.Time   `json:"locked_until,omitzero"`
	// WebAuthn security keys (see webauthn.go): the administrator's user
	// handle, the registered keys, and the one ceremony under way.
	UserHandle []byte            `json:"user_handle,omitempty"`
	Keys       []securityKey     `json:"keys,omitempty"`
	Ceremony   *webauthnCeremony `json:"ceremony,omitempty"`
	// Sessions are the MFA session certificates issued and not ended: a
	// session certificate counts as a second factor only while it is
	// listed, so a logout or a reset ends it on every server at once.
	Sessions []mfaSession `json:"sessions,omitempty"`
}

// ownsMFA says whether m, stored under an account's name, is the second
// factors of that account (its ID account, adopted as adminRecord.Adopted
// says). Factors stored before accounts carried an ID are the factors of
// an account of that time only.
func ownsMFA(m mfaRecord, account string, adopted bool) bool {
	return m.Account == account || m.Account == "" && (account == "" || adopted)
}

// loadMFA reads the caller's second factors and their revision: none if
// what is stored under the caller's name is an earlier account's. The
// record answered is the caller account's, so that writing it back (at
// the revision answered) replaces an earlier account's.
func (s *Server) loadMFA(ctx context.Context, c *caller) (mfaRecord, int64, error) {
	var rec mfaRecord
	rev, err := getJSONRev(ctx, s.st, prefixMFA+c.Name, &rec)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return mfaRecord{}, 0, err
	}
	if !ownsMFA(rec, c.Account, c.Adopted) {
		if err == nil {
			c.note("mfa_of_earlier_account", "ignored")
		}
		rec = mfaRecord{}
	}
	rec.Account = c.Account
	return rec, rev, nil
}

// mfaSession is a live MFA session certificate.
type mfaSession struct {
	Serial  string    `json:"serial"`
	Expires time.Time `json:"expires"`
	// Issued is when the session was issued, to the second (as a
	// certificate keeps time, so that a session counts as begun no later
	// than the certificates issued under it); sessions recorded before
	// it was have none, and count as begun long ago (access.session_mfa).
	Issued time.Time `json:"issued,omitzero"`
}

// maxMFASessions bounds the live sessions of one administrator: a new
// one beyond it ends the oldest.
const maxMFASessions = 16

// live finds serial among the live sessions of rec at now.
func (rec *mfaRecord) live(serial string, now time.Time) (mfaSession, bool) {
	for _, x := range rec.Sessions {
		if x.Serial == serial && now.Before(x.Expires) {
			return x, true
		}
	}
	return mfaSession{}, false
}

// liveSessions lists rec's sessions that have not ended at now.
func (rec *mfaRecord) liveSessions(now time.Time) []mfaSession {
	var out []mfaSession
	for _, x := range rec.Sessions {
		if now.Before(x.Expires) {
			out = append(out, x)
		}
	}
	return out
}

// totpFactor is a TOTP secret, sealed.
type totpFactor struct {
	Sealed   []byte    `json:"sealed"`
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires,omitzero"` // pending only
	LastStep int64     `json:"last_step,omitempty"`
	// Unapproved marks a first enrolment made under FirstEnrolApproved
	// that no one approved yet: it proves nothing until approved.
	Unapproved bool   `json:"unapproved,omitempty"`
	ApprovedBy string `json:"approved_by,omitempty"`
}

// ownCredentialActions are the calls an administrator of any role makes on
// their own credentials: second factors, MFA sessions, and the renewal of
// their enrolment certificate. They change state, so each is on record
// (Server.admin) before it takes effect, as the calls of operators and
// above are: while the audit log cannot be written, no authenticator,
// security key, session, logout or certificate happens unseen by it.
var ownCredentialActions = map[string]bool{
	"admin.renew": true, "mfa.enroll": true, "mfa.confirm": true, "mfa.session": true, "mfa.logout": true,
	"mfa.webauthn.register.begin": true, "mfa.webauthn.register": true,
	"mfa.webauthn.login.begin": true, "mfa.webauthn.login": true, "mfa.webauthn.remove": true,
}

func (s *Server) mfaRoutes(t *routeTable) {
	admin := t.admin
	admin("GET", api.PathMFA, api.RoleViewer, "mfa.status", s.handleMFAStatus)
	admin("POST", api.PathMFAEnroll, api.RoleViewer, "mfa.enroll", s.handleMFAEnroll)
	admin("POST", api.PathMFAConfirm, api.RoleViewer, "mfa.confirm", s.handleMFAConfirm)
	admin("POST", api.PathMFASession, api.RoleViewer, "mfa.session", s.handleMFASession)
	admin("POST", api.PathMFALogout, api.RoleViewer, "mfa.logout", s.handleMFALogout)
	admin("POST", api.PathMFAReset, api.RoleAdmin, "mfa.reset", s.handleMFAReset)
	admin("POST", api.PathMFAApprove, api.RoleAdmin, "mfa.approve", s.handleMFAApprove)
	s.webauthnRoutes(t)
}

// checkFactor is the second half of every admin call's authorization,
// after the role: a grant certificate is refused on the API, and a call the
// MFA configuration names needs an MFA session certificate.
func (s *Server) checkFactor(ctx context.Context, c *caller, action string) error {
	if c.Grant != "" {
		return errorf(http.StatusUnauthorized, "an access-grant certificate is for the node's agent, not the control plane's API")
	}
	if !s.mfa.Requires(c.Role, action) {
		return nil
	}
	if live, err := s.sessionLive(ctx, c); err != nil || live {
		return err
	}
	return s.factorRefusal(ctx, c, action)
}

// factorRefusal is the refusal of action to a caller without a live MFA
// session: saying whether a code can help.
func (s *Server) factorRefusal(ctx context.Context, c *caller, action string) error {
	rec, _, err := s.loadMFA(ctx, c)
	if err != nil {
		return err
	}
	if rec.TOTP == nil {
		return &httpError{code: http.StatusUnauthorized, reason: api.ReasonMFAEnrol,
			msg: fmt.Sprintf("%s needs a fresh MFA proof, and admin %q has no second factor: enrol one with \"moat admin mfa enroll\"", action, c.Name)}
	}
	if rec.TOTP.Unapproved {
		return &httpError{code: http.StatusUnauthorized, reason: api.ReasonMFAEnrol,
			msg: fmt.Sprintf("%s needs a fresh MFA proof, and admin %q's authenticator awaits approval: %s", action, c.Name, awaitingApproval(c.Name))}
	}
	return &httpError{code: http.StatusUnauthorized, reason: api.ReasonMFARequired,
		msg: fmt.Sprintf("%s needs a fresh MFA proof: give a code from your authenticator (\"moat admin mfa login\")", action)}
}

// callerMarks reads the session or grant mark of an admin's certificate.
// The MFA mark is a claim: sessionLive says whether it proves a second
// factor now.
func callerMarks(c *caller) error {
	m, err := identity.ReadAdminMarks(c.Leaf)
	if err != nil {
		return errorf(http.StatusUnauthorized, "client certificate refused: %v", err)
	}
	c.MFA, c.Grant, c.account = m.MFA, m.Grant, m.Account
	return nil
}

// sessionLive says whether the caller presents an MFA session certificate
// whose session is live: listed, not ended by a logout, a reset or a newer
// session. A session that is not is an enrolment credential like any
// other. It reads the store once per call, and only for the calls that ask.
func (s *Server) sessionLive(ctx context.Context, c *caller) (bool, error) {
	if c.MFA == "" {
		return false, nil
	}
	if c.mfaChecked {
		return c.mfaLive, nil
	}
	rec, _, err := s.loadMFA(ctx, c)
	if err != nil {
		return false, err
	}
	sess, live := rec.live(identity.SerialHex(c.Leaf.SerialNumber), s.now())
	c.mfaChecked, c.mfaLive, c.mfaIssued = true, live, sess.Issued
	if !c.mfaLive {
		c.note("mfa_session", "ended")
	}
	return c.mfaLive, nil
}

// factorChangeWindow is how recently the MFA session that changes a
// second factor (replaces the authenticator, registers or removes a
// security key), or makes an administrator's credential, must have begun. A session certificate copied with an
// administrator's files lives for mfa.session_ttl; were any live one
// enough, its thief would bind an authenticator or key of their own and
// buy sessions with it long after the copy ended.
const factorChangeWindow = time.Minute

// factorChangeProof admits a change to the caller's second factors only
// under a live MFA session begun at most factorChangeWindow ago: without
// one it refuses with refusal (api.ReasonMFARequired), with an older one
// (or one whose beginning was not recorded) with api.ReasonMFAStale, on
// which the client asks for a code and retries.
func (s *Server) factorChangeProof(ctx context.Context, c *caller, what, refusal string) error {
	live, err := s.sessionLive(ctx, c)
	if err != nil {
		return err
	}
	if !live {
		return &httpError{code: http.StatusUnauthorized, reason: api.ReasonMFARequired, msg: refusal}
	}
	if s.sessionBegunWithin(c, factorChangeWindow) {
		return nil
	}
	return &httpError{code: http.StatusUnauthorized, reason: api.ReasonMFAStale,
		msg: fmt.Sprintf("%s needs an MFA session begun for it, at most %s before: yours began %s; give a new code (\"moat admin mfa login\")",
			what, factorChangeWindow, s.sessionBegan(c))}
}

// sessionBegunWithin says whether the caller's live MFA session (as
// sessionLive found it) began at most window ago; one whose beginning
// was not recorded did not.
func (s *Server) sessionBegunWithin(c *caller, window time.Duration) bool {
	return !c.mfaIssued.IsZero() && max(s.now().Sub(c.mfaIssued), 0) <= window
}

// sessionBegan says when the caller's live MFA session began, for a
// refusal.
func (s *Server) sessionBegan(c *caller) string {
	if c.mfaIssued.IsZero() {
		return "at a time not recorded"
	}
	return max(s.now().Sub(c.mfaIssued), 0).Round(time.Second).String() + " ago"
}

// handleMFALogout ends every MFA session of the caller, on every server:
// the session certificates, wherever copies of them are, no longer count
// as a second factor.
func (s *Server) handleMFALogout(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	ended := 0
	_, err := s.updateMFA(ctx, c, func(rec *mfaRecord) error {
		ended = len(rec.Sessions)
		if ended == 0 {
			return errNoChange
		}
		rec.Sessions = nil
		return nil
	})
	if err != nil && !errors.Is(err, errNoChange) {
		return nil, c.ID, err
	}
	c.note("ended", strconv.Itoa(ended))
	return api.MFALogout{Ended: ended}, c.ID, nil
}

func (s *Server) handleMFAStatus(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	rec, _, err := s.loadMFA(ctx, c)
	if err != nil {
		return nil, c.ID, err
	}
	st := api.MFAStatus{Admin: c.ID}
	if rec.TOTP != nil {
		st.TOTP = rec.TOTP.Created
		st.AwaitingApproval = rec.TOTP.Unapproved
	}
	for _, k := range rec.Keys {
		st.SecurityKeys = append(st.SecurityKeys, api.SecurityKey{Name: k.Name, Created: k.Created, LastUsed: k.LastUsed})
	}
	if s.now().Before(rec.LockedUntil) {
		st.LockedUntil = rec.LockedUntil
	}
	if _, live := rec.live(identity.SerialHex(c.Leaf.SerialNumber), s.now()); c.MFA != "" && live {
		st.Session = c.Leaf.NotAfter
	}
	if !s.mfa.Off && (s.mfa.Roles == nil || contains(s.mfa.Roles, c.Role)) {
		st.Required = s.mfa.Actions
	}
	return st, c.ID, nil
}

// handleMFAEnroll makes a new TOTP secret for the caller and answers it,
// once. Replacing an enrolled authenticator needs a fresh proof with it
// (factorChangeProof): otherwise a stolen enrolment certificate, or an MFA
// session certificate copied with it, could enrol its thief's.
func (s *Server) handleMFAEnroll(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	key := prefixMFA + c.Name
	rec, rev, err := s.loadMFA(ctx, c)
	if err != nil {
		return nil, c.ID, err
	}
	if rec.TOTP != nil {
		if err := s.factorChangeProof(ctx, c, "replacing an enrolled authenticator",
			"replacing an enrolled authenticator needs a fresh MFA proof with it (\"moat admin mfa login\"); if it is lost, another admin runs \"moat admin mfa reset\""); err != nil {
			return nil, c.ID, err
		}
	}
	k, err := totp.Generate(totp.GenerateOpts{Issuer: "moat " + s.td.Name(), AccountName: c.Name, Period: totpPeriod,
		Digits: totpDigits, Algorithm: otp.AlgorithmSHA1, Rand: rand.Reader})
	if err != nil {
		return nil, c.ID, fmt.Errorf("server: totp: %w", err)
	}
	sealed, err := s.sealSecret(key, []byte(k.Secret()))
	if err != nil {
		return nil, c.ID, err
	}
	now := s.now().UTC()
	rec.Pending = &totpFactor{Sealed: sealed, Created: now, Expires: now.Add(pendingTOTP)}
	if err := s.putRev(ctx, key, rev, rec); err != nil {
		return nil, c.ID, err
	}
	c.note("factor", "totp")
	return api.MFAEnrollment{URI: k.URL(), Secret: k.Secret(), Expires: rec.Pending.Expires}, c.ID, nil
}

// handleMFAConfirm activates a pending enrolment with a first code.
func (s *Server) handleMFAConfirm(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	var req api.MFACode
	if err := decode(r, &req); err != nil {
		return nil, c.ID, err
	}
	if _, err := s.verifyCode(ctx, c, req.Code, true); err != nil {
		return nil, c.ID, err
	}
	c.note("factor", "totp")
	return s.handleMFAStatus(ctx, c, r)
}

// handleMFASession trades a code for an MFA session certificate.
func (s *Server) handleMFASession(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	var req api.MFASessionRequest
	if err := decode(r, &req); err != nil {
		return nil, c.ID, err
	}
	csr, err := parseCSR(req.CSR)
	if err != nil {
		return nil, c.ID, err
	}
	if _, err := s.verifyCode(ctx, c, req.Code, false); err != nil {
		return nil, c.ID, err
	}
	resp, err := s.issueMFASession(ctx, c, csr, identity.MFATOTP)
	return resp, c.ID, err
}

// parseCSR checks the CSR of an administrator's certificate (enrolment,
// MFA session, access grant) as the CA will (ca.ParseCSR), answering 400
// for one it would not sign. It is checked before any factor, so a bad one
// spends no code.
func parseCSR(der []byte) (*x509.CertificateRequest, error) {
	csr, err := ca.ParseCSR(der)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "csr: %v", err)
	}
	return csr, nil
}

// issueMFASession signs the caller's MFA session certificate, marked with
// the factor (method) that was just proven, and lists it as live.
func (s *Server) issueMFASession(ctx context.Context, c *caller, csr *x509.CertificateRequest, method string) (api.CertResponse, error) {
	pol, err := identity.MFASessionPolicy(method)
	if err != nil {
		return api.CertResponse{}, err
	}
	id, err := identity.AdminID(s.td, c.Name)
	if err != nil {
		return api.CertResponse{}, err
	}
	pols := []x509.OID{pol}
	if c.Account != "" {
		acct, err := identity.AccountPolicy(c.Account)
		if err != nil {
			return api.CertResponse{}, err
		}
		pols = append(pols, acct)
	}
	a := s.CA()
	chain, err := a.SignWithPolicies(csr.PublicKey, id, s.mfa.SessionTTL, pols)
	if err != nil {
		return api.CertResponse{}, errorf(http.StatusBadRequest, "csr: %v", err)
	}
	now := s.now()
	_, err = s.updateMFA(ctx, c, func(rec *mfaRecord) error {
		if rec.TOTP == nil && len(rec.Keys) == 0 {
			return errorf(http.StatusUnauthorized, "admin %q's second factors were reset meanwhile: enrol again", c.Name)
		}
		live := rec.liveSessions(now)
		if len(live) >= maxMFASessions {
			live = live[len(live)-maxMFASessions+1:]
		}
		rec.Sessions = append(live, mfaSession{Serial: identity.SerialHex(chain[0].SerialNumber), Expires: chain[0].NotAfter.UTC(),
			Issued: now.UTC().Truncate(time.Second)})
		return nil
	})
	if err != nil {
		return api.CertResponse{}, err
	}
	s.m.issued.WithLabelValues("admin-session").Inc()
	c.note("factor", method)
	c.note("serial", identity.SerialHex(chain[0].SerialNumber))
	c.note("expires", chain[0].NotAfter.UTC().Format(time.RFC3339))
	return api.CertResponse{Chain: api.DERs(chain), Bundle: api.DERs(a.Bundle().X509Authorities()), TrustDomain: s.td.Name()}, nil
}

// handleMFAReset removes another administrator's second factors (never
// the caller's own), for a lost authenticator: those of the name's current account, its
// authenticator, security keys, lockout and MFA sessions (which end on
// every server). The admin named must enrol again before any sensitive
// call. Second factors stored under the name for an earlier account (a
// write that landed after its removal) are no account's: every reader
// ignores them, and so does a reset, which leaves them as they are and
// resets nothing. The entry records the account reset (target_account).
func (s *Server) handleMFAReset(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	var req api.MFAReset
	if err := decode(r, &req); err != nil {
		return nil, "", err
	}
	id, err := identity.AdminID(s.td, req.Name)
	if err != nil {
		return nil, "", errorf(http.StatusBadRequest, "name: %v", err)
	}
	if req.Name == c.Name {
		// An own reset needs no factor of the authenticator it removes:
		// with a copied MFA session it would clear the way for a first
		// enrolment of the copy's thief.
		c.note("self_reset", "true")
		return nil, id.String(), errorf(http.StatusForbidden, "an administrator cannot reset their own second factors: another admin must (to replace your authenticator, \"moat admin mfa enroll\")")
	}
	if err := s.resetMFA(ctx, c, req.Name); err != nil {
		return nil, id.String(), err
	}
	return struct{}{}, id.String(), nil
}

// resetMFA deletes the second factors of name's current account, in a
// transaction conditioned on both the account and its factors: an account
// removed, or removed and made again, meanwhile loses nothing of its own.
func (s *Server) resetMFA(ctx context.Context, c *caller, name string) error {
	var adm adminRecord
	admRev, err := getJSONRev(ctx, s.st, prefixAdmin+name, &adm)
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "admin %q does not exist (\"moat admin list\" shows the accounts)", name)
	}
	if err != nil {
		return err
	}
	if adm.Account != "" {
		c.note(audit.DetailTargetAccount, adm.Account)
	}
	key := prefixMFA + name
	var rec mfaRecord
	rev, err := getJSONRev(ctx, s.st, key, &rec)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err == nil && !ownsMFA(rec, adm.Account, adm.Adopted) {
		c.note("mfa_of_earlier_account", "ignored")
		err = store.ErrNotFound
	}
	if err != nil {
		return errorf(http.StatusConflict, "admin %q has no second factor to reset", name)
	}
	conds := []store.Cond{{Key: key, ModRevision: rev}, {Key: prefixAdmin + name, ModRevision: admRev}}
	if _, err := s.st.Txn(ctx, conds, []store.Op{store.Delete(key)}); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return errorf(http.StatusConflict, "admin %q's second factors changed meanwhile: nothing was reset; try again", name)
		}
		return err
	}
	c.note("sessions_ended", strconv.Itoa(len(rec.liveSessions(s.now()))))
	return nil
}

// awaitingApproval says how an unapproved first enrolment is approved.
func awaitingApproval(name string) string {
	return fmt.Sprintf("another administrator runs \"moat admin mfa approve --name %s\", or the server's host \"moat server mfa-approve --admin %s\"", name, name)
}

// handleMFAApprove approves another administrator's first enrolment
// (FirstEnrolApproved). The approver's own MFA session is required (the
// call is in DefaultMFAActions), and an administrator never approves
// their own.
func (s *Server) handleMFAApprove(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	var req api.MFAReset
	if err := decode(r, &req); err != nil {
		return nil, "", err
	}
	id, err := identity.AdminID(s.td, req.Name)
	if err != nil {
		return nil, "", errorf(http.StatusBadRequest, "name: %v", err)
	}
	if live, err := s.sessionLive(ctx, c); err != nil {
		return nil, id.String(), err
	} else if !live {
		// Whatever the configuration names: vouching for another's factor
		// needs a factor of one's own, proven now.
		return nil, id.String(), &httpError{code: http.StatusUnauthorized, reason: api.ReasonMFARequired,
			msg: "approving an enrolment needs a fresh MFA proof of your own (\"moat admin mfa login\")"}
	}
	if req.Name == c.Name {
		c.note("self_approval", "true")
		return nil, id.String(), errorf(http.StatusForbidden, "an administrator cannot approve their own authenticator: another admin must")
	}
	account, err := approveFirstEnrolment(ctx, s.st, req.Name, c.ID)
	if err != nil {
		return nil, id.String(), err
	}
	c.note("factor", "totp")
	if account != "" {
		c.note(audit.DetailTargetAccount, account)
	}
	return struct{}{}, id.String(), nil
}

// approveFirstEnrolment marks name's unapproved TOTP factor approved by by.
// It returns the account approved ("" for an account made before accounts
// carried an ID), for the audit entry (audit.DetailTargetAccount).
func approveFirstEnrolment(ctx context.Context, st store.Store, name, by string) (string, error) {
	key := prefixMFA + name
	var adm adminRecord
	admRev, err := getJSONRev(ctx, st, prefixAdmin+name, &adm)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	exists := err == nil
	var rec mfaRecord
	rev, err := getJSONRev(ctx, st, key, &rec)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	// An enrolment of an earlier account of the name is not the
	// current account's to have approved.
	if !exists || rec.TOTP == nil || !rec.TOTP.Unapproved || !ownsMFA(rec, adm.Account, adm.Adopted) {
		return "", errorf(http.StatusConflict, "admin %q has no enrolment awaiting approval", name)
	}
	rec.TOTP.Unapproved, rec.TOTP.ApprovedBy = false, by
	b, err := json.Marshal(rec)
	if err != nil {
		return "", err
	}
	// Neither the factors nor the account may change meanwhile.
	conds := []store.Cond{{Key: key, ModRevision: rev}, {Key: prefixAdmin + name, ModRevision: admRev}}
	if _, err := st.Txn(ctx, conds, []store.Op{store.Put(key, b)}); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return "", errorf(http.StatusConflict, "admin %q's second factors changed meanwhile: try again", name)
		}
		return "", err
	}
	return adm.Account, nil
}

// verifyCode checks code against the caller's TOTP secret (the pending one
// when pending), once. The attempt is counted in the store before the code
// is judged, so no burst of concurrent guesses, on one server or on every
// server of a cluster, has more than MaxFailures of them judged before the
// factor locks: each must land its own conditional write first. A right
// code then clears the count and remembers its step in one conditional
// write, so neither a replay nor two concurrent uses of one code pass. It
// returns the matched step.
func (s *Server) verifyCode(ctx context.Context, c *caller, code string, pending bool) (int64, error) {
	key := prefixMFA + c.Name
	var judged *totpFactor
	counted, err := s.updateMFA(ctx, c, func(rec *mfaRecord) error {
		if err := s.locked(c, *rec); err != nil {
			return err
		}
		f, err := s.codeFactor(c, rec, pending)
		if err != nil {
			return err
		}
		if rec.Failures >= s.mfa.MaxFailures {
			// As many attempts as the lockout allows are being judged
			// or were refused: lock now.
			s.lock(c, rec)
			return errLockedNow
		}
		rec.Failures++
		c.note("failures", strconv.Itoa(rec.Failures))
		judged = f
		return nil
	})
	if errors.Is(err, errLockedNow) {
		return 0, s.locked(c, counted)
	}
	if err != nil {
		return 0, err
	}
	now := s.now()
	step, why := int64(-1), "MFA code refused"
	if len(code) == int(totpDigits) && digits(code) {
		secret, err := s.openSecret(key, judged.Sealed)
		if err != nil {
			return 0, err
		}
		cur := now.Unix() / totpPeriod
		for _, st := range []int64{cur, cur - 1, cur + 1} {
			want, err := hotp.GenerateCodeCustom(string(secret), uint64(st), hotp.ValidateOpts{Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
			if err != nil {
				return 0, fmt.Errorf("server: totp: %w", err)
			}
			if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
				step = st
				break
			}
		}
		if step >= 0 && step <= judged.LastStep {
			step, why = -1, "MFA code already used: wait for the next one"
		}
	}
	if step < 0 {
		// The failure is counted already; the one that reaches the
		// limit locks the factor.
		_, err := s.updateMFA(ctx, c, func(rec *mfaRecord) error {
			if !now.Before(rec.LockedUntil) && rec.Failures >= s.mfa.MaxFailures {
				s.lock(c, rec)
				return nil
			}
			return errNoChange
		})
		if err != nil && !errors.Is(err, errNoChange) {
			return 0, err
		}
		return 0, errorf(http.StatusUnauthorized, "%s", why)
	}
	_, err = s.updateMFA(ctx, c, func(rec *mfaRecord) error {
		// Failures counted meanwhile may have locked the factor, another
		// use of this code may have landed, or the factor may have
		// changed: judge again against what is stored now.
		if err := s.locked(c, *rec); err != nil {
			return err
		}
		f, err := s.codeFactor(c, rec, pending)
		if err != nil {
			return err
		}
		if !bytes.Equal(f.Sealed, judged.Sealed) {
			return errorf(http.StatusUnauthorized, "MFA code refused: the second factor changed meanwhile")
		}
		if step <= f.LastStep {
			return errorf(http.StatusUnauthorized, "MFA code already used: wait for the next one")
		}
		f.LastStep = step
		rec.Failures = 0
		if pending {
			f.Expires = time.Time{}
			f.Created = now.UTC()
			// A first enrolment: trusted on first use, unless the
			// configuration wants another administrator to vouch for it.
			if rec.TOTP == nil && s.mfa.FirstEnrolment == FirstEnrolApproved {
				f.Unapproved = true
				c.note("awaiting_approval", "true")
			}
			rec.TOTP, rec.Pending = f, nil
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return step, nil
}

// codeFactor is the factor of rec a code is checked against: the enrolled
// one, or the pending enrolment's.
func (s *Server) codeFactor(c *caller, rec *mfaRecord, pending bool) (*totpFactor, error) {
	f := rec.TOTP
	if pending {
		f = rec.Pending
		if f != nil && s.now().After(f.Expires) {
			f = nil
		}
	}
	if f == nil {
		if pending {
			return nil, errorf(http.StatusBadRequest, "no enrolment is waiting for a code: run \"moat admin mfa enroll\" first")
		}
		return nil, errorf(http.StatusUnauthorized, "admin %q has no second factor: enrol one with \"moat admin mfa enroll\"", c.Name)
	}
	if !pending && f.Unapproved {
		return nil, errorf(http.StatusForbidden, "admin %q's authenticator awaits approval: %s", c.Name, awaitingApproval(c.Name))
	}
	return f, nil
}

// lock locks rec's factors for the configured lockout.
func (s *Server) lock(c *caller, rec *mfaRecord) {
	rec.LockedUntil = s.now().Add(s.mfa.Lockout).UTC()
	rec.Failures = 0
	c.note("locked_until", rec.LockedUntil.Format(time.RFC3339))
}

var (
	// errNoChange, from updateMFA's function, leaves the record as it is.
	errNoChange = errors.New("no change")
	// errLockedNow, from updateMFA's function, writes the record (which
	// the function locked) and is returned.
	errLockedNow = errors.New("locked now")
)

// updateMFA applies fn to the caller's second factors (as loadMFA reads them) and writes the result
// only if nobody wrote them meanwhile, reading again and reapplying fn
// until a write lands: a change of one server is never lost to another's.
// An error from fn is returned without writing, except errLockedNow, which
// is returned after writing.
func (s *Server) updateMFA(ctx context.Context, c *caller, fn func(*mfaRecord) error) (mfaRecord, error) {
	key := prefixMFA + c.Name
	for range 1000 {
		rec, rev, err := s.loadMFA(ctx, c)
		if err != nil {
			return rec, err
		}
		ferr := fn(&rec)
		if ferr != nil && !errors.Is(ferr, errLockedNow) {
			return rec, ferr
		}
		err = s.putRev(ctx, key, rev, rec)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return rec, err
		}
		return rec, ferr
	}
	return mfaRecord{}, errorf(http.StatusServiceUnavailable, "admin %q's second factors keep changing: try again", c.Name)
}

func digits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// putRev writes v at key only if key is still at rev (0: absent).
func (s *Server) putRev(ctx context.Context, key string, rev int64, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("server: encode %q: %w", key, err)
	}
	_, err = s.st.Txn(ctx, []store.Cond{{Key: key, ModRevision: rev}}, []store.Op{store.Put(key, b)})
	return err
}

// sealSecret seals b under the keyring, bound to key; without a sealer
// (tests only) it is stored as is.
func (s *Server) sealSecret(key string, b []byte) ([]byte, error) {
	if s.cfg.Sealer == nil {
		return b, nil
	}
	out, err := s.cfg.Sealer.Encrypt(b, []byte(key))
	if err != nil {
		return nil, fmt.Errorf("server: seal %s: %w", key, err)
	}
	return out, nil
}

func (s *Server) openSecret(key string, b []byte) ([]byte, error) {
	if s.cfg.Sealer == nil {
		return b, nil
	}
	out, err := s.cfg.Sealer.Decrypt(b, []byte(key))
	if err != nil {
		return nil, fmt.Errorf("server: open %s: %w", key, err)
	}
	return out, nil
}
