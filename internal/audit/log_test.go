package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// fixedKey is a deterministic key so test logs are reproducible.
func testKey(t testing.TB, name string) (note.Signer, note.Verifier, string) {
	t.Helper()
	skey, vkey, err := GenerateKey(name, bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v, vkey
}

func testClock() func() time.Time {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	n := 0
	return func() time.Time { n++; return t0.Add(time.Duration(n) * time.Second) }
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newTestLog makes a log of n entries in a fresh directory and closes it.
func newTestLog(t testing.TB, n int, sealer Sealer) (dir string, v note.Verifier) {
	t.Helper()
	dir = t.TempDir()
	s, v, _ := testKey(t, "test-log")
	l, err := Open(Config{Dir: dir, Signer: s, Verifier: v, Sealer: sealer, Now: testClock(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		idx, err := l.Append(context.Background(), Entry{Actor: "spiffe://moat/admin", Role: "admin", Action: "policy.apply", Target: fmt.Sprintf("policy-%d", i), Result: "ok"})
		if err != nil {
			t.Fatal(err)
		}
		if idx != int64(i) {
			t.Fatalf("Append returned index %d, want %d", idx, i)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, v
}

func verifyDir(t testing.TB, dir string, v note.Verifier) error {
	t.Helper()
	l, err := Open(Config{Dir: dir, Verifier: v, ReadOnly: true, Logger: quietLogger()})
	if err != nil {
		return err
	}
	defer l.Close()
	return l.Verify(context.Background())
}

func TestAppendVerifyReopen(t *testing.T) {
	dir, v := newTestLog(t, 9, nil)
	if err := verifyDir(t, dir, v); err != nil {
		t.Fatalf("Verify on an untouched log: %v", err)
	}
	s, _, _ := testKey(t, "test-log")
	l, err := Open(Config{Dir: dir, Signer: s, Verifier: v, Now: testClock(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := l.Size(); got != 9 {
		t.Fatalf("Size after reopen = %d, want 9", got)
	}
	if i, err := l.Append(context.Background(), Entry{Action: "node.join"}); err != nil || i != 9 {
		t.Fatalf("Append after reopen = %d, %v; want 9", i, err)
	}
	if err := l.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
	es, err := l.Entries(8, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[0].Entry.Target != "policy-8" || es[1].Entry.Action != "node.join" || es[1].Entry.Time.IsZero() {
		t.Fatalf("Entries(8, 10) = %+v", es)
	}
	cp, err := l.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(filepath.Join(dir, checkpointFile))
	if err != nil || !bytes.Equal(pub, cp) {
		t.Fatalf("published checkpoint %q differs from Checkpoint() %q (%v)", pub, cp, err)
	}
	c, err := OpenCheckpoint(cp, v)
	if err != nil || c.Size != 10 || c.Origin != "test-log" {
		t.Fatalf("checkpoint = %+v, %v", c, err)
	}
	if _, err := Open(Config{Dir: dir, Signer: s, Verifier: v}); err == nil || !strings.Contains(err.Error(), "another writer") {
		t.Fatalf("second writer: err = %v, want a lock error", err)
	}
}

// TestCopyWithoutLockFile: a copy of the log's data files verifies.
func TestCopyWithoutLockFile(t *testing.T) {
	dir, v := newTestLog(t, 3, nil)
	cp := t.TempDir()
	for _, name := range []string{entriesFile, hashesFile, checkpointsFile, checkpointFile} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cp, name), b, 0o400); err != nil {
			t.Fatal(err)
		}
	}
	if err := verifyDir(t, cp, v); err != nil {
		t.Fatal(err)
	}
}

func TestRecorder(t *testing.T) {
	var _ Recorder = (*Log)(nil)
	l, err := Open(Config{Dir: t.TempDir(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Record(context.Background(), Entry{Action: "token.create"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Record(context.Background(), Entry{Actor: "x"}); !errors.Is(err, ErrNoAction) {
		t.Fatalf("Record without an action: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Record(ctx, Entry{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Record with a cancelled context: %v", err)
	}
	if err := l.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestAppendBatch: a batch gets consecutive indexes and one checkpoint; a
// rewrite inside the batch is pinned to the batch's first entry.
func TestAppendBatch(t *testing.T) {
	dir, v := newTestLog(t, 2, nil)
	s, _, _ := testKey(t, "test-log")
	l, err := Open(Config{Dir: dir, Signer: s, Verifier: v, Now: testClock(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	batch := []Entry{{Action: "a"}, {Action: "b"}, {Action: "c"}}
	first, err := l.AppendBatch(context.Background(), batch)
	if err != nil || first != 2 || l.Size() != 5 {
		t.Fatalf("AppendBatch = %d, %v; size %d", first, err, l.Size())
	}
	if _, err := l.AppendBatch(context.Background(), nil); err == nil {
		t.Fatal("empty batch accepted")
	}
	if err := l.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
	l.Close()

	f := loadFiles(t, dir)
	if len(f.cps) != 4 { // sizes 0, 1, 2, 5
		t.Fatalf("%d checkpoints, want 4", len(f.cps))
	}
	f.entries[3] = forged(t, 3)
	f.rehash(t)
	f.save(t)
	var ve *VerifyError
	if err := verifyDir(t, dir, v); !errors.As(err, &ve) || ve.Index != 2 {
		t.Fatalf("Verify = %v, want entry 2", err)
	}
}

// TestConcurrent: appends from several goroutines, with Verify, Prove and
// a read-only reader running meanwhile, give a log that verifies with
// every index used once.
func TestConcurrent(t *testing.T) {
	dir := t.TempDir()
	s, v, _ := testKey(t, "test-log")
	l, err := Open(Config{Dir: dir, Signer: s, Verifier: v, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	const writers, each = 4, 10
	errs := make(chan error, writers+2)
	seen := make(chan int64, writers*each)
	for w := 0; w < writers; w++ {
		go func() {
			for i := 0; i < each; i++ {
				n, err := l.Append(ctx, Entry{Action: "svc.register", Target: fmt.Sprint(w, "/", i)})
				if err != nil {
					errs <- err
					return
				}
				seen <- n
			}
			errs <- nil
		}()
	}
	go func() {
		for i := 0; i < 5; i++ {
			if err := l.Verify(ctx); err != nil {
				errs <- err
				return
			}
			if n := l.Size(); n > 0 {
				if _, err := l.Prove(n - 1); err != nil {
					errs <- err
					return
				}
			}
		}
		errs <- nil
	}()
	go func() {
		for i := 0; i < 5; i++ {
			r, err := Open(Config{Dir: dir, Verifier: v, ReadOnly: true, Logger: quietLogger()})
			if err != nil {
				errs <- err
				return
			}
			err = r.Verify(ctx)
			r.Close()
			if err != nil {
				errs <- fmt.Errorf("read-only verify during appends: %w", err)
				return
			}
		}
		errs <- nil
	}()
	for i := 0; i < writers+2; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	close(seen)
	got := map[int64]bool{}
	for n := range seen {
		if got[n] {
			t.Fatalf("index %d returned twice", n)
		}
		got[n] = true
	}
	if len(got) != writers*each || l.Size() != writers*each {
		t.Fatalf("%d distinct indexes, size %d; want %d", len(got), l.Size(), writers*each)
	}
	if err := l.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}
