package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestBoltReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenBolt(BoltConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	r1 := mustPut(t, s, "svc/api", "v1")
	r2, err := s.Txn(ctx, []Cond{{Key: "svc/api", ModRevision: r1}}, []Op{Put("svc/api", []byte("v2")), Put("node/n1", []byte("n"))})
	if err != nil {
		t.Fatal(err)
	}
	r3, _ := s.Delete(ctx, "node/n1")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	t.Log("reopening the same directory")
	s = openBolt(t, BoltConfig{Dir: dir})
	if rev := mustRev(t, s); rev != r3 {
		t.Fatalf("Rev after reopen = %d, want %d", rev, r3)
	}
	kv, err := s.Get(ctx, "svc/api")
	if want := (KV{Key: "svc/api", Value: []byte("v2"), CreateRevision: r1, ModRevision: r2}); err != nil || !kvEqual(kv, want) {
		t.Fatalf("Get after reopen = %+v, %v; want %+v", kv, err, want)
	}
	if _, err := s.Get(ctx, "node/n1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted key after reopen: %v", err)
	}
	if r4 := mustPut(t, s, "svc/web", "w"); r4 != r3+1 {
		t.Fatalf("first Put after reopen at revision %d, want %d", r4, r3+1)
	}
	ch, err := s.Watch(ctx, "", r1)
	if err != nil {
		t.Fatalf("Watch across reopen: %v", err)
	}
	for i, w := range []string{
		fmt.Sprintf("put svc/api=v2 @%d/%d", r1, r2),
		fmt.Sprintf("put node/n1=n @%d/%d", r2, r2),
		fmt.Sprintf("delete node/n1 @%d", r3),
		fmt.Sprintf("put svc/web=w @%d/%d", r3+1, r3+1),
	} {
		if got := evString(next(t, ch)); got != w {
			t.Fatalf("event %d after reopen = %q, want %q", i, got, w)
		}
	}
}

func TestBoltHistoryBound(t *testing.T) {
	ctx := context.Background()
	s := openBolt(t, BoltConfig{Dir: t.TempDir(), History: 3})
	for i := 1; i <= 6; i++ {
		mustPut(t, s, "svc/a", fmt.Sprint(i))
	}
	// Revisions 4, 5 and 6 are kept: a watch needs to start at 3 or later.
	if _, err := s.Watch(ctx, "", 2); !errors.Is(err, ErrCompacted) {
		t.Fatalf("Watch(2) with history 3 at revision 6 = %v, want ErrCompacted", err)
	}
	ch, err := s.Watch(ctx, "", 3)
	if err != nil {
		t.Fatalf("Watch(3): %v", err)
	}
	for i := int64(4); i <= 6; i++ {
		if got, want := evString(next(t, ch)), fmt.Sprintf("put svc/a=%d @1/%d", i, i); got != want {
			t.Fatalf("event = %q, want %q", got, want)
		}
	}
	var logLen int
	if err := s.db.View(func(tx *bolt.Tx) error { logLen = tx.Bucket(bktLog).Stats().KeyN; return nil }); err != nil {
		t.Fatal(err)
	}
	if logLen != 3 {
		t.Fatalf("change log holds %d revisions, want 3", logLen)
	}
}

// TestBoltSlowWatcherCompacted: a watcher whose consumer falls behind the
// history bound gets the events it can, then ErrCompacted, then the end.
func TestBoltSlowWatcherCompacted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := openBolt(t, BoltConfig{Dir: t.TempDir(), History: 2})
	s.batch = 1
	ch, err := s.Watch(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 6; i++ {
		mustPut(t, s, "svc/a", fmt.Sprint(i))
	}
	evs := waitClosed(t, ch)
	if len(evs) == 0 {
		t.Fatal("watch closed without an event")
	}
	last := evs[len(evs)-1]
	if !errors.Is(last.Err, ErrCompacted) {
		t.Fatalf("last event = %q, want ErrCompacted", evString(last))
	}
	for i, ev := range evs[:len(evs)-1] {
		if ev.Err != nil || ev.KV.ModRevision != int64(i+1) {
			t.Fatalf("event %d = %q, want the put at revision %d", i, evString(ev), i+1)
		}
	}
}

