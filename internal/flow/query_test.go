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

func TestAddCount(t *testing.T) {
	const max, min = 1<<63 - 1, -1 << 63
	for _, c := range []struct{ a, b, want int64 }{
		{1, 2, 3},
		{max, 1, max},
		{max - 5, 10, max},
		{min, -1, min},
		{max, -1, max - 1},
		{max, min, -1},
	} {
		if got := AddCount(c.a, c.b); got != c.want {
			t.Errorf("AddCount(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
