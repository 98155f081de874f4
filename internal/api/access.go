package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/libp2p/go-yamux/v5"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/identity"
)

// MFA and break-glass access paths. The admin ones go through the same
// authorization as every admin call; the node ones need a node SVID.
const (
	PathMFA        = "/v1/admin/mfa"
	PathMFAEnroll  = "/v1/admin/mfa/enroll"
	PathMFAConfirm = "/v1/admin/mfa/confirm"
	PathMFASession = "/v1/admin/mfa/session"
	PathMFALogout  = "/v1/admin/mfa/logout"
	PathMFAReset   = "/v1/admin/mfa/reset"
	PathMFAApprove = "/v1/admin/mfa/approve"

	// Security keys (WebAuthn), for the dashboard.
	PathWebAuthnRegisterBegin = "/v1/admin/mfa/webauthn/register/begin"
	PathWebAuthnRegister      = "/v1/admin/mfa/webauthn/register"
	PathWebAuthnLoginBegin    = "/v1/admin/mfa/webauthn/login/begin"
	PathWebAuthnLogin         = "/v1/admin/mfa/webauthn/login"
	PathWebAuthnRemove        = "/v1/admin/mfa/webauthn/remove"
	PathAccess                = "/v1/admin/access"
	PathAccessApprov          = "/v1/admin/access/approve"
	PathAccessRevoke          = "/v1/admin/access/revoke"
	PathAccessCert            = "/v1/admin/access/cert"
	PathAccessDial            = "/v1/admin/access/connect"
	PathAccessRec             = "/v1/admin/access/recording"

	PathNodeAccessTunnel = "/v1/node/access/tunnel"
	PathNodeAccessEvent  = "/v1/node/access/event"
	PathNodeAccessRec    = "/v1/node/access/recording"
	PathNodeSSHHost      = "/v1/node/access/hostcert"

	// PathPeerAccessDial carries an administrator's connection from the
	// server they reached to the one holding the node's tunnel; only a
	// server of the cluster may call it.
	PathPeerAccessDial = "/v1/peer/access/connect"
	// PathPeerRecording answers a recording this server holds to another
	// server of the cluster (?session=ID).
	PathPeerRecording = "/v1/peer/access/recording"
)

// ReasonMFARequired is the Reason of an answer refusing a call for want of
// a fresh second factor: the client then asks for a code and retries with
// an MFA session certificate.
const ReasonMFARequired = "mfa_required"

// ReasonMFAEnrol refuses a call that needs a fresh MFA proof from an
// administrator who has no second factor yet: no code can help.
const ReasonMFAEnrol = "mfa_enrol"

// ReasonMFAStale refuses a grant certificate (access.cert) under a live
// MFA session that began longer ago than the server takes for one
// (access.session_mfa): the client asks for a code, as for
// ReasonMFARequired, and retries with the new session.
const ReasonMFAStale = "mfa_stale"

// ReasonEarlierAccount refuses a certificate issued to an earlier account
// of the caller's name: one removed since, whose name was given to a new
// account that inherits nothing of it.
const ReasonEarlierAccount = "earlier_account"

// Headers of an access connection (PathAccessDial).
const (
	HeaderGrant = "Moat-Grant"
	HeaderALPN  = "Moat-Protocol"
	// HeaderRelayHello carries an encoded RelayHello on PathPeerAccessDial.
	HeaderRelayHello = "Moat-Relay-Hello"
	// HeaderMaxRecording answers PathNodeAccessTunnel with the largest
	// recording, in bytes, the server takes: the agent ends a session
	// whose recording reaches it, rather than keep one the control plane
	// would refuse for ever.
	HeaderMaxRecording = "Moat-Max-Recording"
)

// ALPN protocols an administrator's client offers a node's agent inside a
// relayed access connection, one per grant mode.
const (
	ALPNAccessSSH     = "moat-access-ssh/1"
	ALPNAccessForward = "moat-access-forward/1"
)

// ALPNOf is the protocol a grant of mode is used with.
func ALPNOf(mode string) string {
	if mode == ModeForward {
		return ALPNAccessForward
	}
	return ALPNAccessSSH
}