func TestBoltSealMismatch(t *testing.T) {
	sealer := newSealer(t)
	tests := []struct {
		name         string
		create, open Sealer
	}{
		{"sealed file opened without sealer", sealer, nil},
		{"plain file opened with sealer", nil, sealer},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		s, err := OpenBolt(BoltConfig{Dir: dir, Sealer: tt.create})
		if err != nil {
			t.Fatal(err)
		}
		mustPut(t, s, "svc/a", "x")
		s.Close()
		s, err = OpenBolt(BoltConfig{Dir: dir, Sealer: tt.open})
		if err == nil {
			s.Close()
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: OpenBolt = %v, want ErrInvalid", tt.name, err)
		}
	}
}

// TestBoltSealedValueMoved copies one key's stored record under another
// key, as an attacker with the file could, and expects it not to open.
func TestBoltSealedValueMoved(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	sealer := newSealer(t)
	s, err := OpenBolt(BoltConfig{Dir: dir, Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "svc/a", "secret-of-a")
	mustPut(t, s, "svc/b", "value-of-b")
	s.Close()

	db, err := bolt.Open(filepath.Join(dir, "store.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		kv := tx.Bucket(bktKV)
		a := bytes.Clone(kv.Get([]byte("svc/a")))
		if bytes.Contains(a, []byte("secret-of-a")) {
			return fmt.Errorf("record of svc/a holds the plaintext: %q", a)
		}
		return kv.Put([]byte("svc/b"), a)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	// The whole file is checked at open: the moved value is found there.
	_, err = OpenBolt(BoltConfig{Dir: dir, Sealer: sealer})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "store.db") || !strings.Contains(err.Error(), `"svc/b"`) {
		t.Fatalf("OpenBolt over a value moved to svc/b = %v; want ErrCorrupt naming store.db and the key", err)
	}
	_ = ctx
}

// TestBoltDamageRefusedAtOpen damages a file the ways a disk or an editor
// does and expects OpenBolt to refuse it, naming the file, instead of
// serving part of it.
func TestBoltDamageRefusedAtOpen(t *testing.T) {
	sealer := newSealer(t)
	build := func(t *testing.T) string {
		dir := t.TempDir()
		s, err := OpenBolt(BoltConfig{Dir: dir, Sealer: sealer})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 40 {
			mustPut(t, s, fmt.Sprintf("svc/s%02d", i), strings.Repeat("v", 200))
		}
		s.Close()
		return dir
	}
	raw := func(t *testing.T, dir string, fn func(tx *bolt.Tx) error) {
		db, err := bolt.Open(filepath.Join(dir, "store.db"), 0o600, &bolt.Options{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.Update(fn); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"a key dropped behind the store's back", func(t *testing.T, dir string) {
			raw(t, dir, func(tx *bolt.Tx) error { return tx.Bucket(bktKV).Delete([]byte("svc/s07")) })
		}},
		{"a revision rewritten", func(t *testing.T, dir string) {
			raw(t, dir, func(tx *bolt.Tx) error {
				kv := tx.Bucket(bktKV)
				r, _ := decodeRecord(bytes.Clone(kv.Get([]byte("svc/s03"))))
				r.create = 1
				return kv.Put([]byte("svc/s03"), encodeRecord(r))
			})
		}},
		{"flipped bytes in a leaf page", func(t *testing.T, dir string) {
			path := filepath.Join(dir, "store.db")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// Flip one byte of a stored value's ciphertext on its page.
			i := bytes.Index(b, []byte("svc/s20"))
			if i < 0 {
				t.Fatal("key not found in the file")
			}
			b[i+len("svc/s20")+30] ^= 0x40
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := build(t)
			s, err := OpenBolt(BoltConfig{Dir: dir, Sealer: sealer})
			if err != nil {
				t.Fatalf("the undamaged file: %v", err)
			}
			s.Close()
			tc.damage(t, dir)
			_, err = OpenBolt(BoltConfig{Dir: dir, Sealer: sealer})
			if err == nil {
				t.Fatal("OpenBolt accepted a damaged file")
			}
			if !strings.Contains(err.Error(), filepath.Join(dir, "store.db")) || !strings.Contains(err.Error(), "damaged") {
				t.Fatalf("error %q does not name the damaged file", err)
			}
			t.Log(err)
		})
	}
}

// TestBoltListCountChecked drops a key under an open store without a
// recorded change: listing its segment fails instead of returning less.
func TestBoltListCountChecked(t *testing.T) {
	s := openBolt(t, BoltConfig{Dir: t.TempDir()})
	for i := range 5 {
		mustPut(t, s, fmt.Sprintf("svc/s%d", i), "x")
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bktKV).Delete([]byte("svc/s2")) }); err != nil {
		t.Fatal(err)
	}
	if kvs, _, err := s.List(context.Background(), "svc/"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("List over a silently dropped key = %d keys, %v; want ErrCorrupt", len(kvs), err)
	}
	if _, err := s.Delete(context.Background(), "svc/s1"); err != nil {
		t.Fatal(err)
	}
}

func TestBoltCorruptRecord(t *testing.T) {
	ctx := context.Background()
	s := openBolt(t, BoltConfig{Dir: t.TempDir()})
	mustPut(t, s, "svc/a", "x")
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bktKV).Put([]byte("svc/a"), []byte{recordVersion, 5, 3})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "svc/a"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get of a damaged record = %v, want ErrCorrupt", err)
	}
	if _, err := s.Put(ctx, "svc/a", []byte("y")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Put over a damaged record = %v, want ErrCorrupt", err)
	}
}

