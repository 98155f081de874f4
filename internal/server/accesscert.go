package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/crypto/ssh"

	"moat/internal/api"
	"moat/internal/identity"
	"moat/internal/store"
)

// sshCAs are the control plane's SSH certificate authorities: one signs
// administrators' user certificates for grants, the other the agents'
// host certificates. Their private keys are sealed in the store.
type sshCAs struct {
	User, Host ssh.Signer
}

// sshCARecord is keySSHCA's value.
type sshCARecord struct {
	User []byte `json:"user"` // sealed ed25519 seed
	Host []byte `json:"host"`
}

// hostCertTTL is the life of an agent's SSH host certificate; agents ask
// for a new one every time their tunnel opens.
const hostCertTTL = 7 * 24 * time.Hour

// sshCA loads the SSH CAs, making them on first use. Two servers racing
// to make them agree on the one written first.
func (s *Server) sshCA(ctx context.Context) (*sshCAs, error) {
	for range 3 {
		var rec sshCARecord
		err := getJSON(ctx, s.st, keySSHCA, &rec)
		if err == nil {
			return s.openSSHCA(rec)
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		for _, k := range []*[]byte{&rec.User, &rec.Host} {
			_, priv, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return nil, err
			}
			if *k, err = s.sealSecret(keySSHCA, priv.Seed()); err != nil {
				return nil, err
			}
		}
		if err := s.putRev(ctx, keySSHCA, 0, rec); err != nil && !errors.Is(err, store.ErrConflict) {
			return nil, err
		}
	}
	return nil, errors.New("server: SSH CA: the store keeps changing")
}

func (s *Server) openSSHCA(rec sshCARecord) (*sshCAs, error) {
	var out sshCAs
	for _, k := range []struct {
		sealed []byte
		to     *ssh.Signer
	}{{rec.User, &out.User}, {rec.Host, &out.Host}} {
		seed, err := s.openSecret(keySSHCA, k.sealed)
		if err != nil {
			return nil, err
		}
		if len(seed) != ed25519.SeedSize {
			return nil, errors.New("server: SSH CA: stored key has the wrong size")
		}
		signer, err := ssh.NewSignerFromKey(ed25519.NewKeyFromSeed(seed))
		if err != nil {
			return nil, fmt.Errorf("server: SSH CA: %w", err)
		}
		*k.to = signer
	}
	return &out, nil
}

func authorizedKey(k ssh.PublicKey) string {
	b := ssh.MarshalAuthorizedKey(k)
	return string(b[:len(b)-1])
}

// handleAccessCert issues the credentials of one session under an active
// grant to its requester: an X.509 certificate marked with the grant (for
// the agent's mutual TLS), and for a shell grant an SSH user certificate
// whose only principal is the grant. Both live access.session_cert_ttl,
// never past the grant's end: the agent admits a session only while they
// are valid, so a copy taken from the administrator's machine opens
// nothing after that, and every new session comes back here, where the
// call needs a live MFA session (access.cert is in DefaultMFAActions),
// and with access.session_mfa one begun for it (sessionFresh).
func (s *Server) handleAccessCert(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	var req api.AccessCertRequest
	if err := decode(r, &req); err != nil {
		return nil, "", err
	}
	g, _, err := s.loadGrant(ctx, req.Grant)
	if err != nil {
		return nil, trimForError(req.Grant), err
	}
	now := s.now()
	switch {
	case !holdsGrant(c, g):
		return nil, g.ID, notRequester(c, g)
	case !g.Active(now):
		// Credentials asked for outside the grant's time, as a relay
		// would be: detection counts both.
		c.note("outside_grant", g.State(now))
		return nil, g.ID, errorf(http.StatusForbidden, "grant %s is %s", g.ID, g.State(now))
	}
	if err := s.sessionFresh(ctx, c); err != nil {
		return nil, g.ID, err
	}
	csr, err := parseCSR(req.CSR)
	if err != nil {
		return nil, g.ID, err
	}
	pol, err := identity.GrantPolicy(g.ID)
	if err != nil {
		return nil, g.ID, err
	}
	acct, err := identity.AccountPolicy(c.Account)
	if err != nil {
		return nil, g.ID, err
	}
	id, err := identity.AdminID(s.td, c.Name)
	if err != nil {
		return nil, g.ID, err
	}
	ttl := min(s.cfg.Access.SessionCertTTL, g.Expires.Sub(now))
	a := s.CA()
	chain, err := a.SignWithPolicies(csr.PublicKey, id, ttl, []x509.OID{pol, acct})
	if err != nil {
		return nil, g.ID, errorf(http.StatusBadRequest, "csr: %v", err)
	}
	out := api.AccessCert{Chain: api.DERs(chain), Bundle: api.DERs(a.Bundle().X509Authorities()), Expires: chain[0].NotAfter, Grant: g}
	c.note("serial", identity.SerialHex(chain[0].SerialNumber))
	c.note("not_after", chain[0].NotAfter.UTC().Format(time.RFC3339))
	if req.SSHKey != "" {
		if g.Mode != api.ModeShell {
			return nil, g.ID, errorf(http.StatusBadRequest, "an SSH certificate is for a shell grant; grant %s forwards %s:%d", g.ID, g.Service, g.Port)
		}
		if len(req.SSHKey) > 8192 {
			return nil, g.ID, errorf(http.StatusBadRequest, "ssh_key: too long")
		}
		pub, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(req.SSHKey))
		if err != nil || len(rest) > 0 {
			return nil, g.ID, errorf(http.StatusBadRequest, "ssh_key: not one public key in authorized_keys form")
		}
		if _, isCert := pub.(*ssh.Certificate); isCert {
			return nil, g.ID, errorf(http.StatusBadRequest, "ssh_key: a plain public key, not a certificate")
		}
		cas, err := s.sshCA(ctx)
		if err != nil {
			return nil, g.ID, err
		}
		cert := &ssh.Certificate{
			Key:             pub,
			CertType:        ssh.UserCert,
			KeyId:           fmt.Sprintf("moat grant %s for %s", g.ID, c.ID),
			ValidPrincipals: []string{g.ID},
			ValidAfter:      uint64(now.Add(-30 * time.Second).Unix()),
			ValidBefore:     uint64(chain[0].NotAfter.Unix()),
			Permissions: ssh.Permissions{Extensions: map[string]string{
				"permit-pty": "",
			}},
		}
		if err := cert.SignCert(rand.Reader, cas.User); err != nil {
			return nil, g.ID, fmt.Errorf("server: sign SSH certificate: %w", err)
		}
		out.SSHCert = authorizedKey(cert)
		out.HostCA = authorizedKey(cas.Host.PublicKey())
		c.note("ssh_serial", fmt.Sprint(cert.Serial))
	}
	return out, g.ID, nil
}

