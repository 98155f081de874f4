package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"moat/internal/api"
)

// TestPeerRelayRefusesGrantOfNoAccount: a server relaying for another
// member checks the grant from the store again, and a grant recorded
// before accounts carried an ID is no one's there too: refused before the
// tunnel is looked for, whatever the first server decided.
func TestPeerRelayRefusesGrantOfNoAccount(t *testing.T) {
	f := newAuthFixture(t)
	now := time.Now()
	g := api.Grant{ID: "10000000000000000000000000000001", Requester: "spiffe://example.org/admin/admin", Node: "n1",
		Mode: api.ModeShell, Reason: "INC-1", For: time.Hour, Requested: now.Add(-time.Minute), Needed: 1,
		Starts: now.Add(-time.Minute), Expires: now.Add(time.Hour)}
	if err := putJSON(f.ctx, f.st, prefixGrant+g.ID, g); err != nil {
		t.Fatal(err)
	}
	hello := `{"session":"000000000000000000000000","grant":"` + g.ID + `","admin":"` + g.Requester + `","alpn":"` + api.ALPNOf(g.Mode) + `"}`
	r := httptest.NewRequest(http.MethodGet, api.PathPeerAccessDial, nil)
	r.Header.Set(api.HeaderRelayHello, hello)
	w := httptest.NewRecorder()
	f.srv.handlePeerAccessDial(w, r, &caller{ID: "spiffe://example.org/server/s2", Kind: "server", Name: "s2"})
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "no account") {
		t.Fatalf("a grant of no account relayed for a peer: %d %s", w.Code, w.Body.String())
	}
}
