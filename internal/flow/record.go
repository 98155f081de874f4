// Package flow holds moat's flow records and security events, shaped as OCSF
// (Open Cybersecurity Schema Framework) JSON so any SIEM can read them
// unchanged, and the writers that carry them.
//
// One Record type covers the classes moat emits:
//   - Network Activity (4001): mesh connections at each end (open, interim
//     traffic, close, refusals), and connections the gateway refused;
//   - HTTP Activity (4002): requests the gateway refused or its WAF flagged,
//     with the security_control profile (action, disposition, the CRS rule);
//   - Detection Finding (2004): alerts of the detection rules.
//
// Every record conforms to OCSF 1.3.0 (internal/flow/ocsfcheck checks it in
// tests); a record carrying an action, disposition or firewall rule names
// the security_control profile in metadata.profiles.
//
// Records are values; writers never keep a pointer to one after Write returns.
//
// The pipeline: a producer (agent, gateway) writes records to a Shipper,
// which batches them to the server and, while the server is unreachable,
// into a bounded on-disk Spool that it drains on recovery (at least once).
// The server stores them with package flowstore, which holds the SQLite
// store and the export files; this package holds what producers and
// readers share (records, writers, spool, shipper, and the query
// vocabulary: Filter, Edge, Talker), so a producer links no database.
package flow

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// OCSF class and category identifiers.
const (
	ClassNetworkActivity  = 4001
	ClassHTTPActivity     = 4002
	ClassDetectionFinding = 2004

	CategoryFindings = 2
	CategoryNetwork  = 4

	SchemaVersion = "1.3.0"
)

// Network Activity activity IDs.
const (
	ActivityOpen    = 1
	ActivityClose   = 2
	ActivityReset   = 3
	ActivityFail    = 4
	ActivityRefuse  = 5
	ActivityTraffic = 6
)

// Action IDs (what moat did) and disposition IDs (the outcome).
const (
	ActionAllowed = 1
	ActionDenied  = 2

	DispositionAllowed = 1
	DispositionBlocked = 2
	DispositionLogged  = 17
)

// Severity IDs.
const (
	SeverityInformational = 1
	SeverityLow           = 2
	SeverityMedium        = 3
	SeverityHigh          = 4
	SeverityCritical      = 5
)

// Verdict is moat's own summary of a decision, also kept in Unmapped for
// queries: "allow", "deny", or "audit" (would deny, let through).
const (
	VerdictAllow = "allow"
	VerdictDeny  = "deny"
	VerdictAudit = "audit"
)

// Record is one OCSF event. Times are milliseconds since the Unix epoch, as
// OCSF requires. Fields that do not apply to a class stay empty.
type Record struct {
	ClassUID      int    `json:"class_uid"`
	ClassName     string `json:"class_name,omitempty"`
	CategoryUID   int    `json:"category_uid"`
	ActivityID    int    `json:"activity_id"`
	ActivityName  string `json:"activity_name,omitempty"`
	TypeUID       int    `json:"type_uid"`
	Time          int64  `json:"time"`
	SeverityID    int    `json:"severity_id"`
	Severity      string `json:"severity,omitempty"`
	StatusID      int    `json:"status_id,omitempty"`
	Status        string `json:"status,omitempty"`
	Message       string `json:"message,omitempty"`
	ActionID      int    `json:"action_id,omitempty"`
	Action        string `json:"action,omitempty"`
	DispositionID int    `json:"disposition_id,omitempty"`
	Disposition   string `json:"disposition,omitempty"`

	Metadata Metadata `json:"metadata"`

	SrcEndpoint *Endpoint `json:"src_endpoint,omitempty"`
	DstEndpoint *Endpoint `json:"dst_endpoint,omitempty"`
	// ProxyEndpoint is the service a connection went through on its way,
	// the egress gateway for egress flows (profile network_proxy).
	ProxyEndpoint  *Endpoint       `json:"proxy_endpoint,omitempty"`
	ConnectionInfo *ConnectionInfo `json:"connection_info,omitempty"`
	Traffic        *Traffic        `json:"traffic,omitempty"`
	StartTime      int64           `json:"start_time,omitempty"`
	EndTime        int64           `json:"end_time,omitempty"`
	Duration       int64           `json:"duration,omitempty"` // milliseconds
	TLS            *TLS            `json:"tls,omitempty"`
	FirewallRule   *Rule           `json:"firewall_rule,omitempty"`

	HTTPRequest  *HTTPRequest  `json:"http_request,omitempty"`
	HTTPResponse *HTTPResponse `json:"http_response,omitempty"`

	FindingInfo *FindingInfo `json:"finding_info,omitempty"`

	// Unmapped carries moat's fields that OCSF has no place for.
	Unmapped *Moat `json:"unmapped,omitempty"`
}

