package server

import (
	"slices"
	"strings"
	"time"

	"moat/internal/api"
	"moat/internal/config"
	"moat/internal/identity"
)

// MFA defaults.
const (
	DefaultMFASessionTTL  = 15 * time.Minute
	MaxMFASessionTTL      = 12 * time.Hour
	DefaultMFAMaxFailures = 5
	DefaultMFALockout     = 5 * time.Minute
)

// DefaultMFAActions are the calls that need a fresh MFA proof when the
// configuration names none: what changes who may reach what, who may
// administer, and the keys; and what hands out a break-glass session's
// contents: its credentials (access.cert, which every session takes anew,
// so that each needs a live MFA session: see AccessConfig.SessionCertTTL)
// and its recording (access.recording), which holds whatever was typed and
// shown in a root shell.
//
// Who may reach what is the policy and also who holds each identity the
// policy names: a join token makes whoever spends it the node it names (an
// existing node's too: a join replaces its pinned key), and a service's
// registration says which node may have its SVIDs signed. So token.create,
// svc.register and svc.deregister are on the list with policy.apply;
// without them a stolen enrolment certificate would join a machine of its
// own as a node and move a service there, taking the service's identity
// and every path the policy gives it, with no second factor.
var DefaultMFAActions = []string{
	"policy.apply", "token.create", "svc.register", "svc.deregister",
	"revoke", "ca.rotate", "admin.create", "admin.remove", "mfa.reset",
	"access.request", "access.approve", "access.revoke", "access.cert", "access.recording",
	"keys.rotate", "backup.create", "mfa.approve",
}

// First enrolments (MFAConfig.FirstEnrolment).
const (
	// FirstEnrolSelf: an administrator without a second factor enrols one
	// with their enrolment certificate alone. Trust on first use: whoever
	// first holds that certificate (as handed over by "moat admin create",
	// or written by "moat server init") binds the authenticator.
	FirstEnrolSelf = "self"
	// FirstEnrolApproved: a first enrolment (an administrator with no
	// second factor, a new one or one whose factors were reset) takes
	// effect only once another administrator, with an MFA session of
	// their own, approves it ("moat admin mfa approve"), or someone with
	// the server's data directory and KEK does ("moat server
	// mfa-approve"). A stolen enrolment certificate then cannot bind its
	// thief's authenticator unnoticed.
	FirstEnrolApproved = "approved"
)

// MFAConfig decides which administrators must prove a second factor
// afresh, and for which calls. The zero MFAConfig requires it of every role
// for DefaultMFAActions, with 15-minute sessions.
type MFAConfig struct {
	// Off lets the enrolment credential alone make every call.
	Off bool
	// Roles that must prove MFA; nil means every role.
	Roles []string
	// Actions needing MFA, by call name; "family.*" names every call of a
	// family. Nil means DefaultMFAActions.
	Actions []string
	// SessionTTL is the life of an MFA session certificate; zero means 15m.
	SessionTTL time.Duration
	// MaxFailures wrong codes in a row lock an administrator's second
	// factor for Lockout; zero means 5 and 5m.
	MaxFailures int
	Lockout     time.Duration
	// FirstEnrolment is FirstEnrolSelf or FirstEnrolApproved; empty
	// means FirstEnrolSelf.
	FirstEnrolment string
	// WebAuthn configures security keys; nil offers none.
	WebAuthn *WebAuthnConfig
}

func (c *MFAConfig) defaults() {
	if c.Actions == nil {
		c.Actions = DefaultMFAActions
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = DefaultMFASessionTTL
	}
	if c.MaxFailures == 0 {
		c.MaxFailures = DefaultMFAMaxFailures
	}
	if c.Lockout == 0 {
		c.Lockout = DefaultMFALockout
	}
	if c.FirstEnrolment == "" {
		c.FirstEnrolment = FirstEnrolSelf
	}
}

// Requires reports whether role must prove MFA for action, once defaults
// are applied (a zero Actions requires nothing).
func (c *MFAConfig) Requires(role, action string) bool {
	if c.Off {
		return false
	}
	if c.Roles != nil && !slices.Contains(c.Roles, role) {
		return false
	}
	for _, a := range c.Actions {
		if a == action {
			return true
		}
		if fam, ok := strings.CutSuffix(a, ".*"); ok && strings.HasPrefix(action, fam+".") {
			return true
		}
	}
	return false
}

