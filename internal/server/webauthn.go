package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"moat/internal/api"
	"moat/internal/config"
	"moat/internal/identity"
	"moat/internal/store"
)

// Security keys (WebAuthn, with github.com/go-webauthn/webauthn), for the
// dashboard.
//
// An administrator with an MFA session begun within factorChangeWindow
// (a TOTP code proven a minute ago at most) registers a key: register/begin answers the options for the browser's
// navigator.credentials.create(), register/finish takes its answer. Later
// login/begin answers the options for navigator.credentials.get(), and
// login/finish trades the assertion, with a CSR, for the same short-lived
// MFA session certificate a TOTP code buys (marked webauthn). Ceremonies
// live in the store (any server of a cluster may finish what another
// began), one per administrator at a time, for webauthnCeremonyTTL, and
// are used once. A refused assertion counts towards the lockout as a wrong
// code does; a signature counter that goes backwards (a cloned key) is
// refused. Attestation is not required ("none" is accepted): the key is
// trusted because an administrator who had just proven their TOTP factor
// registered it.

const (
	webauthnCeremonyTTL = 5 * time.Minute
	maxSecurityKeys     = 10
	maxWebAuthnBody     = 64 << 10
)

// WebAuthnConfig is the relying party the dashboard's security keys are
// bound to.
type WebAuthnConfig struct {
	// RPID is the dashboard's domain ("moat.example.com"); keys registered
	// for it work on it and its subdomains only.
	RPID string
	// Origins are the dashboard's origins ("https://moat.example.com").
	Origins []string
	// DisplayName is shown by the browser; empty means "moat".
	DisplayName string
}

// WebAuthnFile is the "mfa.webauthn" section of moat server's
// configuration file.
type WebAuthnFile struct {
	RPID        string   `yaml:"rp_id"`
	Origins     []string `yaml:"origins"`
	DisplayName string   `yaml:"display_name"`
}

// Config validates f; errors name keys under path.
func (f WebAuthnFile) Config(path string) (WebAuthnConfig, error) {
	c := WebAuthnConfig{RPID: f.RPID, Origins: f.Origins, DisplayName: f.DisplayName}
	if !validHostname(f.RPID) || strings.HasSuffix(f.RPID, ".") || strings.ToLower(f.RPID) != f.RPID || net.ParseIP(f.RPID) != nil {
		return c, config.Errorf(config.Join(path, "rp_id"), "%q: want the dashboard's domain name, such as moat.example.com", f.RPID)
	}
	if len(f.Origins) == 0 {
		return c, config.Errorf(config.Join(path, "origins"), "name the dashboard's origin, such as https://%s", f.RPID)
	}
	for i, o := range f.Origins {
		p := config.Index(config.Join(path, "origins"), i)
		u, err := url.Parse(o)
		if err != nil || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
			return c, config.Errorf(p, "%q: want an origin, scheme://host[:port]", o)
		}
		host := u.Hostname()
		local := host == "localhost" || net.ParseIP(host).IsLoopback()
		if u.Scheme != "https" && !(u.Scheme == "http" && local) {
			return c, config.Errorf(p, "%q: browsers use security keys over https only (http on localhost)", o)
		}
		if host != f.RPID && !strings.HasSuffix(host, "."+f.RPID) {
			return c, config.Errorf(p, "%q: not on rp_id %q or a subdomain of it", o, f.RPID)
		}
	}
	if len(f.DisplayName) > 64 || strings.IndexFunc(f.DisplayName, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return c, config.Errorf(config.Join(path, "display_name"), "at most 64 printable characters")
	}
	return c, nil
}

// securityKey is a registered WebAuthn credential.
type securityKey struct {
	Name       string              `json:"name"`
	Created    time.Time           `json:"created"`
	LastUsed   time.Time           `json:"last_used,omitzero"`
	Credential webauthn.Credential `json:"credential"`
}

// webauthnCeremony is a registration or login begun and not yet finished.
type webauthnCeremony struct {
	Kind    string               `json:"kind"` // "register" or "login"
	Name    string               `json:"name,omitempty"`
	Expires time.Time            `json:"expires"`
	Session webauthn.SessionData `json:"session"`
}

// webauthnUser is an administrator as the WebAuthn library sees them.
type webauthnUser struct {
	handle []byte
	name   string
	id     string
	keys   []securityKey
}

