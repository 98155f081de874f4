package server

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/ca"
	"moat/internal/store/storetest"
)

// TestRestoreHold: a control plane restored from a backup signs nothing
// for a node (here, a renewal) while an agent of another node of its
// registry has not reported the revocations it carries, and says for
// whom it waits; once they have reported (a report refused counts), or
// once restoreHold has passed since the first server started on the
// restored store, it signs again.
func TestRestoreHold(t *testing.T) {
	url := storetest.StartEtcd(t)
	f := newAuthFixtureWith(t, authOptions{etcd: []string{url}})
	web1, web2 := f.joinNode(t, "web-1"), f.joinNode(t, "web-2")
	var ahead atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	_, csr, err := ca.NewKeyCSR()
	if err != nil {
		t.Fatal(err)
	}
	renew := func(on *authFixture) (int, string) {
		code, e := on.call(t, web1, "POST", api.PathNodeRenew, api.RenewRequest{CSR: csr}, nil)
		return code, e.Error
	}

	restore := func(name string) *authFixture {
		t.Helper()
		if _, err := MarkRestored(f.ctx, f.st, time.Now().Add(-time.Hour), clock()); err != nil {
			t.Fatal(err)
		}
		on := *f
		on.srv = startOn(t, f, url, name, f.log, clock)
		if on.srv == nil {
			t.FailNow()
		}
		return &on
	}

	t.Log("restored: web-1's renewal waits for web-2's report")
	b := restore("b")
	if code, e := renew(b); code != http.StatusServiceUnavailable || !strings.Contains(e, "waiting for web-2)") {
		t.Fatalf("renewal before web-2 reported: %d %q, want 503 waiting for web-2", code, e)
	}
	if code, e := b.call(t, web2, "POST", api.PathNodeCarried, api.CarriedReport{}, nil); code != http.StatusOK {
		t.Fatalf("web-2's report: %d %s", code, e.Error)
	}
	if code, e := renew(b); code != http.StatusOK {
		t.Fatalf("renewal once web-2 reported: %d %s", code, e)
	}

	t.Log("restored again: a report refused (a tag under a key the store does not hold) counts as made")
	c := restore("c")
	if code, e := renew(c); code != http.StatusServiceUnavailable {
		t.Fatalf("renewal at the new epoch: %d %q, want 503", code, e)
	}
	forged := api.CarriedReport{Revocations: []api.CarriedRevocation{{ID: "spiffe://example.org/svc/api", Tag: make([]byte, revTagLen)}}}
	if code, e := c.call(t, web2, "POST", api.PathNodeCarried, forged, nil); code != http.StatusForbidden {
		t.Fatalf("web-2's report under another key: %d %s, want 403", code, e.Error)
	}
	if code, e := renew(c); code != http.StatusOK {
		t.Fatalf("renewal once web-2's report was refused: %d %s", code, e)
	}

	t.Log("restored once more: held until restoreHold has passed")
	d := restore("d")
	if code, e := renew(d); code != http.StatusServiceUnavailable {
		t.Fatalf("renewal at the newest epoch: %d %q, want 503", code, e)
	}
	ahead.Store(int64(restoreHold))
	if code, e := renew(d); code != http.StatusOK {
		t.Fatalf("renewal once restoreHold passed: %d %s", code, e)
	}
}