// MFAStatus describes the caller's second factors.
type MFAStatus struct {
	Admin string `json:"admin"`
	// TOTP is when a TOTP authenticator was enrolled; zero if none is.
	TOTP time.Time `json:"totp,omitzero"`
	// AwaitingApproval is set while a first enrolment waits for another
	// administrator's approval (the server's first_enrolment: approved).
	AwaitingApproval bool `json:"awaiting_approval,omitempty"`
	// SecurityKeys are the WebAuthn credentials registered.
	SecurityKeys []SecurityKey `json:"security_keys,omitempty"`
	// LockedUntil is set while failed codes keep new ones from being tried.
	LockedUntil time.Time `json:"locked_until,omitzero"`
	// Session is when the caller's MFA session certificate ends, if the
	// call was made with one.
	Session time.Time `json:"session,omitzero"`
	// Required lists the calls that need a fresh MFA proof from the caller.
	Required []string `json:"required,omitempty"`
}

// MFAEnrollment is a new TOTP secret, shown once: the authenticator app
// reads the URI (as a QR code), and the enrolment takes effect once a code
// from it is confirmed (PathMFAConfirm) before Expires.
type MFAEnrollment struct {
	URI     string    `json:"uri"`
	Secret  string    `json:"secret"` // base32, as in the URI
	Expires time.Time `json:"expires"`
}

// MFACode carries a one-time code.
type MFACode struct {
	Code string `json:"code"`
}

// MFASessionRequest trades a one-time code for an MFA session certificate
// over CSR.
type MFASessionRequest struct {
	Code string `json:"code"`
	CSR  []byte `json:"csr"`
}

// SecurityKey is a registered WebAuthn credential, as status shows it.
type SecurityKey struct {
	Name     string    `json:"name"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used,omitzero"`
}

// WebAuthnRegisterBegin starts registering a security key under Name
// (PathWebAuthnRegisterBegin; on PathWebAuthnRemove, the key to remove).
// The answer is the options of navigator.credentials.create() (WebAuthn's
// CredentialCreation, binary fields base64url).
type WebAuthnRegisterBegin struct {
	Name string `json:"name"`
}

// WebAuthnRegistration finishes a registration: Credential is the
// browser's PublicKeyCredential from navigator.credentials.create(), as
// JSON (binary fields base64url, as PublicKeyCredential.toJSON() gives).
type WebAuthnRegistration struct {
	Credential json.RawMessage `json:"credential"`
}

// WebAuthnSessionRequest trades an assertion for an MFA session
// certificate over CSR: Credential is the PublicKeyCredential from
// navigator.credentials.get() with the options PathWebAuthnLoginBegin
// answered, as JSON. The answer is a CertResponse, as for a TOTP code.
type WebAuthnSessionRequest struct {
	CSR        []byte          `json:"csr"`
	Credential json.RawMessage `json:"credential"`
}

// MFAReset names an administrator whose second factors are removed (or,
// on PathMFAApprove, whose first enrolment is approved).
type MFAReset struct {
	Name string `json:"name"`
}

// Access grant modes.
const (
	ModeShell   = "shell"   // an interactive shell (or commands, scp, sftp) on a node, over SSH
	ModeForward = "forward" // one service's port, forwarded from the administrator's machine
)

// Grant states.
const (
	GrantPending  = "pending"
	GrantActive   = "active"
	GrantExpired  = "expired"
	GrantRevoked  = "revoked"
	GrantDeclined = "declined"
)

// AccessRequest asks for a break-glass grant.
type AccessRequest struct {
	Node    string        `json:"node,omitempty"`
	Mode    string        `json:"mode"`
	Service string        `json:"service,omitempty"`
	Port    int           `json:"port,omitempty"`
	Reason  string        `json:"reason"`
	For     time.Duration `json:"for"`
}

// Limits of an access request.
const (
	MaxReason = 256
)

// Approval is one administrator's approval of a grant.
type Approval struct {
	By string `json:"by"`
	// Account is the approver's account ID (see Grant.RequesterAccount).
	Account string    `json:"account,omitempty"`
	At      time.Time `json:"at"`
}

