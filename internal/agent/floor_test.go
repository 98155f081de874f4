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
	for _, data := range []string{`{"revocations":`, `{"revocations":-1}`, `{"revocations":1} {}`, `{"epoch":-1}`, `{"bogus":1}`, `{"carried":{"ids":[""]}}`, `{"policy":1,"x":"` + strings.Repeat("a", maxFloorBytes) + `"}`,
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

// TestFloorEpoch: the store epoch is compared first. A snapshot of a newer
// epoch is taken although its versions are older (a restored control
// plane), and its versions become the floor; a frame of an older epoch,
// or of the same epoch at an older revision (a store that lags), is
// refused, and so is a change of a newer epoch before its snapshot.
func TestFloorEpoch(t *testing.T) {
	dir := t.TempDir()
	f, err := loadFloor(dir, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	before := api.Update{Full: true, Revision: 400, Revocations: &identity.Revocations{Version: 9}, Policy: &api.Policy{Version: 7}}
	if err := f.admit(before); err != nil {
		t.Fatal(err)
	}
	if err := f.raise(before); err != nil {
		t.Fatal(err)
	}
	restored := api.Update{Epoch: 1000, Full: true, Revision: 12, Revocations: &identity.Revocations{Version: 2}, Policy: &api.Policy{Version: 1}}
	if err := f.admit(api.Update{Epoch: 1000, Revision: 13, Policy: &api.Policy{Version: 2}}); !errors.Is(err, errRollback) {
		t.Fatalf("a change of a newer epoch before its snapshot: %v, want refused", err)
	}
	if err := f.admit(restored); err != nil {
		t.Fatalf("snapshot of a newer epoch refused: %v", err)
	}
	if _, err := f.enter(restored, identity.Revocations{Version: 9}, nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := f.raise(restored); err != nil {
		t.Fatal(err)
	}
	again, err := loadFloor(dir, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Versions{Epoch: 1000, Revision: 12, Revocations: 2, Policy: 1}); again.v != want {
		t.Fatalf("floor after the restore: %+v, want %+v", again.v, want)
	}
	for name, c := range map[string]struct {
		u       api.Update
		refused bool
	}{
		"the earlier epoch, newer versions":  {before, true},
		"a change of the earlier epoch":      {api.Update{Revision: 401, Revocations: &identity.Revocations{Version: 10}}, true},
		"same epoch, older revision":         {api.Update{Epoch: 1000, Full: true, Revision: 11, Revocations: &identity.Revocations{Version: 2}, Policy: &api.Policy{Version: 1}}, true},
		"same epoch, older revocation list":  {api.Update{Epoch: 1000, Revision: 13, Revocations: &identity.Revocations{Version: 1}}, true},
		"same epoch, same snapshot":          {restored, false},
		"same epoch, newer change":           {api.Update{Epoch: 1000, Revision: 13, Revocations: &identity.Revocations{Version: 3}}, false},
		"a later restore's snapshot":         {api.Update{Epoch: 2000, Full: true, Revision: 5, Revocations: &identity.Revocations{}, Policy: &api.Policy{}}, false},
		"an epoch below, far newer versions": {api.Update{Epoch: 999, Full: true, Revision: 1 << 40, Revocations: &identity.Revocations{Version: 1 << 40}, Policy: &api.Policy{Version: 1 << 40}}, true},
	} {
		err := again.admit(c.u)
		if got := errors.Is(err, errRollback); got != c.refused {
			t.Errorf("%s: refused %v, want %v (%v)", name, got, c.refused, err)
		}
	}
}

// TestFloorCarriesRevocations: what the agent held revoked that a
// restored list lacks is carried, after a restart too, and added to every
// list it takes at that epoch: revoked identities for good, serials until
// their certificates end. Past maxCarried the newer epoch is refused and
// the floor is left as it was.
func TestFloorCarriesRevocations(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	f, err := loadFloor(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	held := identity.Revocations{Version: 9,
		IDs:     []string{"spiffe://example.org/svc/old", "spiffe://example.org/svc/stolen", "spiffe://example.org/node/lost"},
		Serials: []string{"a1", "b2", "c3", "d4"},
		Expires: map[string]time.Time{"a1": now.Add(time.Hour), "b2": now.Add(-time.Minute), "d4": now.Add(time.Hour)},
	}
	grant := api.Grant{ID: "g1", Node: "web-1", Mode: api.ModeForward, Starts: now.Add(-time.Minute), Expires: now.Add(time.Hour)}
	revoked := grant
	revoked.Revoked = now.Add(-time.Second)
	if err := f.revokeGrant(revoked, now); err != nil {
		t.Fatal(err)
	}
	listed := identity.Revocations{Version: 2, IDs: []string{"spiffe://example.org/svc/old"}, Serials: []string{"d4"}, Expires: map[string]time.Time{"d4": now.Add(time.Hour)}}
	u := api.Update{Epoch: 7, Full: true, Revision: 3, Revocations: &listed, Policy: &api.Policy{}}
	n, err := f.enter(u, held, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.admitGrant(grant, now); !errors.Is(err, errRollback) {
		t.Fatalf("a grant held revoked, shown active by the restored control plane: %v, want refused", err)
	}
	// svc/stolen and node/lost, a1 (until its end) and c3 (no end known);
	// b2 ended, the rest are listed.
	if n != 4 {
		t.Fatalf("carried %d revocations, want 4", n)
	}
	again, err := loadFloor(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	later := identity.Revocations{Version: 3, IDs: []string{"spiffe://example.org/svc/old", "spiffe://example.org/svc/new"}, Serials: []string{"d4", "e5"}}
	got := again.withCarried(later)
	wantIDs := []string{"spiffe://example.org/svc/old", "spiffe://example.org/svc/new", "spiffe://example.org/svc/stolen", "spiffe://example.org/node/lost"}
	if fmt.Sprint(got.IDs) != fmt.Sprint(wantIDs) || fmt.Sprint(got.Serials) != fmt.Sprint([]string{"d4", "e5", "a1", "c3"}) || got.Version != 3 {
		t.Fatalf("list enforced: %+v", got)
	}
	if !got.Expires["a1"].Equal(now.Add(time.Hour)) {
		t.Errorf("a1 carried without its end: %v", got.Expires)
	}
	if fmt.Sprint(later.IDs) != fmt.Sprint([]string{"spiffe://example.org/svc/old", "spiffe://example.org/svc/new"}) {
		t.Errorf("the list taken was changed: %v", later.IDs)
	}
	// Read again once a1's certificate ended: a1 is no longer carried.
	ended, err := loadFloor(dir, now.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got := ended.withCarried(identity.Revocations{}); fmt.Sprint(got.Serials) != "[c3]" || len(got.IDs) != 2 {
		t.Fatalf("carried once a1 ended: %+v", got)
	}

	// The list the floor vouches for not held (the state cache lost): what
	// to carry is not known, and the newer epoch is refused.
	if _, err := again.enter(api.Update{Epoch: 8, Full: true, Revision: 1, Revocations: &identity.Revocations{}}, identity.Revocations{Version: 1}, nil, now); err == nil || !strings.Contains(err.Error(), "took revocation list version 2 but holds version 1") {
		t.Fatalf("held list older than the floor's: %v", err)
	}

	// Too many to carry: the newer epoch is refused, the floor unchanged.
	many := identity.Revocations{Version: 2}
	for i := range maxCarried + 1 {
		many.Serials = append(many.Serials, fmt.Sprintf("%x", i+1000))
	}
	_, err = again.enter(api.Update{Epoch: 8, Full: true, Revision: 1, Revocations: &identity.Revocations{}}, many, nil, now)
	if err == nil || !strings.Contains(err.Error(), "more than 1024") || !strings.Contains(err.Error(), "moat agent floor reset") {
		t.Fatalf("too many to carry: %v", err)
	}
	if again.v.Epoch != 7 {
		t.Fatalf("floor moved to epoch %d on a refused restore", again.v.Epoch)
	}
}

// FuzzLoadFloor: whatever floor.json holds, loading it does not panic; a
// floor that loads is within its bounds, and written back it loads again
// as the same floor.
func FuzzLoadFloor(f *testing.F) {
	f.Add([]byte(`{"epoch":1796647447,"revision":12,"revocations":2,"policy":1,"carried":{"version":0,"serials":["a1"],"ids":["spiffe://example.org/svc/stolen"],"expires":{"a1":"2026-12-08T00:00:00Z"}}}`))
	f.Add([]byte(`{"revision":40,"revocations":5,"policy":3,"revoked_grants":[{"id":"g1","until":"2026-12-08T00:00:00Z"}]}`))
	f.Add([]byte(`{"carried":{"ids":[""]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, FloorFile), data, 0o600); err != nil {
			t.Fatal(err)
		}
		fl, err := loadFloor(dir, time.Time{})
		if err != nil {
			return
		}
		if n := len(fl.carried.IDs) + len(fl.carried.Serials); n > maxCarried || len(fl.grants) > maxRevokedGrants {
			t.Fatalf("loaded past the bounds: %d carried, %d grants", n, len(fl.grants))
		}
		fl.mu.Lock()
		err = fl.saveLocked()
		fl.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		again, err := loadFloor(dir, time.Time{})
		if err != nil {
			t.Fatalf("a floor written back does not load: %v", err)
		}
		if again.v != fl.v || fmt.Sprint(again.carried) != fmt.Sprint(fl.carried) || len(again.grants) != len(fl.grants) {
			t.Fatalf("round trip: %+v %v, then %+v %v", fl.v, fl.carried, again.v, again.carried)
		}
	})
}

// TestFloorCarriesTags: each revocation carried across a restore keeps
// the tag its list came with, after a restart too; the report holds those
// the list taken lacks, with their tags, leaving out what carries no tag
// (carried before tags) and serials ended; a second restore carries the
// tags of what was carried before; a floor holding a tag of a revocation
// it does not carry, or an oversized tag, does not load.
func TestFloorCarriesTags(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	f, err := loadFloor(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	held := identity.Revocations{Version: 4,
		IDs:     []string{"spiffe://example.org/node/lost", "spiffe://example.org/svc/untagged"},
		Serials: []string{"a1", "b2"},
		Expires: map[string]time.Time{"a1": now.Add(time.Hour), "b2": now.Add(2 * time.Hour)},
	}
	tags := map[string][]byte{"spiffe://example.org/node/lost": []byte("tag-lost"), "a1": []byte("tag-a1"), "b2": []byte("tag-b2")}
	u := api.Update{Epoch: 7, Full: true, Revision: 3, Revocations: &identity.Revocations{Version: 1}, Policy: &api.Policy{}}
	if n, err := f.enter(u, held, tags, now); err != nil || n != 4 {
		t.Fatalf("enter: carried %d, %v; want 4", n, err)
	}
	again, err := loadFloor(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	rep := again.lacking(identity.Revocations{Version: 2, Serials: []string{"b2"}}, now.Add(90*time.Minute))
	if len(rep.Revocations) != 1 || rep.Revocations[0].ID != "spiffe://example.org/node/lost" || string(rep.Revocations[0].Tag) != "tag-lost" {
		t.Fatalf("report once a1 ended and b2 is listed: %+v, want node/lost with its tag alone", rep.Revocations)
	}
	rep = again.lacking(identity.Revocations{}, now)
	if len(rep.Revocations) != 3 || rep.Revocations[1].Serial != "a1" || string(rep.Revocations[1].Tag) != "tag-a1" || !rep.Revocations[1].Expires.Equal(now.Add(time.Hour)) {
		t.Fatalf("report against an empty list: %+v, want node/lost, a1 and b2 with their tags and ends", rep.Revocations)
	}

	t.Log("a second restore: what was carried keeps its tag")
	u2 := api.Update{Epoch: 9, Full: true, Revision: 2, Revocations: &identity.Revocations{}, Policy: &api.Policy{}}
	if _, err := again.enter(u2, again.withCarried(identity.Revocations{Version: 1}), nil, now); err != nil {
		t.Fatal(err)
	}
	if rep := again.lacking(identity.Revocations{}, now); len(rep.Revocations) != 3 || string(rep.Revocations[0].Tag) != "tag-lost" {
		t.Fatalf("report after a second restore: %+v", rep.Revocations)
	}

	for name, c := range map[string]struct{ tags, want string }{
		"a tag of what is not carried": {`{"spiffe://example.org/svc/other":"dGFn"}`, `a tag of "spiffe://example.org/svc/other", which is not carried`},
		"an oversized tag":             {`{"a1":"` + strings.Repeat("A", 100) + `"}`, "a tag of 75 bytes (want 1 to 64)"},
	} {
		d := t.TempDir()
		body := `{"epoch":7,"revision":3,"revocations":1,"policy":0,"carried":{"version":0,"serials":["a1"]},"carried_tags":` + c.tags + `}`
		if err := os.WriteFile(filepath.Join(d, FloorFile), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := loadFloor(d, now); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %q", name, err, c.want)
		}
	}
}
