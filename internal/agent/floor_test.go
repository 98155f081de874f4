package agent

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/identity"
)

// TestFloorRefusesOlder: each version the floor keeps refuses a frame
// below it, after a restart too; equal and newer frames pass, and a single
// change below the latest revision (streamed after a snapshot that covered
// later changes) is not refused for its revision.
func TestFloorRefusesOlder(t *testing.T) {
	dir := t.TempDir()
	f, err := loadFloor(dir, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	taken := api.Update{Full: true, Revision: 40, Revocations: &identity.Revocations{Version: 5}, Policy: &api.Policy{Version: 3}}
	if err := f.admit(taken); err != nil {
		t.Fatalf("first snapshot refused: %v", err)
	}
	if err := f.raise(taken); err != nil {
		t.Fatal(err)
	}
	again, err := loadFloor(dir, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		u       api.Update
		refused bool
	}{
		"older snapshot":            {api.Update{Full: true, Revision: 39, Revocations: &identity.Revocations{Version: 5}, Policy: &api.Policy{Version: 3}}, true},
		"older revocation list":     {api.Update{Revision: 41, Revocations: &identity.Revocations{Version: 4}}, true},
		"older policy":              {api.Update{Revision: 41, Policy: &api.Policy{Version: 2}}, true},
		"snapshot, same versions":   {taken, false},
		"newer revocation list":     {api.Update{Revision: 41, Revocations: &identity.Revocations{Version: 6}}, false},
		"change below the revision": {api.Update{Revision: 30, Services: []api.Registration{{Name: "api"}}}, false},
	} {
		err := again.admit(c.u)
		if got := errors.Is(err, errRollback); got != c.refused {
			t.Errorf("%s: refused %v, want %v (%v)", name, got, c.refused, err)
		}
	}
}

// TestFloorDamaged: a floor file that does not read stops the agent,
// naming the file and the reset; none at all is the zero floor.
func TestFloorDamaged(t *testing.T) {
	dir := t.TempDir()
	for _, data := range []string{`{"revocations":`, `{"revocations":-1}`, `{"revocations":1} {}`, `{"epoch":1}`, `{"policy":1,"x":"` + strings.Repeat("a", maxFloorBytes) + `"}`,
		`{"revoked_grants":[{"id":"","until":"2026-01-01T00:00:00Z"}]}`,
		`{"revoked_grants":[{"id":"` + strings.Repeat("g", maxGrantIDLen+1) + `","until":"2026-01-01T00:00:00Z"}]}`,
		`{"revoked_grants":[` + strings.Repeat(`{"id":"g","until":"2026-01-01T00:00:00Z"},`, maxRevokedGrants) + `{"id":"g","until":"2026-01-01T00:00:00Z"}]}`,
	} {
		if err := os.WriteFile(filepath.Join(dir, FloorFile), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := loadFloor(dir, time.Time{})
		if err == nil || !strings.Contains(err.Error(), FloorFile) || !strings.Contains(err.Error(), "moat agent floor reset") {
			t.Errorf("%.40q: got %v, want an error naming the file and the reset", data, err)
		}
	}
}

// TestRevokedGrantStaysRevoked: a break-glass grant carries no version of
// its own, but its revocation is for good. Once the agent holds a grant
// revoked, neither a change nor a snapshot that shows it active again
// (an older copy of the store, whose revision and lists the restored
// server's writes moved past the agent's) brings it back while it could
// still be used.
func TestRevokedGrantStaysRevoked(t *testing.T) {
	dir := t.TempDir()
	f, err := loadFloor(dir, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a := &Agent{
		cfg: Config{Node: "web-1", DataDir: dir, Now: func() time.Time { return now }},
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), trust: identity.NewTrust(identity.TrustConfig{}),
		svids: map[string]*svid{}, changed: newBroadcast(), updates: newBroadcast(), wake: make(chan struct{}, 1), floor: f,
	}
	active := api.Grant{ID: "g1", Node: "web-1", Mode: api.ModeForward, Starts: now.Add(-time.Minute), Expires: now.Add(time.Hour)}
	revoked := active
	revoked.Revoked, revoked.RevokedBy = now, "spiffe://example.org/admin/bob"
	frames := []api.Update{
		{Full: true, Revision: 10, Revocations: &identity.Revocations{Version: 1}, Policy: &api.Policy{Version: 1}, Grants: []api.Grant{active}},
		{Revision: 11, Grants: []api.Grant{revoked}},
	}
	for _, u := range frames {
		if err := a.applyFrame(u, false); err != nil {
			t.Fatal(err)
		}
	}
	for name, u := range map[string]api.Update{
		"a change":   {Revision: 12, Grants: []api.Grant{active}},
		"a snapshot": {Full: true, Revision: 13, Revocations: &identity.Revocations{Version: 1}, Policy: &api.Policy{Version: 1}, Grants: []api.Grant{active}},
	} {
		if err := a.applyFrame(u, false); err != nil {
			t.Fatal(err)
		}
		if g, ok := a.Grant("g1"); !ok || g.Active(now) {
			t.Errorf("after %s showing it active, the revoked grant is %+v (held: %v)", name, g, ok)
		}
	}
}

// TestRevokedGrantStaysRevokedAfterRestart: the agent holds a grant
// revoked, restarts from its data directory, and is then sent a snapshot
// (a rolled-back store whose revision and lists moved past the agent's)
// showing the grant active again: it stays revoked.
func TestRevokedGrantStaysRevokedAfterRestart(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	start := func() *Agent {
		t.Helper()
		f, err := loadFloor(dir, now)
		if err != nil {
			t.Fatal(err)
		}
		return &Agent{
			cfg: Config{Node: "web-1", DataDir: dir, Now: func() time.Time { return now }},
			log: slog.New(slog.NewTextHandler(io.Discard, nil)), trust: identity.NewTrust(identity.TrustConfig{}),
			svids: map[string]*svid{}, changed: newBroadcast(), updates: newBroadcast(), wake: make(chan struct{}, 1), floor: f,
		}
	}
	active := api.Grant{ID: "g1", Node: "web-1", Mode: api.ModeForward, Starts: now.Add(-time.Minute), Expires: now.Add(time.Hour)}
	revoked := active
	revoked.Revoked, revoked.RevokedBy = now, "spiffe://example.org/admin/bob"
	a := start()
	for _, u := range []api.Update{
		{Full: true, Revision: 10, Revocations: &identity.Revocations{Version: 1}, Policy: &api.Policy{Version: 1}, Grants: []api.Grant{active}},
		{Revision: 11, Grants: []api.Grant{revoked}},
	} {
		if err := a.apply(u); err != nil {
			t.Fatal(err)
		}
	}

	a = start()
	if err := a.apply(api.Update{Full: true, Revision: 13, Revocations: &identity.Revocations{Version: 1}, Policy: &api.Policy{Version: 1}, Grants: []api.Grant{active}}); err != nil {
		t.Fatal(err)
	}
	if g, ok := a.Grant("g1"); ok && g.Active(now) {
		t.Errorf("after a restart, a snapshot showing the revoked grant active made it active: %+v", g)
	}
	if a.RollbacksRefused() != 1 {
		t.Errorf("refused %d frames, want 1", a.RollbacksRefused())
	}

	t.Log("once the grant would have ended anyway, the floor forgets it")
	now = now.Add(2 * time.Hour)
	f, err := loadFloor(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.grants) != 0 {
		t.Errorf("the floor still holds %v after the grant's end", f.grants)
	}
}

// TestRevokedGrantsBounded: past the revoked grants the floor keeps, the
// one that does not fit is not forgotten at a restart but closes the node
// to every grant until it would have ended, and says so.
func TestRevokedGrantsBounded(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f, err := loadFloor(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	revoked := func(id string, d time.Duration) api.Grant {
		return api.Grant{ID: id, Node: "web-1", Expires: now.Add(d), Revoked: now}
	}
	for i := range maxRevokedGrants {
		if err := f.revokeGrant(revoked(fmt.Sprintf("g%d", i), time.Hour), now); err != nil {
			t.Fatalf("grant %d of %d: %v", i, maxRevokedGrants, err)
		}
	}
	over := revoked("over", 3*time.Hour)
	if err := f.revokeGrant(over, now); err == nil || !strings.Contains(err.Error(), "takes no grant until") {
		t.Fatalf("one revoked grant too many: got %v, want an error saying the node takes no grant", err)
	}
	fresh := api.Grant{ID: "fresh", Node: "web-1", Expires: now.Add(time.Hour)}
	over.Revoked = time.Time{}
	for _, at := range []time.Duration{0, 2 * time.Hour} {
		again, err := loadFloor(dir, now.Add(at))
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range []api.Grant{over, fresh} {
			if err := again.admitGrant(g, now.Add(at)); err == nil {
				t.Errorf("after a restart, at +%s, grant %s taken active while the floor is past its bound", at, g.ID)
			}
		}
	}
	later := now.Add(3 * time.Hour)
	again, err := loadFloor(dir, later)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.admitGrant(fresh, later); err != nil {
		t.Errorf("once the grant that did not fit would have ended: %v", err)
	}
}
