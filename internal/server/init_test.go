package server

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"moat/internal/api"
	"moat/internal/store"
)

// raceStore hides the meta record from Get, as a store looks to the loser
// of a race between two inits that both checked before either wrote.
type raceStore struct{ store.Store }

func (r raceStore) Get(ctx context.Context, key string) (store.KV, error) {
	if key == keyMeta {
		return store.KV{}, store.ErrNotFound
	}
	return r.Store.Get(ctx, key)
}

// TestInitLosingARaceLeavesNothing: the init that loses the race for the
// store writes no admin credentials (they would authenticate to a CA that
// was never stored), and the winner's are complete.
func TestInitLosingARaceLeavesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.OpenBolt(store.BoltConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	winner := filepath.Join(dir, "winner.admin")
	if err := Init(ctx, st, InitConfig{TrustDomain: "example.org", AdminDir: winner}); err != nil {
		t.Fatal(err)
	}
	loser := filepath.Join(dir, "loser.admin")
	err = Init(ctx, raceStore{st}, InitConfig{TrustDomain: "example.org", AdminDir: loser})
	if !errors.Is(err, ErrInitialized) {
		t.Fatalf("the losing init = %v, want ErrInitialized", err)
	}
	if _, err := os.Stat(loser); !os.IsNotExist(err) {
		t.Fatalf("the losing init left %s behind (%v)", loser, err)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != "winner.admin" && e.Name() != "store.db" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
	if _, _, err := api.LoadCredentials(winner); err != nil {
		t.Fatalf("the winner's credentials: %v", err)
	}
}

// TestInitRefusesOccupiedAdminDir: credentials already in the admin
// directory are never overwritten by an init.
func TestInitRefusesOccupiedAdminDir(t *testing.T) {
	dir := t.TempDir()
	admin := filepath.Join(dir, "admin")
	os.MkdirAll(admin, 0o700)
	os.WriteFile(filepath.Join(admin, api.CertFile), []byte("theirs"), 0o600)
	st, err := store.OpenBolt(store.BoltConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := Init(context.Background(), st, InitConfig{TrustDomain: "example.org", AdminDir: admin}); err == nil {
		t.Fatal("init wrote over existing admin credentials")
	}
	if b, _ := os.ReadFile(filepath.Join(admin, api.CertFile)); string(b) != "theirs" {
		t.Fatal("the existing certificate changed")
	}
	if _, err := st.Get(context.Background(), keyMeta); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused init stored a control plane: %v", err)
	}
}