// Grant is a break-glass access grant: bound to the administrator who
// asked, one node, one mode (and for a forward, one service and port), and
// an expiry counted from its activation.
type Grant struct {
	ID        string `json:"id"`
	Requester string `json:"requester"` // SPIFFE ID of the admin
	// RequesterAccount is the requester's account ID: a name outlives
	// its account (removed, then made again for someone else perhaps),
	// so the grant is the account's, not the name's. "" for a grant
	// recorded before accounts carried an ID, which is no account's.
	RequesterAccount string        `json:"requester_account,omitempty"`
	Node             string        `json:"node"`
	Mode             string        `json:"mode"`
	Service          string        `json:"service,omitempty"`
	Port             int           `json:"port,omitempty"`
	Reason           string        `json:"reason"`
	For              time.Duration `json:"for"`
	Requested        time.Time     `json:"requested"`
	// Needed is how many approvals, by administrators other than the
	// requester, activate the grant.
	Needed    int        `json:"needed"`
	Approvals []Approval `json:"approvals,omitempty"`
	// Starts and Expires bound the grant once active.
	Starts  time.Time `json:"starts,omitzero"`
	Expires time.Time `json:"expires,omitzero"`
	// PendingUntil is when an unapproved request lapses.
	PendingUntil time.Time `json:"pending_until,omitzero"`
	Revoked      time.Time `json:"revoked,omitzero"`
	RevokedBy    string    `json:"revoked_by,omitempty"`
}

// State is the grant's state at now.
func (g Grant) State(now time.Time) string {
	switch {
	case !g.Revoked.IsZero():
		return GrantRevoked
	case g.Starts.IsZero() && now.After(g.PendingUntil):
		return GrantDeclined
	case g.Starts.IsZero():
		return GrantPending
	case !now.Before(g.Expires):
		return GrantExpired
	}
	return GrantActive
}

// Active reports whether the grant may carry sessions at now.
func (g Grant) Active(now time.Time) bool { return g.State(now) == GrantActive }

// GrantListing is a grant with its state and sessions, as access list shows it.
type GrantListing struct {
	Grant
	State    string          `json:"state"`
	Sessions []AccessSession `json:"sessions,omitempty"`
}

// GrantRef names a grant.
type GrantRef struct {
	ID string `json:"id"`
}

// RevokeAnswer answers a grant revocation.
type RevokeAnswer struct {
	Grant GrantListing `json:"grant"`
	// Ended counts the live sessions the revocation ended; Live those still
	// reported open when the answer was sent.
	Ended int `json:"ended"`
	Live  int `json:"live"`
}

// AccessCertRequest asks for the credentials of a grant: an X.509
// certificate over CSR for the agent's mutual TLS and, for a shell grant,
// an SSH user certificate over SSHKey (authorized_keys form).
type AccessCertRequest struct {
	Grant  string `json:"grant"`
	CSR    []byte `json:"csr"`
	SSHKey string `json:"ssh_key,omitempty"`
}

// AccessCert answers an AccessCertRequest.
type AccessCert struct {
	Chain   [][]byte `json:"chain"`
	Bundle  [][]byte `json:"bundle"`
	SSHCert string   `json:"ssh_cert,omitempty"` // authorized_keys form
	HostCA  string   `json:"host_ca,omitempty"`  // SSH host CA key, authorized_keys form
	// Expires is when both certificates end: the server's
	// access.session_cert_ttl after issuance, or the grant's end if
	// sooner. They open sessions until then; the sessions last longer.
	Expires time.Time `json:"expires"`
	Grant   Grant     `json:"grant"`
}

// AccessSession is one session of a grant, as its agent reported it.
type AccessSession struct {
	ID    string `json:"id"`
	Grant string `json:"grant"`
	Admin string `json:"admin"`
	// AdminAccount is the account ID of the administrator who held the
	// session (its grant's RequesterAccount), set by the control plane.
	AdminAccount string    `json:"admin_account,omitempty"`
	Node         string    `json:"node"`
	Mode         string    `json:"mode"`
	Detail       string    `json:"detail,omitempty"` // "shell", "exec", "sftp", or the forwarded service:port
	Remote       string    `json:"remote,omitempty"` // the administrator's address as the server saw it
	Started      time.Time `json:"started"`
	Ended        time.Time `json:"ended,omitzero"`
	// EndReason says why it ended ("exit", "revoked", "expired", …).
	EndReason string `json:"end_reason,omitempty"`
	// Recording is the SHA-256 (hex) of the session's asciicast recording,
	// as the agent computed it when the session ended; the audit entry of
	// the end carries it too. Empty for a forward, whose bytes are in the
	// flow records.
	Recording string `json:"recording,omitempty"`
	// Stored says whether the control plane holds the recording, and
	// StoredOn which server of the cluster keeps it (in its data
	// directory; the others fetch it from there).
	Stored   bool   `json:"stored,omitempty"`
	StoredOn string `json:"stored_on,omitempty"`
	BytesIn  int64  `json:"bytes_in,omitempty"`
	BytesOut int64  `json:"bytes_out,omitempty"`
}