func (u webauthnUser) WebAuthnID() []byte          { return u.handle }
func (u webauthnUser) WebAuthnName() string        { return u.name }
func (u webauthnUser) WebAuthnDisplayName() string { return u.id }
func (u webauthnUser) WebAuthnCredentials() []webauthn.Credential {
	out := make([]webauthn.Credential, len(u.keys))
	for i, k := range u.keys {
		out[i] = k.Credential
	}
	return out
}

func (s *Server) webauthnRoutes(t *routeTable) {
	admin := t.admin
	admin("POST", api.PathWebAuthnRegisterBegin, api.RoleViewer, "mfa.webauthn.register.begin", s.handleWebAuthnRegisterBegin)
	admin("POST", api.PathWebAuthnRegister, api.RoleViewer, "mfa.webauthn.register", s.handleWebAuthnRegister)
	admin("POST", api.PathWebAuthnLoginBegin, api.RoleViewer, "mfa.webauthn.login.begin", s.handleWebAuthnLoginBegin)
	admin("POST", api.PathWebAuthnLogin, api.RoleViewer, "mfa.webauthn.login", s.handleWebAuthnLogin)
	admin("POST", api.PathWebAuthnRemove, api.RoleViewer, "mfa.webauthn.remove", s.handleWebAuthnRemove)
}

// relyingParty is the WebAuthn library configured for this server;
// without mfa.webauthn the calls answer 404.
func (s *Server) relyingParty() (*webauthn.WebAuthn, error) {
	w := s.mfa.WebAuthn
	if w == nil {
		return nil, errorf(http.StatusNotFound, "security keys are not configured on this control plane (mfa.webauthn)")
	}
	name := w.DisplayName
	if name == "" {
		name = "moat"
	}
	rp, err := webauthn.New(&webauthn.Config{
		RPID: w.RPID, RPDisplayName: name, RPOrigins: w.Origins,
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			UserVerification: protocol.VerificationDiscouraged,
			ResidentKey:      protocol.ResidentKeyRequirementDiscouraged,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("server: webauthn: %w", err)
	}
	return rp, nil
}

// keysOf is the relying party and the caller's second factors with their
// revision: what every security key call starts from.
func (s *Server) keysOf(ctx context.Context, c *caller) (*webauthn.WebAuthn, mfaRecord, int64, error) {
	rp, err := s.relyingParty()
	if err != nil {
		return nil, mfaRecord{}, 0, err
	}
	rec, rev, err := s.loadMFA(ctx, c)
	return rp, rec, rev, err
}

func (s *Server) handleWebAuthnRegisterBegin(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	var req api.WebAuthnRegisterBegin
	if err := decode(r, &req); err != nil {
		return nil, c.ID, err
	}
	if err := s.factorChangeProof(ctx, c, "registering a security key",
		"registering a security key needs a fresh MFA proof: log in with your authenticator's code first"); err != nil {
		return nil, c.ID, err
	}
	if req.Name == "" || len(req.Name) > 64 || strings.IndexFunc(req.Name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return nil, c.ID, errorf(http.StatusBadRequest, "name: 1 to 64 printable characters, to tell your keys apart")
	}
	rp, rec, rev, err := s.keysOf(ctx, c)
	if err != nil {
		return nil, c.ID, err
	}
	if len(rec.Keys) >= maxSecurityKeys {
		return nil, c.ID, errorf(http.StatusConflict, "%d security keys registered already: remove one first", len(rec.Keys))
	}
	for _, k := range rec.Keys {
		if k.Name == req.Name {
			return nil, c.ID, errorf(http.StatusConflict, "a security key named %q is registered already", req.Name)
		}
	}
	if rec.UserHandle == nil {
		rec.UserHandle = make([]byte, 32)
		if _, err := rand.Read(rec.UserHandle); err != nil {
			return nil, c.ID, err
		}
	}
	user := webauthnUser{handle: rec.UserHandle, name: c.Name, id: c.ID, keys: rec.Keys}
	creation, session, err := rp.BeginRegistration(user, webauthn.WithExclusions(webauthn.Credentials(user.WebAuthnCredentials()).CredentialDescriptors()))
	if err != nil {
		return nil, c.ID, fmt.Errorf("server: webauthn: %w", err)
	}
	if err := s.putCeremony(ctx, c, &rec, rev, "register", req.Name, session); err != nil {
		return nil, c.ID, err
	}
	c.note("key", req.Name)
	return creation, c.ID, nil
}

// putCeremony keeps a begun ceremony in the caller's record, replacing
// any earlier one. The library's own expiry is turned off: the ceremony
// expires by this server's clock.
func (s *Server) putCeremony(ctx context.Context, c *caller, rec *mfaRecord, rev int64, kind, name string, session *webauthn.SessionData) error {
	session.Expires = time.Time{}
	rec.Ceremony = &webauthnCeremony{Kind: kind, Name: name, Expires: s.now().Add(webauthnCeremonyTTL).UTC(), Session: *session}
	if err := s.putRev(ctx, prefixMFA+c.Name, rev, rec); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return errorf(http.StatusConflict, "your second factors changed meanwhile: begin again")
		}
		return err
	}
	return nil
}