// Metadata identifies the record and its producer. UID is unique per record
// and is what makes delivery exactly-once at the server.
type Metadata struct {
	Version    string  `json:"version"`
	UID        string  `json:"uid"`
	Product    Product `json:"product"`
	LoggedTime int64   `json:"logged_time,omitempty"`
	// Profiles names the OCSF profiles whose attributes the record uses:
	// ProfileSecurityControl whenever it carries an action, disposition or
	// firewall rule, ProfileNetworkProxy when it has a proxy endpoint.
	Profiles []string `json:"profiles,omitempty"`
}

// The OCSF profiles moat's records use.
const (
	// ProfileSecurityControl is the profile of action_id, disposition_id
	// and firewall_rule: a record of a decision by a security control.
	ProfileSecurityControl = "security_control"
	// ProfileNetworkProxy is the profile of proxy_endpoint: a connection
	// that went through a proxy (the egress gateway).
	ProfileNetworkProxy = "network_proxy"
)

// SecurityControl declares that r carries the security_control profile's
// attributes (action, disposition, firewall rule).
func (r *Record) SecurityControl() { r.declare(ProfileSecurityControl) }

// NetworkProxy declares that r carries the network_proxy profile's
// attributes (proxy_endpoint).
func (r *Record) NetworkProxy() { r.declare(ProfileNetworkProxy) }

func (r *Record) declare(profile string) {
	for _, p := range r.Metadata.Profiles {
		if p == profile {
			return
		}
	}
	r.Metadata.Profiles = append(r.Metadata.Profiles, profile)
}

// Product names the emitting component.
type Product struct {
	Name       string `json:"name"`
	VendorName string `json:"vendor_name"`
	Feature    *struct {
		Name string `json:"name"`
	} `json:"feature,omitempty"`
}

// Endpoint is one side of a flow. UID holds the SPIFFE ID when the side has
// one; SvcName the service name.
type Endpoint struct {
	IP      string `json:"ip,omitempty"`
	Port    int    `json:"port,omitempty"`
	UID     string `json:"uid,omitempty"`
	SvcName string `json:"svc_name,omitempty"`
	Name    string `json:"name,omitempty"`
	// Hostname is the name the client asked for: a gateway's Host, or the
	// DNS name of an external destination (egress).
	Hostname string `json:"hostname,omitempty"`
}

// ConnectionInfo describes the transport.
type ConnectionInfo struct {
	UID          string `json:"uid,omitempty"`
	ProtocolName string `json:"protocol_name,omitempty"`
	ProtocolNum  int    `json:"protocol_num,omitempty"`
	DirectionID  int    `json:"direction_id,omitempty"` // 1 inbound, 2 outbound
	Direction    string `json:"direction,omitempty"`
}

// Direction IDs.
const (
	DirectionInbound  = 1
	DirectionOutbound = 2
)

// Traffic counts bytes; In is what the recording side received.
type Traffic struct {
	BytesIn  int64 `json:"bytes_in"`
	BytesOut int64 `json:"bytes_out"`
	Bytes    int64 `json:"bytes"`
}

// TLS describes the negotiated TLS session; Version is e.g. "TLSv1.3" or
// "none" for a plaintext (PERMISSIVE) flow.
type TLS struct {
	Version string `json:"version"`
	Cipher  string `json:"cipher,omitempty"`
	SNI     string `json:"sni,omitempty"`
}

// Rule names the rule that decided.
type Rule struct {
	Name string `json:"name"`
	UID  string `json:"uid,omitempty"`
}

// HTTPRequest is the request part of an HTTP Activity or finding. Header
// values pass through seal's redaction before they get here.
type HTTPRequest struct {
	Method    string       `json:"http_method,omitempty"`
	URL       *URL         `json:"url,omitempty"`
	UserAgent string       `json:"user_agent,omitempty"`
	UID       string       `json:"uid,omitempty"` // the request ID
	Headers   []HTTPHeader `json:"http_headers,omitempty"`
}