// AccessEvent is an agent's report of a session starting or ending.
type AccessEvent struct {
	Kind    string        `json:"kind"` // "start" or "end"
	Session AccessSession `json:"session"`
}

// RelayHello is the relay's preamble: the first line the control plane
// writes on a relayed stream to an agent, before the administrator's
// bytes, and the header (HeaderRelayHello) with which the server the
// administrator reached asks the server holding the node's tunnel to carry
// the connection on (PathPeerAccessDial). It names; it proves nothing: the
// agent admits the administrator by the grant certificate inside the
// relayed TLS.
type RelayHello struct {
	Session string `json:"session"`
	Grant   string `json:"grant"`
	Admin   string `json:"admin"`
	Remote  string `json:"remote,omitempty"`
	ALPN    string `json:"alpn"`
}

// MaxRelayHello bounds an encoded RelayHello.
const MaxRelayHello = 1024

// Encode is h as one line of JSON, without the newline.
func (h RelayHello) Encode() ([]byte, error) {
	if err := h.validate(); err != nil {
		return nil, err
	}
	return json.Marshal(h)
}

// ParseRelayHello reads an encoded RelayHello (a trailing newline is
// allowed), strictly: unknown fields, oversized input and malformed values
// are errors.
func ParseRelayHello(b []byte) (RelayHello, error) {
	var h RelayHello
	if len(b) > MaxRelayHello {
		return h, fmt.Errorf("api: relay hello of %d bytes: at most %d", len(b), MaxRelayHello)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return RelayHello{}, fmt.Errorf("api: relay hello: %w", err)
	}
	if dec.More() {
		return RelayHello{}, errors.New("api: relay hello: trailing data")
	}
	if err := h.validate(); err != nil {
		return RelayHello{}, err
	}
	return h, nil
}

func (h RelayHello) validate() error {
	if len(h.Session) != 24 || !isLowerHex(h.Session) {
		return errors.New("api: relay hello: session: want 24 lowercase hex digits")
	}
	if err := identity.ValidGrantID(h.Grant); err != nil {
		return fmt.Errorf("api: relay hello: %w", err)
	}
	id, err := spiffeid.FromString(h.Admin)
	if err != nil {
		return fmt.Errorf("api: relay hello: admin: %w", err)
	}
	if kind, _, ok := identity.Parse(id); !ok || kind != identity.KindAdmin {
		return errors.New("api: relay hello: admin: not an administrator's SPIFFE ID")
	}
	if h.ALPN != ALPNAccessSSH && h.ALPN != ALPNAccessForward {
		return fmt.Errorf("api: relay hello: protocol: want %q or %q", ALPNAccessSSH, ALPNAccessForward)
	}
	if len(h.Remote) > 128 || strings.IndexFunc(h.Remote, func(r rune) bool { return r < 0x21 || r > 0x7e }) >= 0 {
		return errors.New("api: relay hello: remote: at most 128 printable ASCII characters")
	}
	return nil
}

func isLowerHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// SSHHostCertRequest asks for an SSH host certificate for the node's
// in-process SSH server.
type SSHHostCertRequest struct {
	Key string `json:"key"` // authorized_keys form
}

// SSHHostCert answers it.
type SSHHostCert struct {
	Cert   string `json:"cert"`
	UserCA string `json:"user_ca"` // the SSH user CA the agent trusts
}

// RecordingUpload heads an agent's upload of a finished recording; the
// asciicast bytes follow as the request body after this JSON line.
type RecordingUpload struct {
	Session AccessSession `json:"session"`
	Size    int64         `json:"size"`
}

// MFALogout answers PathMFALogout: how many MFA sessions of the caller it
// ended.
type MFALogout struct {
	Ended int `json:"ended"`
}

// AccessMuxConfig is the yamux configuration of a node's access tunnel
// (PathNodeAccessTunnel), the same on the agent's and the server's side:
// pings every 15 s keep it open through idle proxies and find a dead
// peer, and a write stuck for 30 s closes it.
func AccessMuxConfig() *yamux.Config {
	c := yamux.DefaultConfig()
	c.LogOutput = io.Discard
	c.KeepAliveInterval = 15 * time.Second
	c.ConnectionWriteTimeout = 30 * time.Second
	return c
}