// AccessConfig governs break-glass grants.
type AccessConfig struct {
	// Approvals is how many approvals by other administrators a grant
	// needs, by target: "node:NAME", "service:NAME" or "*". A service's
	// entry wins over its node's, a node's over "*"; a target none names
	// needs 1 (the two-person rule). 0 lets a grant start at once.
	Approvals map[string]int
	// MaxFor caps a grant's duration; zero means 8h.
	MaxFor time.Duration
	// PendingFor is how long a request waits for approval; zero means 1h.
	PendingFor time.Duration
	// RequestRole and ApproveRole are the least roles that may request and
	// approve grants; empty means operator and admin.
	RequestRole, ApproveRole string
	// RecordingRole is the least role that may read every session's
	// recording; below it an administrator reads only the recordings of
	// sessions they held or whose grant they approved. Empty means admin.
	RecordingRole string
	// IndependentApprovers refuses an approval by an account the requester
	// made ("moat admin create"), directly or through accounts it made: an
	// administrator who may create administrators could otherwise be their
	// own second person. Accounts the server's host makes ("moat server
	// admin-recover") are nobody's. Off, such approvals are taken and
	// detection reports them (self_approval).
	IndependentApprovers bool
	// RecordingsDir holds the session recordings agents send; empty keeps
	// them in the store's directory under "recordings" only when set by
	// the caller (moat server sets DATA_DIR/recordings). A server without
	// one refuses recordings, so agents keep them spooled.
	RecordingsDir string
	// Retention is how long recordings are kept; zero means 90 days.
	Retention time.Duration
	// MaxRecording bounds one recording; zero means 64 MiB.
	MaxRecording int64
	// UploadGrace and UploadMinRate bound how long a recording upload
	// holds one of the server's few upload slots: its bytes must keep
	// arriving at UploadMinRate bytes a second, counted after
	// UploadGrace from its start (the header line included), or it is
	// refused and the slot freed, for the agent to send it again later.
	// Zero means DefaultUploadGrace and DefaultUploadMinRate.
	UploadGrace   time.Duration
	UploadMinRate int64
	// SessionCertTTL is the life of the certificates access.cert issues
	// (the X.509 one the agent's mutual TLS admits, and a shell's SSH
	// one), capped by the grant's end; zero means
	// DefaultSessionCertTTL. The agent admits a new session only while
	// they are valid, and a session it admitted lasts until the grant
	// ends: so they are needed for seconds, from issuance to the
	// handshake, and a copy of them taken from the administrator's
	// machine opens nothing once they expire. Each new session takes new
	// ones, which access.cert issues only under a live MFA session.
	SessionCertTTL time.Duration
	// SessionMFA asks a proof of the second factor for every session:
	// access.cert issues only under an MFA session issued at most
	// SessionCertTTL before (whatever MFAConfig exempts), so that a copy
	// of the administrator's enrolment certificate and MFA session
	// certificate takes no grant certificate once that short window has
	// passed. Off, any live MFA session will do.
	SessionMFA bool
}

// Access defaults.
const (
	DefaultGrantMax     = 8 * time.Hour
	DefaultGrantPending = time.Hour
	DefaultRetention    = 90 * 24 * time.Hour
	DefaultMaxRecording = 64 << 20
	// DefaultUploadGrace and DefaultUploadMinRate: a node sending its
	// recording at 128 kbit/s or faster is never cut off, and one that
	// trickles holds its slot for seconds, not for as long as it likes (a
	// slow-loris body; Apache's mod_reqtimeout bounds bodies alike).
	DefaultUploadGrace   = 20 * time.Second
	DefaultUploadMinRate = 16 << 10
	// DefaultSessionCertTTL: a client asks for a session's certificates
	// right before its handshake, so a minute covers a slow relay and a
	// modest clock difference between the control plane and the node
	// (the certificates' validity starts a minute early), and leaves
	// "moat access ssh-cert" time to hand them to ssh(1); it is the
	// per-session certificate life of Teleport's per-session MFA.
	DefaultSessionCertTTL = time.Minute
	// MaxSessionCertTTL bounds access.session_cert_ttl: longer, a copy of
	// the certificates would again outlive the moment they are for.
	MaxSessionCertTTL = 10 * time.Minute
)