// URL is the parts of a request URL.
type URL struct {
	Hostname    string `json:"hostname,omitempty"`
	Path        string `json:"path,omitempty"`
	QueryString string `json:"query_string,omitempty"`
	Scheme      string `json:"scheme,omitempty"`
}

// HTTPHeader is one header.
type HTTPHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// HTTPResponse is the answer given.
type HTTPResponse struct {
	Code int `json:"code"`
}

// FindingInfo describes a detection.
type FindingInfo struct {
	UID   string   `json:"uid"`
	Title string   `json:"title"`
	Desc  string   `json:"desc,omitempty"`
	Types []string `json:"types,omitempty"`
	// Analytic is the rule or detector that fired.
	Analytic *Analytic `json:"analytic,omitempty"`
}

// Analytic names a detection rule.
type Analytic struct {
	UID    string `json:"uid,omitempty"`
	Name   string `json:"name,omitempty"`
	TypeID int    `json:"type_id"` // 1 = rule
	Type   string `json:"type,omitempty"`
}

// Moat is moat's own part of a record.
type Moat struct {
	Verdict string `json:"verdict,omitempty"` // VerdictAllow, VerdictDeny, VerdictAudit
	Reason  string `json:"reason,omitempty"`  // why a connection was refused or failed
	Mode    string `json:"mode,omitempty"`    // "strict" or "permissive"
	Node    string `json:"node,omitempty"`
	Route   string `json:"route,omitempty"`
	// Rules lists WAF rule IDs that matched; Matched the (masked, truncated)
	// matched data of the first.
	Rules   []string `json:"rules,omitempty"`
	Matched string   `json:"matched,omitempty"`
	Kind    string   `json:"kind,omitempty"` // security event kind: "waf", "rate_limit", "ip_deny", "csrf", "handshake", ...
	// ReasonCode is the machine-readable cause of a refusal, failure or
	// cut (one of the Reason* constants); Reason is the text for people.
	// Detection rules and queries match on the code, never on the text.
	ReasonCode string `json:"reason_code,omitempty"`
	// Suppressed, on a summary, is how many events like this one were
	// counted rather than recorded one by one (a client refused faster
	// than records are kept); the record describes the last of them.
	Suppressed int `json:"suppressed,omitempty"`
	// Account, on an agent's refusal of an administrator's access, is
	// the account ID the presented certificate carries (its account
	// policy mark), beside the SPIFFE ID in src_endpoint.uid: a name
	// removed and made again is another account. Empty otherwise, and
	// in records written before agents recorded it. Optional and
	// omitted when empty, so the stored and shipped format stays as it
	// was: older readers skip it, records without it read as before.
	Account string `json:"account,omitempty"`
	// Claimed, on the record of a refused handshake (a mesh peer's, an
	// administrator's access connection), is the SPIFFE ID the peer's
	// certificate named, which did not verify: the source's on an
	// inbound record, the destination's on an outbound one (ClaimedSide).
	// It is evidence, never an identity: no key reads it (EndpointKey),
	// so a peer with nothing else to its name is queried, summed and
	// drawn under its address, and shown as "claimed: ID" (ShownClaim).
	// Empty otherwise. Older agents named such a peer by its claim in its
	// endpoint's name; the control plane moves it here (MoveClaim).
	Claimed string `json:"claimed,omitempty"`
}

