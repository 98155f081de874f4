package flow

import (
	"testing"
	"time"

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

// TestClaimIsNoKey: the identity a refused peer claimed is kept beside
// its address, shown as a claim and never read as its key, also when an
// older agent wrote it as the peer's name.
func TestClaimIsNoKey(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("example.org")
	const claim = "spiffe://example.org/svc/api"
	for _, dir := range []int{DirectionInbound, DirectionOutbound} {
		r := Header(ClassNetworkActivity, ActivityFail, "moat-mesh", time.Now())
		r.SrcEndpoint, r.DstEndpoint = &Endpoint{IP: "192.0.2.1"}, &Endpoint{IP: "192.0.2.2", Port: 8443}
		r.ConnectionInfo = &ConnectionInfo{DirectionID: dir}
		r.Unmapped = &Moat{Kind: "handshake", Verdict: VerdictDeny}
		peer, self := r.SrcEndpoint, r.DstEndpoint
		if dir == DirectionOutbound {
			peer, self = self, peer
		}
		peer.Name = claim // as older agents wrote it
		MoveClaim(&r)
		if err := Validate(&r); err != nil {
			t.Fatal(err)
		}
		c := ColumnsOf(&r)
		if r.Unmapped.Claimed != claim || peer.Name != "" || KeyService(c.Src, td) != "" || KeyService(c.Dst, td) != "" {
			t.Errorf("direction %d: claimed %q, peer %+v, keys %q %q: want the claim apart and no key read as api", dir, r.Unmapped.Claimed, peer, c.Src, c.Dst)
		}
		if got := ShownClaim(&r, peer); got != "claimed: "+claim {
			t.Errorf("direction %d: the peer is shown as %q", dir, got)
		}
		if got := ShownClaim(&r, self); got != "" {
			t.Errorf("direction %d: the recording side is shown as %q", dir, got)
		}
	}
	r := Header(ClassNetworkActivity, ActivityFail, "moat-mesh", time.Now())
	r.Unmapped = &Moat{Claimed: "api"}
	if Validate(&r) == nil {
		t.Error("a claim that is no SPIFFE ID is valid")
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
