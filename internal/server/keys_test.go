package server

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"moat/internal/audit"
	"moat/internal/seal"
	"moat/internal/store"
	"moat/internal/testkit"
)

// keysFixture is a keyring on a fake clock, a sealed bbolt store holding
// records under the first key, and a key manager over them.
type keysFixture struct {
	now     time.Time
	mu      sync.Mutex // guards now and entries
	entries []audit.Entry
	kr      *seal.Keyring
	st      store.Store
	keys    *Keys
	tick    chan time.Time
}

func (f *keysFixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *keysFixture) actions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, e := range f.entries {
		out = append(out, e.Action)
	}
	return out
}

func newKeysFixture(t *testing.T, every time.Duration) *keysFixture {
	t.Helper()
	return newKeysFixtureMax(t, every, 0)
}

// newKeysFixtureMax is newKeysFixture with a keyring that rotates after
// maxEncryptions under one key (0: seal's default).
func newKeysFixtureMax(t *testing.T, every time.Duration, maxEncryptions uint64) *keysFixture {
	t.Helper()
	dir := t.TempDir()
	f := &keysFixture{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), tick: make(chan time.Time)}
	kek, err := seal.GenerateKeyFile(dir+"/kek", nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.kr, err = seal.Open(seal.Config{Dir: dir, KEK: kek, Now: f.clock, MaxEncryptions: maxEncryptions}); err != nil {
		t.Fatal(err)
	}
	sealer := NewStoreSealer(f.kr.AEAD())
	st, err := store.OpenBolt(store.BoltConfig{Dir: dir, Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.st = st
	for i := range 40 {
		if _, err := st.Put(context.Background(), fmt.Sprintf("svc/s%02d", i), []byte(fmt.Sprintf("value %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	rec := audit.RecorderFunc(func(_ context.Context, e audit.Entry) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.entries = append(f.entries, e)
		return nil
	})
	f.keys, err = NewKeys(KeysConfig{Keyring: f.kr, KEK: kek, Store: st, StoreSealer: sealer, Audit: rec, Every: every,
		After: func(time.Duration) <-chan time.Time { return f.tick }, Now: f.clock, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *keysFixture) usage(t *testing.T) map[uint32]seal.Usage {
	t.Helper()
	u, err := seal.CountUsage(context.Background(), newStoreSource(f.st, f.keys.cfg.StoreSealer), 7)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

var waitUntil = testkit.WaitFor

// check lets the key manager's scheduler make its next check, failing
// when no scheduler takes the tick.
func (f *keysFixture) check(t *testing.T) {
	t.Helper()
	select {
	case f.tick <- time.Time{}:
	case <-time.After(testkit.WaitLimit):
		t.Fatal("no scheduled check ran")
	}
}

// TestScheduledRotation: the key manager rotates once the primary reaches
// its age, records the rotation in the audit log, and moves every stored
// value onto the new key; before that age it does nothing.
func TestScheduledRotation(t *testing.T) {
	f := newKeysFixture(t, 90*24*time.Hour)
	first := f.kr.Primary()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.keys.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	f.mu.Lock()
	f.now = f.now.Add(89 * 24 * time.Hour)
	f.mu.Unlock()
	f.tick <- time.Time{}
	f.tick <- time.Time{} // the check after the tick has run
	if f.kr.Primary() != first {
		t.Fatal("rotated before the key was 90 days old")
	}

	f.mu.Lock()
	f.now = f.now.Add(2 * 24 * time.Hour)
	f.mu.Unlock()
	f.tick <- time.Time{}
	waitUntil(t, "the scheduled rotation", func() bool { return f.kr.Primary() != first })
	second := f.kr.Primary()
	waitUntil(t, "the re-encryption pass", func() bool {
		u := f.usage(t)
		return u[first].Records == 0 && u[second].Records == 40
	})
	waitUntil(t, "the audit entries", func() bool {
		a := f.actions()
		return len(a) == 2 && a[0] == "keys.rotate" && a[1] == "keys.reencrypt"
	})
	for i := range 40 {
		kv, err := f.st.Get(context.Background(), fmt.Sprintf("svc/s%02d", i))
		if err != nil || string(kv.Value) != fmt.Sprintf("value %d", i) {
			t.Fatalf("svc/s%02d after the pass: %q %v", i, kv.Value, err)
		}
	}
}

// TestRotationByEncryptions: with no age schedule (key_rotation: none) the
// key manager still rotates a primary that has sealed MaxEncryptions
// records, at its next check, records why, and moves the stored values
// onto the new key; before that it does nothing.
func TestRotationByEncryptions(t *testing.T) {
	f := newKeysFixtureMax(t, 0, 50) // the fixture's 40 values are sealed
	first := f.kr.Primary()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.keys.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	f.check(t)
	f.check(t)
	if f.kr.Primary() != first {
		t.Fatal("rotated after 40 of 50 encryptions")
	}
	for i := range 10 {
		if _, err := f.st.Put(context.Background(), fmt.Sprintf("svc/t%02d", i), []byte("more")); err != nil {
			t.Fatal(err)
		}
	}
	if st := f.kr.Status(nil); st.MaxEncryptions != 50 || st.Encryptions < 50 {
		t.Fatalf("status: %d of %d encryptions, want at least 50 of 50", st.Encryptions, st.MaxEncryptions)
	}
	f.check(t)
	waitUntil(t, "the rotation by encryptions", func() bool { return f.kr.Primary() != first })
	waitUntil(t, "the audit entries", func() bool {
		a := f.actions()
		return len(a) == 2 && a[0] == "keys.rotate" && a[1] == "keys.reencrypt"
	})
	f.mu.Lock()
	reason := f.entries[0].Detail["reason"]
	f.mu.Unlock()
	if reason != "encryptions" {
		t.Fatalf("rotation reason %q, want encryptions", reason)
	}
	second := f.kr.Primary()
	waitUntil(t, "the re-encryption pass", func() bool {
		u := f.usage(t)
		return u[first].Records == 0 && u[second].Records == 50
	})
}

// TestStoreSourceConflict: a value changed between the pass's read and its
// write is not overwritten with the old plaintext.
func TestStoreSourceConflict(t *testing.T) {
	f := newKeysFixture(t, 0)
	if _, err := f.kr.Rotate(); err != nil {
		t.Fatal(err)
	}
	recs, err := f.keys.src.Scan(context.Background(), nil, 5)
	if err != nil || len(recs) != 5 {
		t.Fatalf("scan: %d records, %v", len(recs), err)
	}
	if _, err := f.st.Put(context.Background(), string(recs[0].Key), []byte("changed")); err != nil {
		t.Fatal(err)
	}
	ct, err := f.kr.AEAD().Encrypt([]byte("value 0"), recs[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := f.keys.src.CompareAndSwap(context.Background(), recs[0].Key, recs[0].Value, ct)
	if err != nil || ok {
		t.Fatalf("swap over a changed value: %v %v", ok, err)
	}
	kv, err := f.st.Get(context.Background(), string(recs[0].Key))
	if err != nil || string(kv.Value) != "changed" {
		t.Fatalf("value after a refused swap: %q %v", kv.Value, err)
	}
}

// TestStorePassResumes: a pass over the store stopped between batches
// leaves every value readable and, run again, finishes from its cursor.
func TestStorePassResumes(t *testing.T) {
	f := newKeysFixture(t, 0)
	first := f.kr.Primary()
	if _, err := f.kr.Rotate(); err != nil {
		t.Fatal(err)
	}
	for stop := 1; stop <= 3; stop++ {
		ctx, cancel := context.WithCancel(context.Background())
		batches := 0
		_, err := f.kr.Reencrypt(ctx, seal.ReencryptConfig{Name: storePass, Source: newStoreSource(f.st, f.keys.cfg.StoreSealer), Batch: 7,
			Progress: func(seal.Progress) {
				if batches++; batches == 1 {
					cancel()
				}
			}})
		cancel()
		if err == nil {
			t.Fatalf("run %d: the pass was not stopped", stop)
		}
		for i := range 40 {
			if kv, err := f.st.Get(context.Background(), fmt.Sprintf("svc/s%02d", i)); err != nil || string(kv.Value) != fmt.Sprintf("value %d", i) {
				t.Fatalf("run %d: svc/s%02d unreadable mid-pass: %q %v", stop, i, kv.Value, err)
			}
		}
		if u := f.usage(t); u[first].Records != int64(40-7*stop) {
			t.Fatalf("run %d: %d values left under the old key, want %d", stop, u[first].Records, 40-7*stop)
		}
	}
	p, err := f.kr.Reencrypt(context.Background(), seal.ReencryptConfig{Name: storePass, Source: newStoreSource(f.st, f.keys.cfg.StoreSealer), Batch: 7})
	if err != nil || !p.Done {
		t.Fatalf("final run: %+v %v", p, err)
	}
	if u := f.usage(t); u[first].Records != 0 || u[f.kr.Primary()].Records != 40 {
		t.Fatalf("after the pass: %+v", u)
	}
}
