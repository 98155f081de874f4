// Package identity names moat's workloads and decides whether a presented
// certificate chain is a valid, unrevoked X.509-SVID of moat's trust domain.
//
// Services are spiffe://<trust-domain>/svc/<name>; nodes (agents) are
// spiffe://<trust-domain>/node/<name>. A Trust holds the current trust bundle
// (several roots during a root rotation) and the revocation list; both are
// swapped atomically as the control plane pushes new ones.
package identity

import (
	"fmt"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Kinds of identity, the first path segment of a moat SPIFFE ID: services
// and nodes (agents) in the data plane; admins and the server itself in the
// control plane.
const (
	KindService = "svc"
	KindNode    = "node"
	KindAdmin   = "admin"
	KindServer  = "server"
)

// ValidName reports whether name can name a service or node, and why not.
// A name is DNS-label-like, so it is safe in a SPIFFE path, a file name
// and a log line: 1-63 of [a-z0-9-], not starting or ending with '-'. (It
// is checked on every tunnel stream, so by hand rather than by regexp.)
func ValidName(name string) error {
	ok := len(name) >= 1 && len(name) <= 63 && name[0] != '-' && name[len(name)-1] != '-'
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-'
	}
	if !ok {
		return fmt.Errorf("%w: %q (want 1-63 lowercase letters, digits or '-', not starting or ending with '-')", ErrBadName, name)
	}
	return nil
}

// ParseTrustDomain parses a trust domain name such as "example.org".
func ParseTrustDomain(s string) (spiffeid.TrustDomain, error) {
	if strings.Contains(s, "://") {
		return spiffeid.TrustDomain{}, fmt.Errorf("%w: %q: give the name alone, not a URI", ErrBadTrustDomain, s)
	}
	td, err := spiffeid.TrustDomainFromString(s)
	if err != nil || s == "" {
		return spiffeid.TrustDomain{}, fmt.Errorf("%w: %q", ErrBadTrustDomain, s)
	}
	return td, nil
}

// ServiceID returns spiffe://td/svc/name.
func ServiceID(td spiffeid.TrustDomain, name string) (spiffeid.ID, error) {
	return kindID(td, KindService, name)
}

// MustServiceID returns the string form of ServiceID, or "" when name is
// not a valid service name.
func MustServiceID(td spiffeid.TrustDomain, name string) string {
	id, err := ServiceID(td, name)
	if err != nil {
		return ""
	}
	return id.String()
}

// NodeID returns spiffe://td/node/name.
func NodeID(td spiffeid.TrustDomain, name string) (spiffeid.ID, error) {
	return kindID(td, KindNode, name)
}

func kindID(td spiffeid.TrustDomain, kind, name string) (spiffeid.ID, error) {
	if td.IsZero() {
		return spiffeid.ID{}, fmt.Errorf("%w: empty", ErrBadTrustDomain)
	}
	if err := ValidName(name); err != nil {
		return spiffeid.ID{}, err
	}
	return spiffeid.FromSegments(td, kind, name)
}

// AdminID returns spiffe://td/admin/name.
func AdminID(td spiffeid.TrustDomain, name string) (spiffeid.ID, error) {
	return kindID(td, KindAdmin, name)
}

// ServerID returns spiffe://td/server/name.
func ServerID(td spiffeid.TrustDomain, name string) (spiffeid.ID, error) {
	return kindID(td, KindServer, name)
}

// Parse splits a moat SPIFFE ID into its kind and name.
func Parse(id spiffeid.ID) (kind, name string, ok bool) {
	kind, name, found := strings.Cut(strings.TrimPrefix(id.Path(), "/"), "/")
	known := kind == KindService || kind == KindNode || kind == KindAdmin || kind == KindServer
	if !found || !known || ValidName(name) != nil {
		return "", "", false
	}
	return kind, name, true
}

// ServiceName returns the service name of a /svc/<name> ID.
func ServiceName(id spiffeid.ID) (string, bool) {
	kind, name, ok := Parse(id)
	if !ok || kind != KindService {
		return "", false
	}
	return name, true
}

// NodeName returns the node name of a /node/<name> ID.
func NodeName(id spiffeid.ID) (string, bool) {
	kind, name, ok := Parse(id)
	if !ok || kind != KindNode {
		return "", false
	}
	return name, true
}
