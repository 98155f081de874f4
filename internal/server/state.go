package server

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"moat/internal/store"
)

// MetaKey is the store key of the control plane's meta record, written
// last by Init: a store without it holds no (whole) control plane.
const MetaKey = keyMeta

// Store keys. Everything the control plane knows lives under these.
const (
	keyMeta        = "meta"
	keyCA          = "ca/state"
	keyBundle      = "ca/bundle"
	keyRevocations = "revocations"
	keyPolicy      = "policy/current"
	prefixPolicyV  = "policy/v/"
	prefixToken    = "token/"
	prefixNode     = "node/"
	prefixService  = "svc/"
	prefixIssued   = "issued/"
	prefixAdmin    = "admin/"
)

// Meta is the control plane's fixed settings, written by Init.
type Meta struct {
	TrustDomain string        `json:"trust_domain"`
	SVIDTTL     time.Duration `json:"svid_ttl"`
	// NodeTTL is the node certificates' life; zero (a control plane made
	// before it was recorded) means ca.DefaultNodeTTL.
	NodeTTL time.Duration `json:"node_ttl,omitzero"`
	Created time.Time     `json:"created"`
}

// tokenRecord is a join token as stored: only the hash of its secret.
type tokenRecord struct {
	Node    string    `json:"node"`
	Expires time.Time `json:"expires"`
	Created time.Time `json:"created"`
	UsedAt  time.Time `json:"used_at,omitzero"`
}

// issuedRecord is a service SVID issued to a node, kept under
// issued/<node>/<serial> until it expires, so that revoking the node
// revokes every SVID it still holds. (Versions before kept only the latest
// per service, under issued/<service>; revocation reads those too.)
type issuedRecord struct {
	Node    string    `json:"node"`
	Service string    `json:"service,omitempty"`
	Serial  string    `json:"serial"`
	Expires time.Time `json:"expires"`
}

// adminRecord grants a role to an admin identity and remembers the latest
// certificate issued to it, so that a root rotation knows whose credentials
// still depend on the old root.
type adminRecord struct {
	Role string     `json:"role"`
	Cert *adminCert `json:"cert,omitempty"`
	// CreatedBy is the administrator whose "admin create" made the
	// account (or last made it again), "" for the first administrator:
	// such an account is its creator's, and never the second person of
	// its creator's grants.
	CreatedBy string `json:"created_by,omitempty"`
	// Earlier are the account's earlier certificates (before a renewal
	// or a --replace) that have not ended: what removing the account
	// revokes along with Cert.
	Earlier []adminCert `json:"earlier,omitempty"`
}

// maxEarlierCerts bounds adminRecord.Earlier; the oldest go first.
const maxEarlierCerts = 64

// adminCert is what a rotation needs to know of an admin certificate.
type adminCert struct {
	Serial   string    `json:"serial"`
	NotAfter time.Time `json:"not_after"`
	// Root is the pin (api.Pin) of the root the certificate chains to.
	Root string `json:"root"`
}

func getJSON(ctx context.Context, st store.Store, key string, v any) error {
	_, err := getJSONRev(ctx, st, key, v)
	return err
}

func getJSONRev(ctx context.Context, st store.Store, key string, v any) (int64, error) {
	kv, err := st.Get(ctx, key)
	if err != nil {
		return 0, err
	}
	if err := json.Unmarshal(kv.Value, v); err != nil {
		return 0, fmt.Errorf("server: stored %q: %w", key, err)
	}
	return kv.ModRevision, nil
}

func putJSON(ctx context.Context, st store.Store, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("server: encode %q: %w", key, err)
	}
	_, err = st.Put(ctx, key, b)
	return err
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only moat's own plain structs are encoded here.
		return []byte("null")
	}
	return b
}
