package flow

import (
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

func TestKeyService(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("example.org")
	for key, want := range map[string]string{
		"spiffe://example.org/svc/db":   "db",
		"spiffe://example.org/svc/db/x": "",
		"spiffe://example.org/node/n1":  "",
		"spiffe://other.org/svc/db":     "",
		"db":                            "db",
		"10.0.0.1":                      "",
		"2001:db8::1":                   "",
		"fe80::1%eth0":                  "",
		"":                              "",
	} {
		if got := KeyService(key, td); got != want {
			t.Errorf("KeyService(%q) = %q, want %q", key, got, want)
		}
	}
}
