package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