func TestBoltLocked(t *testing.T) {
	dir := t.TempDir()
	openBolt(t, BoltConfig{Dir: dir})
	s, err := OpenBolt(BoltConfig{Dir: dir, LockTimeout: 100 * time.Millisecond})
	if err == nil {
		s.Close()
		t.Fatal("second OpenBolt of a directory in use succeeded")
	}
	t.Logf("second open: %v", err)
}

func TestOpenBoltConfig(t *testing.T) {
	good := BoltConfig{Dir: t.TempDir()}
	tests := []struct {
		name   string
		mutate func(c *BoltConfig)
	}{
		{"no dir", func(c *BoltConfig) { c.Dir = "" }},
		{"negative history", func(c *BoltConfig) { c.History = -1 }},
	}
	for _, tt := range tests {
		c := good
		tt.mutate(&c)
		s, err := OpenBolt(c)
		if err == nil {
			s.Close()
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: OpenBolt = %v, want ErrInvalid", tt.name, err)
		}
	}
	s, err := OpenBolt(good)
	if err != nil {
		t.Fatalf("good config: %v", err)
	}
	s.Close()
}

// TestBoltGroupCommit: concurrent writers share transactions, yet every
// write gets its own revision, and a watch sees each exactly once, in order,
// with the revision its writer was told.
func TestBoltGroupCommit(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := openBolt(t, BoltConfig{Dir: t.TempDir()})
	ch, err := s.Watch(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 20
	revs := make(chan string, writers*each)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				key := fmt.Sprintf("svc/w%d-%d", w, i)
				rev, err := s.Put(ctx, key, []byte("v"))
				if err != nil {
					t.Errorf("Put(%q): %v", key, err)
					return
				}
				revs <- fmt.Sprintf("%s@%d", key, rev)
			}
		}()
	}
	wg.Wait()
	close(revs)
	told := map[string]bool{}
	for r := range revs {
		told[r] = true
	}
	if len(told) != writers*each {
		t.Fatalf("%d distinct key@revision pairs, want %d", len(told), writers*each)
	}
	for i := 1; i <= writers*each; i++ {
		ev := next(t, ch)
		if ev.KV.ModRevision != int64(i) || !told[fmt.Sprintf("%s@%d", ev.KV.Key, i)] {
			t.Fatalf("event %d = %q: not at revision %d or not what the writer was told", i, evString(ev), i)
		}
	}
}
