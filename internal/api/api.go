// Package api is the control-plane wire protocol: HTTPS + JSON over mutual
// TLS. The server implements it; agents, the gateway and the admin CLI call
// it through Client. Paths are versioned; every request and response body is
// one JSON object, and the watch stream is newline-delimited JSON.
package api

import (
	"encoding/binary"
	"fmt"
	"net"
	"strconv"
	"time"

	"moat/internal/audit"
	"moat/internal/flow"
	"moat/internal/identity"
	"moat/internal/policy"
)

// Paths. Those under /v1/admin/ need an admin certificate and a role; the
// node paths need a node SVID; PathBundle, PathJoin and PathReattest are
// open (the join token, or the pinned node key, is the credential), and
// so is PathHealth.
const (
	// PathHealth is a server's health: 200 (Health) while it follows its
	// store, 503 before it has read it and while it cannot. Anyone may
	// call it (a load balancer's probe holds no certificate): it reads
	// nothing and says only whether the store answers, not why it does not.
	PathHealth     = "/v1/health"
	PathBundle     = "/v1/bundle"
	PathJoin       = "/v1/join"
	PathNodeRenew  = "/v1/node/renew"
	PathReattest   = "/v1/node/reattest"
	PathSVID       = "/v1/svid"
	PathWatch      = "/v1/watch"
	PathFlows      = "/v1/flows"
	PathNodeHealth = "/v1/node/health"
	PathWhoami     = "/v1/admin/whoami"
	PathAdmins     = "/v1/admin/admins"
	PathAdminRenew = "/v1/admin/renew"
	PathTokens     = "/v1/admin/tokens"
	PathServices   = "/v1/admin/services"
	PathNodes      = "/v1/admin/nodes"
	PathMembers    = "/v1/admin/servers"
	PathPeerFlows  = "/v1/peer/flows"
	// PathPeerFollow streams one server's own records as they are stored
	// (FlowFrames; the filter as in PathFlowFollow), for the relay of a
	// member that follows the whole cluster.
	PathPeerFollow = "/v1/peer/flows/follow"
	// PathPeerFlowBackup hands a consistent copy of one server's flow
	// store (a tar of its partitions and sealed index key) to the member
	// taking a cluster backup.
	PathPeerFlowBackup = "/v1/peer/flows/backup"
	PathRevoke         = "/v1/admin/revoke"
	PathCA             = "/v1/admin/ca"
	PathCARotate       = "/v1/admin/ca/rotate"
	PathPolicy         = "/v1/admin/policy"
	PathPolicyDiff     = "/v1/admin/policy/diff"
	PathPolicyExpl     = "/v1/admin/policy/explain"
	PathAudit          = "/v1/admin/audit"
	PathAuditProof     = "/v1/admin/audit/prove"
	PathCheckpoint     = "/v1/admin/audit/checkpoint"
	// PathAuditConsistency proves the latest checkpoint extends the tree of
	// ?from=N entries (viewer); PathNodeAudit is the same for agents, which
	// witness the log.
	PathAuditConsistency = "/v1/admin/audit/consistency"
	PathNodeAudit        = "/v1/node/audit/consistency"
	// PathAuditStored serves entries as stored (sealed or not), ?from=&to=,
	// so that a client recomputes the tree itself (viewer).
	PathAuditStored = "/v1/admin/audit/stored"

	// PathNodeCarried takes the revocations an agent carried across a
	// restore that the control plane's list lacks (CarriedReport).
	PathNodeCarried = "/v1/node/revocations/carried"
)

// Roles, weakest first. A role may do everything the roles before it may.
const (
	RoleViewer   = "viewer"
	RoleOperator = "operator"
	RoleAdmin    = "admin"
)

