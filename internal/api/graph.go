package api

import (
	"time"

	"moat/internal/flow"
)

// Paths of the reads a dashboard needs beyond flows and the audit log
// (role viewer, each call audited like every admin call).
const (
	// PathFlowGraph answers the flow records of a window summed by source,
	// destination and verdict (the filter of PathFlowQuery; limit caps the
	// edges, most bytes first).
	PathFlowGraph = "/v1/admin/flows/graph"
	// PathCerts lists the certificates the control plane issued that are
	// still live: service SVIDs by node, administrators' certificates.
	PathCerts = "/v1/admin/certs"
)

// MaxGraphEdges is the most edges one graph answers; more get the
// heaviest MaxGraphEdges and Truncated set.
const MaxGraphEdges = 50000

// FlowGraph answers a graph query: who talked to whom in the window, with
// what verdict, summed on the server from its hourly rollup so that the
// answer's size follows the number of pairs, not of records.
type FlowGraph struct {
	Edges []flow.Edge `json:"edges"`
	// Truncated says that more edges matched than were answered.
	Truncated bool `json:"truncated,omitempty"`
	// Until is the filter's end, or the server's clock when it summed:
	// records stored later with earlier times are not in this answer.
	Until time.Time `json:"until"`
	// Servers answered; Missing names the servers of the cluster that did
	// not (the graph then lacks their records).
	Servers []string `json:"servers,omitempty"`
	Missing []string `json:"missing,omitempty"`
}

// IssuedCert is one live certificate the control plane signed.
type IssuedCert struct {
	Kind    string    `json:"kind"` // "svid" or "admin"
	Name    string    `json:"name"` // the service or administrator
	Node    string    `json:"node,omitempty"`
	Role    string    `json:"role,omitempty"`
	Serial  string    `json:"serial"`
	Expires time.Time `json:"expires"`
}

// CertInventory answers PathCerts, soonest expiry first.
type CertInventory struct {
	Certs []IssuedCert `json:"certs"`
}

// PolicyChanges is a policy diff in parts a client shows on its own: rule
// names added, removed and changed, and the recent flows whose decision
// would change.
type PolicyChanges struct {
	OldVersion string       `json:"old_version,omitempty"`
	NewVersion string       `json:"new_version"`
	Added      []string     `json:"added,omitempty"`
	Removed    []string     `json:"removed,omitempty"`
	Changed    []string     `json:"changed,omitempty"`
	ModeChange string       `json:"mode_change,omitempty"`
	PeerModes  []string     `json:"peer_modes,omitempty"`
	NowDenied  []EdgeChange `json:"now_denied,omitempty"`
	NowAudited []EdgeChange `json:"now_audited,omitempty"`
	NowAllowed []EdgeChange `json:"now_allowed,omitempty"`
}

// EdgeChange is a recent (source, destination, port) whose decision a new
// policy changes.
type EdgeChange struct {
	Src        string `json:"src"`
	Dst        string `json:"dst"`
	Port       int    `json:"port"`
	OldVerdict string `json:"old_verdict"`
	OldRule    string `json:"old_rule"`
	NewVerdict string `json:"new_verdict"`
	NewRule    string `json:"new_rule"`
}