// takeCeremony removes the caller's ceremony of kind from rec (the caller
// writes rec back), or says why there is none to finish.
func (s *Server) takeCeremony(rec *mfaRecord, kind string) (*webauthnCeremony, error) {
	cer := rec.Ceremony
	if cer == nil || cer.Kind != kind {
		return nil, errorf(http.StatusConflict, "no security key %s is under way: begin one first", kind)
	}
	rec.Ceremony = nil
	if !s.now().Before(cer.Expires) {
		return nil, errorf(http.StatusConflict, "the security key %s begun at %s expired: begin again", kind, cer.Expires.Add(-webauthnCeremonyTTL).Format(time.RFC3339))
	}
	return cer, nil
}

func (s *Server) handleWebAuthnRegister(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	var req api.WebAuthnRegistration
	if err := decodeLimit(r, &req, maxWebAuthnBody); err != nil {
		return nil, c.ID, err
	}
	if live, err := s.sessionLive(ctx, c); err != nil {
		return nil, c.ID, err
	} else if !live {
		return nil, c.ID, &httpError{code: http.StatusUnauthorized, reason: api.ReasonMFARequired,
			msg: "registering a security key needs a fresh MFA proof: log in with your authenticator's code first"}
	}
	rp, rec, rev, err := s.keysOf(ctx, c)
	if err != nil {
		return nil, c.ID, err
	}
	cer, err := s.takeCeremony(&rec, "register")
	if err != nil {
		return nil, c.ID, err
	}
	c.note("key", cer.Name)
	user := webauthnUser{handle: rec.UserHandle, name: c.Name, id: c.ID, keys: rec.Keys}
	cred, verr := func() (*webauthn.Credential, error) {
		parsed, err := protocol.ParseCredentialCreationResponseBytes(req.Credential)
		if err != nil {
			return nil, err
		}
		return rp.CreateCredential(user, cer.Session, parsed)
	}()
	if verr == nil && len(rec.Keys) >= maxSecurityKeys {
		verr = fmt.Errorf("%d security keys registered already", len(rec.Keys))
	}
	if verr == nil {
		rec.Keys = append(rec.Keys, securityKey{Name: cer.Name, Created: s.now().UTC(), Credential: *cred})
	}
	// The ceremony is spent either way.
	if err := s.putRev(ctx, prefixMFA+c.Name, rev, rec); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, c.ID, errorf(http.StatusConflict, "your second factors changed meanwhile: begin again")
		}
		return nil, c.ID, err
	}
	if verr != nil {
		return nil, c.ID, errorf(http.StatusBadRequest, "security key refused: %s", webauthnError(verr))
	}
	c.note("factor", identity.MFAWebAuthn)
	c.note("attestation", cred.AttestationFormat)
	return api.SecurityKey{Name: cer.Name, Created: rec.Keys[len(rec.Keys)-1].Created}, c.ID, nil
}

// webauthnError is what a refused ceremony says: the library's short
// reason, bounded (its details are for the log).
func webauthnError(err error) string {
	msg := err.Error()
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.Details != "" {
		msg = pe.Details
	}
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}

func (s *Server) handleWebAuthnLoginBegin(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	if err := decode(r, &struct{}{}); err != nil {
		return nil, c.ID, err
	}
	rp, rec, rev, err := s.keysOf(ctx, c)
	if err != nil {
		return nil, c.ID, err
	}
	if len(rec.Keys) == 0 {
		return nil, c.ID, errorf(http.StatusNotFound, "admin %q has no security key registered", c.Name)
	}
	if err := s.locked(c, rec); err != nil {
		return nil, c.ID, err
	}
	user := webauthnUser{handle: rec.UserHandle, name: c.Name, id: c.ID, keys: rec.Keys}
	assertion, session, err := rp.BeginLogin(user)
	if err != nil {
		return nil, c.ID, fmt.Errorf("server: webauthn: %w", err)
	}
	if err := s.putCeremony(ctx, c, &rec, rev, "login", "", session); err != nil {
		return nil, c.ID, err
	}
	return assertion, c.ID, nil
}