// RoleRank orders roles; unknown roles rank below viewer.
func RoleRank(role string) int {
	switch role {
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Error is the body of every non-2xx answer.
type Error struct {
	Error string `json:"error"`
	// Reason, when set, is a machine-readable cause a client branches on
	// (ReasonMFARequired).
	Reason string `json:"reason,omitempty"`
}

// JoinRequest proves a one-time token and asks for a node SVID over CSR.
type JoinRequest struct {
	Token    string `json:"token"`
	Node     string `json:"node"`
	MeshAddr string `json:"mesh_addr"` // where peers reach this node's mesh port
	CSR      []byte `json:"csr"`       // PKCS#10 DER
	// NodeKey is the node's long-term attestation key (PKIX DER, P-256),
	// pinned by the server at join: with it the node re-attests after its
	// certificate expired (ReattestRequest).
	NodeKey []byte `json:"node_key,omitempty"`
}

// PeerFlowQuery asks a server of the cluster for its part of a flow query:
// records matching Filter, or (Talkers > 0) the top Talkers pairs.
type PeerFlowQuery struct {
	Filter  flow.Filter `json:"filter"`
	Talkers int         `json:"talkers,omitempty"`
	// Edges asks for the records summed by source, destination and
	// verdict (the heaviest Filter.Limit of them).
	Edges bool `json:"edges,omitempty"`
	// Cells asks, with Talkers or Edges, for the (node, hour) cells the
	// server holds in the filter's time range; Weigh asks for the weight
	// of each record in those cells (to count a record two servers hold
	// once).
	Cells bool             `json:"cells,omitempty"`
	Weigh []flow.NodeHours `json:"weigh,omitempty"`
}

// PeerFlows is one server's part of a flow query.
type PeerFlows struct {
	Server  string              `json:"server"`
	Records []flow.Record       `json:"records,omitempty"`
	Talkers []flow.Talker       `json:"talkers,omitempty"`
	Edges   []flow.Edge         `json:"edges,omitempty"`
	Cells   []flow.NodeHours    `json:"cells,omitempty"`
	Weights []flow.TalkerRecord `json:"weights,omitempty"`
}

// ClusterFlows is a flow query answered for a whole cluster: Servers
// answered; Missing names those that did not (the answer is then partial).
type ClusterFlows struct {
	Records   []flow.Record `json:"records,omitempty"`
	Talkers   []flow.Talker `json:"talkers,omitempty"`
	Edges     []flow.Edge   `json:"edges,omitempty"`
	Truncated bool          `json:"truncated,omitempty"`
	Servers   []string      `json:"servers"`
	Missing   []string      `json:"missing,omitempty"`
}

// Member is one server of the control plane's cluster.
type Member struct {
	Name    string    `json:"name"`
	Addr    string    `json:"addr"`
	Started time.Time `json:"started"`
	// Seen is when the server last refreshed its record; Alive says it
	// did so recently.
	Seen  time.Time `json:"seen"`
	Alive bool      `json:"alive"`
	// Self marks the server that answered.
	Self bool `json:"self,omitempty"`
}

// ReattestRequest asks for a new node certificate by proof of the node
// key pinned at join, for a node whose certificate expired or is no
// longer trusted. Signature is the node key's ECDSA (ASN.1) signature over
// ReattestPayload, which covers every other field: what the request asks
// for (the certificate's key, a new mesh address) is what the node
// signed. The server accepts Time within MaxReattestSkew of its clock. A
// replayed request is worthless: the certificate is for CSR's key, which
// only the node holds, and the mesh address is the one the node gave.
type ReattestRequest struct {
	Node      string    `json:"node"`
	MeshAddr  string    `json:"mesh_addr"`
	CSR       []byte    `json:"csr"`
	Time      time.Time `json:"time"`
	Signature []byte    `json:"signature"`
}

// MaxReattestSkew bounds the difference between a ReattestRequest's Time
// and the server's clock.
const MaxReattestSkew = 5 * time.Minute

// ReattestPayload is what a re-attestation signs, on the node and as the
// server checks it: the trust domain and every field of r but the
// signature (node, mesh address, time, CSR), each length-prefixed.
func ReattestPayload(trustDomain string, r ReattestRequest) []byte {
	var out []byte
	for _, part := range [][]byte{[]byte("moat-reattest-v2"), []byte(trustDomain), []byte(r.Node), []byte(r.MeshAddr), []byte(r.Time.UTC().Format(time.RFC3339Nano)), r.CSR} {
		out = binary.BigEndian.AppendUint32(out, uint32(len(part)))
		out = append(out, part...)
	}
	return out
}

// CertResponse carries a signed chain (leaf first) and the trust bundle.
type CertResponse struct {
	Chain  [][]byte `json:"chain"`  // DER, leaf first
	Bundle [][]byte `json:"bundle"` // DER roots
	// TrustDomain names the bundle's trust domain.
	TrustDomain string `json:"trust_domain,omitempty"`
	// Signing is the pin (Pin) of the root whose authority signs new
	// certificates; a credential chaining to another root is due for
	// renewal (a root rotation is under way).
	Signing string `json:"signing,omitempty"`
	// AuditKey is the audit log's verifier key, which a node pins at join
	// to witness the log.
	AuditKey string `json:"audit_key,omitempty"`
}

// RenewRequest asks for a fresh node SVID; the caller is the node.
type RenewRequest struct {
	CSR      []byte `json:"csr"`
	MeshAddr string `json:"mesh_addr,omitempty"`
	// NodeKey pins a node key (see JoinRequest.NodeKey) for a node that
	// joined without one; a node that has one pinned cannot change it.
	NodeKey []byte `json:"node_key,omitempty"`
}

// SVIDRequest asks for a service SVID; the caller's node must host Service.
type SVIDRequest struct {
	Service string `json:"service"`
	CSR     []byte `json:"csr"`
}

// TokenRequest creates a join token bound to Node.
type TokenRequest struct {
	Node string        `json:"node"`
	TTL  time.Duration `json:"ttl"`
}

// TokenResponse holds a join token; it is shown once.
type TokenResponse struct {
	Token   string    `json:"token"`
	Node    string    `json:"node"`
	Expires time.Time `json:"expires"`
}

// Upstream is a service a registration calls, and the loopback port its
// agent listens on for it. An upstream with External instead of Service is
// a host outside the mesh (HOST:PORT), reached through the egress path
// where the intentions' egress rules allow.
type Upstream struct {
	Service   string `json:"service,omitempty"`
	External  string `json:"external,omitempty"`
	LocalPort int    `json:"local_port"`
}

// Check validates an upstream as server, agent and CLI read one: a service
// name or an external HOST:PORT (not both), and a local port.
func (u Upstream) Check() error {
	switch {
	case u.Service != "" && u.External != "":
		return fmt.Errorf("service %q and external %q: an upstream is one or the other", u.Service, u.External)
	case u.External != "":
		if _, _, err := ExternalHostPort(u.External); err != nil {
			return err
		}
	default:
		if err := identity.ValidName(u.Service); err != nil {
			return fmt.Errorf("service: %w", err)
		}
	}
	if u.LocalPort < 1 || u.LocalPort > 65535 {
		return fmt.Errorf("local_port %d: want 1-65535", u.LocalPort)
	}
	return nil
}

// ExternalHostPort reads an external upstream's HOST:PORT, the host in the
// form egress rules match.
func ExternalHostPort(s string) (string, int, error) {
	h, ps, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("external %q: want HOST:PORT", s)
	}
	p, err := strconv.Atoi(ps)
	if err != nil || p < 1 || p > 65535 {
		return "", 0, fmt.Errorf("external %q: port must be 1-65535", s)
	}
	host, err := policy.NormalizeHost(h)
	if err != nil {
		return "", 0, fmt.Errorf("external %q: %v", s, err)
	}
	return host, p, nil
}

// Registration places a service on a node. Whether the service also accepts
// plaintext (PERMISSIVE) is set in the intentions, not here, so that one
// document says everything about who may reach it.
type Registration struct {
	Name      string     `json:"name"`
	Node      string     `json:"node"`
	Port      int        `json:"port"` // the app's port on 127.0.0.1 of its node
	Upstreams []Upstream `json:"upstreams,omitempty"`
	// UID, when set, is the only local uid that may fetch this service's
	// SVID from the Workload API and the only one whose processes may use
	// its upstream ports (and so call as this service). Nil lets any local
	// uid do both: it does not isolate the node's users from each other.
	UID *int `json:"uid,omitempty"`
	// PlaintextPort, when set, is the port on the node's mesh address where
	// the agent takes plaintext callers while the intentions make this
	// service permissive; a permissive service without one is reachable
	// over mutual TLS only.
	PlaintextPort int `json:"plaintext_port,omitempty"`
	// Labels describe the service (team, tier, …) for people and
	// dashboards, which group services by them; they decide nothing.
	Labels map[string]string `json:"labels,omitempty"`
}

// Limits of a registration's labels.
const (
	MaxLabels     = 16
	MaxLabelValue = 63
)

// ValidLabel checks one label: a key as a service name is spelled (1-63
// lowercase letters, digits or '-'), a value of at most MaxLabelValue
// printable ASCII characters.
func ValidLabel(k, v string) error {
	if err := identity.ValidName(k); err != nil {
		return fmt.Errorf("label key: %w", err)
	}
	if len(v) > MaxLabelValue {
		return fmt.Errorf("label %s: value longer than %d characters", k, MaxLabelValue)
	}
	for _, c := range v {
		if c < 0x20 || c > 0x7e {
			return fmt.Errorf("label %s: value holds %q: want printable ASCII", k, c)
		}
	}
	return nil
}

// ServiceListing is a registration as `svc list` shows it: with the state
// of its local listeners, as its node's agent last reported them.
type ServiceListing struct {
	Registration
	Health []ListenerHealth `json:"health,omitempty"`
	// Reported is when the node last reported; zero if it never did.
	Reported time.Time `json:"reported,omitzero"`
}

// ListenerHealth is one local listener of a service on its node.
type ListenerHealth struct {
	Kind     string    `json:"kind"`               // "upstream" or "plaintext"
	Upstream string    `json:"upstream,omitempty"` // the service called, for an upstream listener
	Addr     string    `json:"addr"`
	OK       bool      `json:"ok"`
	Error    string    `json:"error,omitempty"`
	Failures int       `json:"failures,omitempty"` // consecutive failed binds
	Since    time.Time `json:"since,omitzero"`
}

// NodeHealth is what an agent reports about its services' listeners and
// its host firewall.
type NodeHealth struct {
	Services map[string][]ListenerHealth `json:"services"`
	// Firewall is what it reports about its host firewall; nil, as an
	// empty one, says there is no bypass to report (or no firewall).
	Firewall *FirewallHealth `json:"firewall,omitempty"`
}

// Limits of a NodeHealth report; the server refuses larger ones.
const (
	MaxHealthListeners = 4096
	MaxHealthText      = 512
)

// Node is a joined agent.
type Node struct {
	Name     string    `json:"name"`
	MeshAddr string    `json:"mesh_addr"`
	Joined   time.Time `json:"joined"`
}

// RevokeRequest revokes one service, node or certificate serial.
type RevokeRequest struct {
	Service string `json:"service,omitempty"`
	Node    string `json:"node,omitempty"`
	Serial  string `json:"serial,omitempty"`
}

// RevokeResult answers a revocation: the list as it now stands, and
// whether the service or node named was not registered (it is revoked
// anyway: a node may be revoked before it joins, its join token leaked).
type RevokeResult struct {
	identity.Revocations
	NotRegistered bool `json:"not_registered,omitempty"`
}

// CARequest runs one root-rotation step: "prepare", "activate" or "retire".
type CARequest struct {
	Step  string `json:"step"`
	Force bool   `json:"force,omitempty"`
}

// CAInfo describes the CA.
type CAInfo struct {
	TrustDomain string               `json:"trust_domain"`
	Phase       string               `json:"phase"`
	Roots       []CertInfo           `json:"roots"`
	Signing     CertInfo             `json:"signing"`
	SVIDTTL     string               `json:"svid_ttl"`
	Revocations identity.Revocations `json:"revocations"`
}

// CertInfo summarises a certificate.
type CertInfo struct {
	Subject   string    `json:"subject"`
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	SHA256    string    `json:"sha256"`
}

// Policy is an intentions document as applied.
type Policy struct {
	Version int64     `json:"version"`
	YAML    string    `json:"yaml"`
	Applied time.Time `json:"applied,omitempty"`
	By      string    `json:"by,omitempty"`
}

// PolicyApplied answers a policy apply.
type PolicyApplied struct {
	Policy   Policy   `json:"policy"`
	Warnings []string `json:"warnings,omitempty"`
	Wildcard bool     `json:"wildcard,omitempty"`
}

// PolicyRequest carries a policy document to apply or diff.
type PolicyRequest struct {
	YAML string `json:"yaml"`
}

// PolicyDiff is what applying a document would change: as text for a
// terminal, and in parts.
type PolicyDiff struct {
	Text    string         `json:"text"`
	Changes *PolicyChanges `json:"changes,omitempty"`
}

// ExplainRequest asks which rule decides a connection.
type ExplainRequest struct {
	From string `json:"from"`
	To   string `json:"to"`
	Port int    `json:"port"`
}

// Explanation answers an ExplainRequest.
type Explanation struct {
	Allow bool   `json:"allow"`
	Audit bool   `json:"audit"`
	Rule  string `json:"rule"`
	Text  string `json:"text"`
}

// AuditCheckpoint is the latest signed checkpoint of the audit log, in the
// tlog checkpoint text format signed with sumdb/note.
type AuditCheckpoint struct {
	Signed string `json:"signed"`
	// Key is the log's verifier key ("name+hash+key").
	Key string `json:"key,omitempty"`
}

// AuditConsistency is the latest signed checkpoint with a tlog proof that
// its tree extends the tree of the From entries asked about.
type AuditConsistency struct {
	Checkpoint string   `json:"checkpoint"`
	From       int64    `json:"from"`
	Proof      [][]byte `json:"proof"` // tlog.TreeProof hashes, 32 bytes each
}

// AuditStored is a page of entries as stored: the bytes the tree hashes.
type AuditStored struct {
	Size    int64    `json:"size"` // entries the latest checkpoint covers
	From    int64    `json:"from"`
	Entries [][]byte `json:"entries"`
}

// AuditEntries is a page of the audit log.
type AuditEntries struct {
	Size    int64           `json:"size"`
	Entries []audit.Indexed `json:"entries"`
}

// AuditProof proves one entry is in the log at a checkpoint.
type AuditProof struct {
	Proof      string `json:"proof"`
	Checkpoint string `json:"checkpoint"`
}

// FlowAck answers a batch of flow records.
type FlowAck struct {
	Received int `json:"received"`
	Stored   int `json:"stored"` // new records; the rest were already stored or refused
	// Refused counts records left out: too large, malformed, invalid, or
	// about services the sending node does not run.
	Refused int `json:"refused,omitempty"`
}

// AdminRequest asks for an administrator's certificate and role.
type AdminRequest struct {
	Name string        `json:"name"`
	Role string        `json:"role"`
	TTL  time.Duration `json:"ttl,omitempty"`
	CSR  []byte        `json:"csr"`
	// Replace issues a credential for an account that exists (its holder's
	// certificates stay valid until they end or are revoked); without it
	// an existing name is refused, so no administrator takes over another's
	// account by creating it again.
	Replace bool `json:"replace,omitempty"`
}

// AdminRenewRequest asks for a new certificate for the calling administrator,
// over a CSR (usually of the same key), with the caller's identity and role.
type AdminRenewRequest struct {
	TTL time.Duration `json:"ttl,omitempty"`
	CSR []byte        `json:"csr"`
}

// AdminAccount is one administrator's account, as "moat admin list" shows it.
type AdminAccount struct {
	Name      string `json:"name"`
	ID        string `json:"id"`
	Role      string `json:"role"`
	CreatedBy string `json:"created_by,omitempty"`
	// Account is the account's ID, Created when it was made: a name
	// removed and made again is another account, with another ID. ""
	// (and zero) for an account made before accounts carried an ID.
	Account string    `json:"account,omitempty"`
	Created time.Time `json:"created,omitzero"`
	// Expires is the end of the account's latest certificate, zero when
	// the server did not record it.
	Expires time.Time `json:"expires,omitzero"`
	// MFA says whether a second factor is enrolled (a confirmed
	// authenticator or a security key); AwaitingApproval that the
	// authenticator is not approved yet.
	MFA              bool `json:"mfa"`
	AwaitingApproval bool `json:"awaiting_approval,omitempty"`
	// Sessions counts the live MFA sessions.
	Sessions int `json:"sessions"`
}

// AdminRemove asks to remove an administrator's account.
type AdminRemove struct {
	Name string `json:"name"`
}

// AdminRemoved answers AdminRemove: the certificate serials revoked and
// the MFA sessions ended.
type AdminRemoved struct {
	ID            string   `json:"id"`
	Revoked       []string `json:"revoked"`
	SessionsEnded int      `json:"sessions_ended"`
	// GrantsRevoked are the account's grants that were pending or active.
	GrantsRevoked []string `json:"grants_revoked,omitempty"`
}

// Whoami describes the caller.
type Whoami struct {
	ID   string `json:"id"`
	Role string `json:"role"`
}

// Update is one frame of the watch stream. The first frame is Full: it
// replaces everything the agent holds. Later frames carry only what changed;
// nil fields are unchanged.
type Update struct {
	// Epoch is the store's restore epoch (0 until the control plane was
	// first restored from a backup): every frame of a stream carries its
	// snapshot's. It only grows, so an agent takes the state of a newer
	// epoch over the versions it holds, and refuses an older one.
	Epoch           int64                 `json:"epoch,omitempty"`
	Revision        int64                 `json:"revision"`
	Full            bool                  `json:"full,omitempty"`
	Bundle          [][]byte              `json:"bundle,omitempty"` // DER roots
	Revocations     *identity.Revocations `json:"revocations,omitempty"`
	Policy          *Policy               `json:"policy,omitempty"`
	Services        []Registration        `json:"services,omitempty"`
	RemovedServices []string              `json:"removed_services,omitempty"`
	Nodes           []Node                `json:"nodes,omitempty"`
	RemovedNodes    []string              `json:"removed_nodes,omitempty"`
	// Grants are the break-glass grants of the receiving node (each agent
	// sees its own node's only), new or changed.
	Grants []Grant `json:"grants,omitempty"`
	// Heartbeat frames carry nothing but keep the stream's liveness visible.
	Heartbeat bool `json:"heartbeat,omitempty"`

	// RevocationTags go with Revocations: the control plane's tag of each
	// ID and serial it lists, which an agent keeps with a revocation it
	// carries across a restore, so that the restored control plane tells
	// the revocations it made itself from others (CarriedReport).
	RevocationTags map[string][]byte `json:"revocation_tags,omitempty"`
}

// CarriedReport is PathNodeCarried's body: revocations an agent carried
// across a restore that the restored list lacks, each with the tag the
// control plane streamed with it. The server applies them again only if
// every tag is its own; at most MaxCarriedReport of them.
type CarriedReport struct {
	Revocations []CarriedRevocation `json:"revocations"`
}

// CarriedRevocation is one revoked ID or serial of a CarriedReport.
type CarriedRevocation struct {
	ID     string `json:"id,omitempty"`
	Serial string `json:"serial,omitempty"`
	// Expires is the serial's certificate's NotAfter as the list held it
	// (zero: not known, listed for good).
	Expires time.Time `json:"expires,omitzero"`
	Tag     []byte    `json:"tag"`
}

// CarriedResult is PathNodeCarried's answer: how many of the report's
// revocations the list lacked and now holds.
type CarriedResult struct {
	Applied int `json:"applied"`
}

// MaxCarriedReport bounds the revocations of a CarriedReport (the agent
// carries no more).
const MaxCarriedReport = 1024

// Health is PathHealth's answer while the server serves.
type Health struct {
	Status string `json:"status"` // "serving"
}