// Reason codes carried in Moat.ReasonCode. They are stable: rules, alerts
// and dashboards match on them.
const (
	// Identity: the peer's certificate was refused.
	ReasonRevoked          = "revoked"           // the SVID's serial or SPIFFE ID is revoked
	ReasonExpired          = "expired"           // outside its validity period (expired or not yet valid)
	ReasonUnknownAuthority = "unknown_authority" // does not chain to the trust bundle
	ReasonBadCertificate   = "bad_certificate"   // not an SVID of this trust domain, or wrong usages
	ReasonNotService       = "not_a_service"     // a valid SVID, but not a service's (a node's, an admin's)
	ReasonHandshake        = "handshake_failed"  // the TLS handshake failed otherwise (protocol, ALPN, timeout, refused by the peer)
	// Start-up: no decision about the peer was made.
	ReasonNotReady = "not_ready" // this end does not hold its services or their SVIDs yet (the agent is starting)
	// Decision: the destination refused the connection.
	ReasonPolicyDenied   = "policy_denied"     // no intention allows the pair
	ReasonUnknownService = "unknown_service"   // the destination service is not on that node
	ReasonWrongPort      = "wrong_port"        // the service does not serve that port
	ReasonPlaintext      = "plaintext_refused" // plaintext to a strict service
	ReasonAppUnreachable = "app_unreachable"   // the destination app did not accept
	ReasonBadHeader      = "bad_header"        // a malformed or missing tunnel header
	ReasonUIDMismatch    = "uid_mismatch"      // a local process of another uid used a service's upstream port
	ReasonUnavailable    = "unavailable"       // the source could not reach the destination (no SVID, no route, no tunnel)
	// Cut: a live connection was closed by a change.
	ReasonPolicyChanged  = "policy_changed"  // the policy no longer allows the pair
	ReasonPeerRevoked    = "peer_revoked"    // the peer's identity was revoked while connected
	ReasonServiceRemoved = "service_removed" // an end was deregistered or moved off its node
	ReasonShutdown       = "shutdown"        // the agent stopped
	ReasonIdleTimeout    = "idle_timeout"    // no byte moved either way for as long as the idle timeout allows
	ReasonOverloaded     = "overloaded"      // the destination's agent shed it to stay within its bounds (its stream buffer, its connections to apps being made), from the source holding the most
	// Break-glass access, on a node's agent.
	ReasonOutsideGrant = "outside_grant" // an administrator's access not covered by an active grant of theirs for this node and mode
	ReasonGrantEnded   = "grant_ended"   // a session cut because its grant was revoked or expired
	// Host firewall and egress.
	ReasonFirewall       = "firewall_blocked"  // the node's host firewall dropped the connection (or would have, in audit mode)
	ReasonEgressDenied   = "egress_denied"     // no egress rule lets the source reach that host and port
	ReasonSNIMismatch    = "sni_mismatch"      // the TLS server name differs from the host the egress path was asked for
	ReasonHTTPRefused    = "http_refused"      // a plain HTTP request through the egress path named another host than asked for, or was framed ambiguously
	ReasonEgressResolve  = "egress_unresolved" // the egress point could not resolve the allowed name
	ReasonEgressInternal = "egress_internal"   // an allowed name resolved to an internal address (loopback, link-local, private)
	ReasonNoIdentity     = "no_identity"       // the local caller maps to no service registered on the node
	ReasonEgressBusy     = "egress_busy"       // the caller's uid holds as many egress connections as it may at once
	ReasonDNSRefused     = "dns_refused"       // the node's DNS filter refused a local user's query: a name not allowed, or past its bounds (or would have, in audit mode)
)

// NewID returns a fresh random record ID (128 bits, hex).
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// Millis converts t to OCSF milliseconds.
func Millis(t time.Time) int64 { return t.UnixMilli() }

// Header returns a record of class and activity with its derived fields set,
// a fresh ID and the time now.
func Header(class, activity int, product string, now time.Time) Record {
	r := Record{
		ClassUID:   class,
		ActivityID: activity,
		TypeUID:    class*100 + activity,
		Time:       Millis(now),
		SeverityID: SeverityInformational,
		Severity:   "Informational",
		Metadata: Metadata{
			Version: SchemaVersion,
			UID:     NewID(),
			Product: Product{Name: product, VendorName: "moat"},
		},
	}
	switch class {
	case ClassNetworkActivity:
		r.ClassName, r.CategoryUID = "Network Activity", CategoryNetwork
	case ClassHTTPActivity:
		r.ClassName, r.CategoryUID = "HTTP Activity", CategoryNetwork
	case ClassDetectionFinding:
		r.ClassName, r.CategoryUID = "Detection Finding", CategoryFindings
	}
	return r
}

// Verdict returns moat's verdict of r, or "" when it has none.
func (r *Record) Verdict() string {
	if r.Unmapped == nil {
		return ""
	}
	return r.Unmapped.Verdict
}