// sessionFresh notes the caller's MFA session (serial and age) on the
// issuance's audit entry and, under access.session_mfa, refuses one issued
// more than access.session_cert_ttl ago, or none: each session then needs
// a second factor proven for it, which the client asks for on
// api.ReasonMFAStale as on api.ReasonMFARequired.
func (s *Server) sessionFresh(ctx context.Context, c *caller) error {
	live, err := s.sessionLive(ctx, c)
	if err != nil {
		return err
	}
	if !live {
		if !s.cfg.Access.SessionMFA {
			return nil // checkFactor decided that none is needed
		}
		return s.factorRefusal(ctx, c, "access.cert")
	}
	age := max(s.now().Sub(c.mfaIssued), 0)
	c.note("mfa_serial", identity.SerialHex(c.Leaf.SerialNumber))
	if c.mfaIssued.IsZero() {
		c.note("mfa_age", "unknown")
	} else {
		c.note("mfa_age", age.Round(time.Second).String())
	}
	window := s.cfg.Access.SessionCertTTL
	if !s.cfg.Access.SessionMFA || s.sessionBegunWithin(c, window) {
		return nil
	}
	return &httpError{code: http.StatusUnauthorized, reason: api.ReasonMFAStale,
		msg: fmt.Sprintf("each session's grant certificate needs an MFA session begun for it, at most %s before (access.session_mfa): "+
			"yours began %s; give a new code (\"moat admin mfa login\")", window, s.sessionBegan(c))}
}

// handleSSHHostCert signs the calling agent's SSH host key for its node
// name, and tells it which user CA to trust.
func (s *Server) handleSSHHostCert(w http.ResponseWriter, r *http.Request, c *caller) {
	var req api.SSHHostCertRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if len(req.Key) > 8192 {
		writeError(w, errorf(http.StatusBadRequest, "key: too long"))
		return
	}
	pub, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(req.Key))
	if err != nil || len(rest) > 0 {
		writeError(w, errorf(http.StatusBadRequest, "key: not one public key in authorized_keys form"))
		return
	}
	if _, isCert := pub.(*ssh.Certificate); isCert {
		writeError(w, errorf(http.StatusBadRequest, "key: a plain public key, not a certificate"))
		return
	}
	cas, err := s.sshCA(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	now := s.now()
	cert := &ssh.Certificate{
		Key: pub, CertType: ssh.HostCert, KeyId: "moat node " + c.Name,
		ValidPrincipals: []string{c.Name},
		ValidAfter:      uint64(now.Add(-30 * time.Second).Unix()),
		ValidBefore:     uint64(now.Add(hostCertTTL).Unix()),
	}
	if err := cert.SignCert(rand.Reader, cas.Host); err != nil {
		writeError(w, fmt.Errorf("server: sign host certificate: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, api.SSHHostCert{Cert: authorizedKey(cert), UserCA: authorizedKey(cas.User.PublicKey())})
}

var _ = json.Marshal