func (c *AccessConfig) defaults() {
	if c.MaxFor == 0 {
		c.MaxFor = DefaultGrantMax
	}
	if c.PendingFor == 0 {
		c.PendingFor = DefaultGrantPending
	}
	if c.RequestRole == "" {
		c.RequestRole = api.RoleOperator
	}
	if c.ApproveRole == "" {
		c.ApproveRole = api.RoleAdmin
	}
	if c.RecordingRole == "" {
		c.RecordingRole = api.RoleAdmin
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.MaxRecording == 0 {
		c.MaxRecording = DefaultMaxRecording
	}
	if c.UploadGrace == 0 {
		c.UploadGrace = DefaultUploadGrace
	}
	if c.UploadMinRate == 0 {
		c.UploadMinRate = DefaultUploadMinRate
	}
	if c.SessionCertTTL == 0 {
		c.SessionCertTTL = DefaultSessionCertTTL
	}
}

// approvalsFor is how many approvals a grant on node (and service) needs.
func (c *AccessConfig) approvalsFor(node, service string) int {
	if service != "" {
		if n, ok := c.Approvals["service:"+service]; ok {
			return n
		}
	}
	if n, ok := c.Approvals["node:"+node]; ok {
		return n
	}
	if n, ok := c.Approvals["*"]; ok {
		return n
	}
	return 1
}

// MFAFile is the "mfa" section of moat server's configuration file.
type MFAFile struct {
	// Required defaults to true.
	Required    *bool           `yaml:"required"`
	Roles       []string        `yaml:"roles"`
	Actions     []string        `yaml:"actions"`
	SessionTTL  config.Duration `yaml:"session_ttl"`
	MaxFailures int             `yaml:"max_failures"`
	Lockout     config.Duration `yaml:"lockout"`
	// FirstEnrolment is "self" (the default) or "approved".
	FirstEnrolment string `yaml:"first_enrolment"`
	// WebAuthn offers security keys to the dashboard.
	WebAuthn *WebAuthnFile `yaml:"webauthn"`
}

// Config validates f; errors name keys under path.
func (f MFAFile) Config(path string) (MFAConfig, error) {
	c := MFAConfig{Off: f.Required != nil && !*f.Required, Roles: f.Roles, Actions: f.Actions,
		SessionTTL: time.Duration(f.SessionTTL), MaxFailures: f.MaxFailures, Lockout: time.Duration(f.Lockout),
		FirstEnrolment: f.FirstEnrolment}
	switch f.FirstEnrolment {
	case "", FirstEnrolSelf, FirstEnrolApproved:
	default:
		return c, config.Errorf(config.Join(path, "first_enrolment"), "%q: want %q or %q", f.FirstEnrolment, FirstEnrolSelf, FirstEnrolApproved)
	}
	if f.WebAuthn != nil {
		w, err := f.WebAuthn.Config(config.Join(path, "webauthn"))
		if err != nil {
			return c, err
		}
		c.WebAuthn = &w
	}
	for i, r := range f.Roles {
		if api.RoleRank(r) == 0 {
			return c, config.Errorf(config.Index(config.Join(path, "roles"), i), "%q: want viewer, operator or admin", r)
		}
	}
	if f.Roles != nil && len(f.Roles) == 0 {
		return c, config.Errorf(config.Join(path, "roles"), "an empty list exempts every role; say required: false to turn MFA off")
	}
	for i, a := range f.Actions {
		if !actionRE(a) {
			return c, config.Errorf(config.Index(config.Join(path, "actions"), i), "%q: want a call name such as policy.apply, or a family such as keys.*", a)
		}
	}
	if f.Actions != nil && len(f.Actions) == 0 {
		return c, config.Errorf(config.Join(path, "actions"), "an empty list exempts every call; say required: false to turn MFA off")
	}
	if c.SessionTTL < 0 || c.SessionTTL > MaxMFASessionTTL {
		return c, config.Errorf(config.Join(path, "session_ttl"), "%s: want a positive duration of at most %s", c.SessionTTL, MaxMFASessionTTL)
	}
	if c.MaxFailures < 0 || c.MaxFailures > 100 {
		return c, config.Errorf(config.Join(path, "max_failures"), "%d: want 1 to 100", c.MaxFailures)
	}
	if c.Lockout < 0 {
		return c, config.Errorf(config.Join(path, "lockout"), "must not be negative")
	}
	return c, nil
}

func actionRE(a string) bool {
	if a == "" || len(a) > 64 {
		return false
	}
	for i, r := range a {
		switch {
		case r >= 'a' && r <= 'z', r == '.' && i > 0:
		case r == '*' && i == len(a)-1 && strings.HasSuffix(a, ".*"):
		default:
			return false
		}
	}
	return true
}

// AccessFile is the "access" section of moat server's configuration file.
type AccessFile struct {
	Approvals   map[string]int  `yaml:"approvals"`
	MaxFor      config.Duration `yaml:"max_for"`
	PendingFor  config.Duration `yaml:"pending_for"`
	RequestRole string          `yaml:"request_role"`
	ApproveRole string          `yaml:"approve_role"`
	// RecordingRole is the least role that reads every recording.
	RecordingRole string          `yaml:"recording_role"`
	Independent   bool            `yaml:"independent_approvers"`
	Retention     config.Duration `yaml:"recording_retention"`
	MaxRecording  int64           `yaml:"max_recording_bytes"`
	// SessionCertTTL is the life of a session's grant certificates.
	SessionCertTTL config.Duration `yaml:"session_cert_ttl"`
	// SessionMFA asks a code (or a security key) for every session.
	SessionMFA bool `yaml:"session_mfa"`
}

// Config validates f; errors name keys under path.
func (f AccessFile) Config(path string) (AccessConfig, error) {
	c := AccessConfig{Approvals: map[string]int{}, MaxFor: time.Duration(f.MaxFor), PendingFor: time.Duration(f.PendingFor),
		RequestRole: f.RequestRole, ApproveRole: f.ApproveRole, RecordingRole: f.RecordingRole, IndependentApprovers: f.Independent,
		Retention: time.Duration(f.Retention), MaxRecording: f.MaxRecording, SessionCertTTL: time.Duration(f.SessionCertTTL),
		SessionMFA: f.SessionMFA}
	for k, n := range f.Approvals {
		p := config.Join(config.Join(path, "approvals"), k)
		kind, name, _ := strings.Cut(k, ":")
		switch {
		case k == "*":
		case (kind == "node" || kind == "service") && identity.ValidName(name) == nil:
		default:
			return c, config.Errorf(p, "want \"node:NAME\", \"service:NAME\" or \"*\"")
		}
		if n < 0 || n > 5 {
			return c, config.Errorf(p, "%d approvals: want 0 to 5", n)
		}
		c.Approvals[k] = n
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"max_for", c.MaxFor}, {"pending_for", c.PendingFor}, {"recording_retention", c.Retention}} {
		if d.v < 0 {
			return c, config.Errorf(config.Join(path, d.key), "must not be negative")
		}
	}
	for _, r := range []struct{ key, v string }{{"request_role", c.RequestRole}, {"approve_role", c.ApproveRole}, {"recording_role", c.RecordingRole}} {
		if r.v != "" && api.RoleRank(r.v) < api.RoleRank(api.RoleOperator) {
			return c, config.Errorf(config.Join(path, r.key), "%q: want operator or admin", r.v)
		}
	}
	if c.SessionCertTTL != 0 && (c.SessionCertTTL < time.Second || c.SessionCertTTL > MaxSessionCertTTL) {
		return c, config.Errorf(config.Join(path, "session_cert_ttl"), "%s: want 1s to %s (default %s): a session's certificates are needed only until its handshake", c.SessionCertTTL, MaxSessionCertTTL, DefaultSessionCertTTL)
	}
	if c.MaxRecording < 0 || c.MaxRecording > 1<<30 {
		return c, config.Errorf(config.Join(path, "max_recording_bytes"), "%d: want at most 1 GiB", c.MaxRecording)
	}
	return c, nil
}