// Events is how many events r stands for: a summary's Suppressed (Gate;
// the summary is the last of them), else 1. What counts events (detection's
// windows, the metrics) counts a summary so, or a flood its producer
// summarised would hide itself.
func (r *Record) Events() int {
	if r.Unmapped != nil && r.Unmapped.Suppressed > 1 {
		return r.Unmapped.Suppressed
	}
	return 1
}

// Sealer encrypts stored or spooled record bodies. It has the shape of
// tink.AEAD, so a tink primitive (or seal's envelope) plugs in unchanged.
type Sealer interface {
	Encrypt(plaintext, associatedData []byte) ([]byte, error)
	Decrypt(ciphertext, associatedData []byte) ([]byte, error)
}

// maxUIDLen bounds record IDs so that a hostile producer cannot bloat
// the store's unique index.
const maxUIDLen = 128

// Validate checks what the store needs of a record: an ID of at most 128
// bytes, a positive time, a class, byte counts between 0 and
// MaxTrafficBytes, a claimed identity that is a SPIFFE ID, and endpoints
// whose ip is empty or an IP address. An endpoint with no SPIFFE ID, service name or name is
// queried, summed and drawn under its ip (ColumnsOf), so an ip that is no
// address ("billing") would name a service without saying so.
func Validate(r *Record) error {
	switch {
	case r.Metadata.UID == "":
		return errors.New("empty metadata.uid")
	case len(r.Metadata.UID) > maxUIDLen:
		return fmt.Errorf("metadata.uid longer than %d bytes", maxUIDLen)
	case r.Time <= 0:
		return fmt.Errorf("time %d is not a positive millisecond timestamp", r.Time)
	case r.ClassUID == 0:
		return errors.New("class_uid is zero")
	case r.Traffic != nil && !(validBytes(r.Traffic.Bytes) && validBytes(r.Traffic.BytesIn) && validBytes(r.Traffic.BytesOut)):
		return fmt.Errorf("traffic: byte counts must be between 0 and %d", int64(MaxTrafficBytes))
	case r.Unmapped != nil && r.Unmapped.Claimed != "" && !validClaim(r.Unmapped.Claimed):
		return errors.New("unmapped.claimed is not a SPIFFE ID")
	}
	for _, e := range []struct {
		name string
		ep   *Endpoint
	}{{"src_endpoint", r.SrcEndpoint}, {"dst_endpoint", r.DstEndpoint}, {"proxy_endpoint", r.ProxyEndpoint}} {
		if e.ep == nil || e.ep.IP == "" {
			continue
		}
		a, err := netip.ParseAddr(e.ep.IP)
		if err != nil || !validZone(a.Zone()) {
			return fmt.Errorf("%s.ip is not an IP address", e.name)
		}
	}
	return nil
}

func validClaim(s string) bool {
	_, err := spiffeid.FromString(s)
	return err == nil
}

func validBytes(n int64) bool { return n >= 0 && n <= MaxTrafficBytes }

// validZone says whether z is empty or could name a network interface:
// at most 16 bytes of printable ASCII but the space. netip takes any text
// after a '%' for a zone.
func validZone(z string) bool {
	if len(z) > 16 {
		return false
	}
	for i := 0; i < len(z); i++ {
		if z[i] <= ' ' || z[i] > '~' {
			return false
		}
	}
	return true
}

// MaxTrafficBytes bounds each byte count of a record's traffic (a
// pebibyte): far more than one connection moves between two records.
const MaxTrafficBytes = 1 << 50

// AddCount is a + b for sums of flows and bytes, held at the bounds of
// int64 rather than wrapping round: records come from nodes that may
// say what they like within Validate's bounds, and a sum of many of them
// must stay a count (never turn negative, never fail a query).
func AddCount(a, b int64) int64 {
	s := a + b
	switch {
	case a > 0 && b > 0 && s < 0:
		return math.MaxInt64
	case a < 0 && b < 0 && s >= 0:
		return math.MinInt64
	}
	return s
}

// TrafficBytes is the bytes r carries: its traffic's total, else the sum of
// both directions (zero without traffic).
func (r *Record) TrafficBytes() int64 {
	t := r.Traffic
	if t == nil {
		return 0
	}
	if t.Bytes != 0 {
		return t.Bytes
	}
	return AddCount(t.BytesIn, t.BytesOut)
}
