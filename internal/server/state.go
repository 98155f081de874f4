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
	// Account is the account's ID, 128 random bits (newID) drawn when the
	// name's account is made: by "admin create", or by "admin create"
	// again after "admin remove". A name comes back, its account never
	// does: everything that later stands for "the same person" (a grant's
	// requester, its approvers, a session's holder, second factors,
	// certificates) records the Account and is matched by it, never by
	// the name. A renewal, a --replace and a recovery keep it: they give
	// the same account a new credential, and its grants, sessions and
	// second factors stay its own; to hand a name to someone else, remove
	// the account and make it again. "" for an account made before
	// accounts carried an ID, which nothing is matched to a person by.
	Account string `json:"account,omitempty"`
	// Created is when the account was made (zero before accounts
	// carried an ID, and for an adopted one).
	Created time.Time `json:"created,omitzero"`
	// Adopted marks an account made before accounts carried an ID that
	// was given one at its first renewal or --replace since: the
	// certificates issued to it before carry no account mark and are
	// still taken as its own, as they were. For any other account a
	// certificate without its mark is an earlier account's.
	Adopted bool   `json:"adopted,omitempty"`
	Role    string `json:"role"`
	// TTL is the certificate life the account was last granted: by
	// server init, "admin create" (or --replace) or a recovery. A
	// renewal, which the holder asks for alone, keeps it and may ask for
	// no longer (grantedTTL). Zero for an account recorded before grants
	// were.
	TTL  time.Duration `json:"ttl,omitempty"`
	Cert *adminCert    `json:"cert,omitempty"`
	// CreatedBy is the administrator whose "admin create" made the
	// account (or last made it again), "" for the first administrator:
	// such an account is its creator's, and never the second person of
	// its creator's grants.
	CreatedBy string `json:"created_by,omitempty"`
	// MadeBy are the accounts (IDs) that made this one, nearest first:
	// its creator's, its creator's creator's, and so on, at most
	// maxMadeBy, recorded when CreatedBy is. Unlike CreatedBy's chain of
	// names, read at the time of asking, it does not break when one of
	// them is removed nor follow a later account of the same name.
	MadeBy []string `json:"made_by,omitempty"`
	// Earlier are the account's earlier certificates (before a renewal
	// or a --replace) that have not ended: what removing the account
	// revokes along with Cert.
	Earlier []adminCert `json:"earlier,omitempty"`
}

// maxMadeBy bounds adminRecord.MadeBy; the farthest go first.
const maxMadeBy = 32

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
