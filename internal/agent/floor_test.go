package agent

import (
	"errors"
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
	f, err := loadFloor(dir)
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
	again, err := loadFloor(dir)
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
	for _, data := range []string{`{"revocations":`, `{"revocations":-1}`, `{"revocations":1} {}`, `{"epoch":1}`, `{"policy":1,"x":"` + strings.Repeat("a", maxFloorBytes) + `"}`} {
		if err := os.WriteFile(filepath.Join(dir, FloorFile), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := loadFloor(dir)
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
	f, err := loadFloor(dir)
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