// locked refuses while the caller's second factors are locked out.
func (s *Server) locked(c *caller, rec mfaRecord) error {
	if s.now().Before(rec.LockedUntil) {
		c.note("locked_until", rec.LockedUntil.UTC().Format(time.RFC3339))
		return errorf(http.StatusTooManyRequests, "MFA locked after %d failed proofs (wrong codes, refused security keys): try again after %s", s.mfa.MaxFailures, rec.LockedUntil.UTC().Format(time.RFC3339))
	}
	return nil
}

// handleWebAuthnLogin trades an assertion of a registered key, with a CSR,
// for an MFA session certificate.
func (s *Server) handleWebAuthnLogin(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	var req api.WebAuthnSessionRequest
	if err := decodeLimit(r, &req, maxWebAuthnBody); err != nil {
		return nil, c.ID, err
	}
	csr, err := parseCSR(req.CSR)
	if err != nil {
		return nil, c.ID, err
	}
	rp, rec, rev, err := s.keysOf(ctx, c)
	if err != nil {
		return nil, c.ID, err
	}
	if err := s.locked(c, rec); err != nil {
		return nil, c.ID, err
	}
	cer, err := s.takeCeremony(&rec, "login")
	if err != nil {
		return nil, c.ID, err
	}
	user := webauthnUser{handle: rec.UserHandle, name: c.Name, id: c.ID, keys: rec.Keys}
	cred, verr := func() (*webauthn.Credential, error) {
		parsed, err := protocol.ParseCredentialRequestResponseBytes(req.Credential)
		if err != nil {
			return nil, err
		}
		return rp.ValidateLogin(user, cer.Session, parsed)
	}()
	if verr == nil && cred.Authenticator.CloneWarning {
		verr = errors.New("the key's signature counter went backwards: it may have been cloned")
	}
	used := -1
	if verr == nil {
		for i, k := range rec.Keys {
			if string(k.Credential.ID) == string(cred.ID) {
				used = i
			}
		}
		if used < 0 {
			verr = errors.New("unknown key")
		}
	}
	if verr != nil {
		rec.Failures++
		c.note("failures", strconv.Itoa(rec.Failures))
		if rec.Failures >= s.mfa.MaxFailures {
			rec.LockedUntil = s.now().Add(s.mfa.Lockout).UTC()
			rec.Failures = 0
			c.note("locked_until", rec.LockedUntil.Format(time.RFC3339))
		}
	} else {
		rec.Failures = 0
		rec.Keys[used].Credential = *cred // the new signature counter
		rec.Keys[used].LastUsed = s.now().UTC()
		c.note("key", rec.Keys[used].Name)
	}
	if err := s.putRev(ctx, prefixMFA+c.Name, rev, rec); err != nil {
		if errors.Is(err, store.ErrConflict) {
			// Another finish of the same ceremony won: this one is a replay.
			return nil, c.ID, errorf(http.StatusUnauthorized, "security key assertion refused: the ceremony was already used")
		}
		return nil, c.ID, err
	}
	if verr != nil {
		return nil, c.ID, errorf(http.StatusUnauthorized, "security key assertion refused: %s", webauthnError(verr))
	}
	resp, err := s.issueMFASession(ctx, c, csr, identity.MFAWebAuthn)
	return resp, c.ID, err
}

// handleWebAuthnRemove removes one of the caller's keys, with a fresh
// MFA proof.
func (s *Server) handleWebAuthnRemove(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	var req api.WebAuthnRegisterBegin
	if err := decode(r, &req); err != nil {
		return nil, c.ID, err
	}
	if err := s.factorChangeProof(ctx, c, "removing a security key", "removing a security key needs a fresh MFA proof"); err != nil {
		return nil, c.ID, err
	}
	rec, rev, err := s.loadMFA(ctx, c)
	if err != nil {
		return nil, c.ID, err
	}
	kept := rec.Keys[:0]
	for _, k := range rec.Keys {
		if k.Name != req.Name {
			kept = append(kept, k)
		}
	}
	if len(kept) == len(rec.Keys) {
		return nil, c.ID, errorf(http.StatusNotFound, "no security key named %q", trimForError(req.Name))
	}
	rec.Keys = kept
	if err := s.putRev(ctx, prefixMFA+c.Name, rev, rec); err != nil {
		return nil, c.ID, err
	}
	c.note("key", req.Name)
	return struct{}{}, c.ID, nil
}
