package audit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// TestWitnessFollowsLog: a witness accepts every checkpoint of a log that
// only grows, from any size it holds, and keeps the newest across reopens.
func TestWitnessFollowsLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, v, _ := testKey(t, "test-log")
	l, err := Open(Config{Dir: dir, Signer: s, Verifier: v, Now: testClock(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	wpath := filepath.Join(t.TempDir(), "witness")
	w, err := OpenWitness(wpath, v)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		if _, err := l.Append(ctx, Entry{Action: "svc.register"}); err != nil {
			t.Fatal(err)
		}
		if i%3 != 0 {
			continue // the witness also catches up over several appends
		}
		c, err := w.Update(l.ProveConsistency)
		if err != nil {
			t.Fatalf("after %d appends: %v", i+1, err)
		}
		if c.Size != int64(i+1) {
			t.Fatalf("witness at %d, want %d", c.Size, i+1)
		}
	}
	w2, err := OpenWitness(wpath, v)
	if err != nil || w2.Size() != w.Size() {
		t.Fatalf("reopened witness at %d (%v), want %d", w2.Size(), err, w.Size())
	}
}

// TestTrustedCheckpoints: a log cut back to an earlier signed checkpoint,
// or rewritten and re-signed with its own key, verifies on its own; a
// checkpoint saved earlier catches both, naming the first bad entry, and a
// witness refuses the log.
func TestTrustedCheckpoints(t *testing.T) {
	ctx := context.Background()
	good, v := newTestLog(t, tamperN, nil)
	s, _, _ := testKey(t, "test-log")
	orig := loadFiles(t, good)
	latest := orig.cps[len(orig.cps)-1]

	cases := []struct {
		name    string
		trusted [][]byte
		index   int64
		reason  string
		mutate  func(t *testing.T, f *logFiles)
	}{
		{"cut-back", [][]byte{latest}, 4, "trusted checkpoint covers 7", func(t *testing.T, f *logFiles) {
			f.entries = f.entries[:4]
			f.hashes = f.hashes[:tlog.StoredHashCount(4)*tlog.HashSize]
			f.cps = f.cps[:5]
			f.pub = f.cps[4]
		}},
		{"rewritten-one-trusted", [][]byte{latest}, 0, "rewritten", func(t *testing.T, f *logFiles) {
			resignFrom(t, f, 3, s)
		}},
		{"rewritten-all-trusted", orig.cps, 3, "rewritten", func(t *testing.T, f *logFiles) {
			resignFrom(t, f, 3, s)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, good, dir)
			f := loadFiles(t, dir)
			tc.mutate(t, f)
			f.save(t)
			l, err := Open(Config{Dir: dir, Verifier: v, ReadOnly: true, Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if err := l.Verify(ctx); err != nil {
				t.Fatalf("the changed log does not verify on its own (%v); this case is about what only a saved checkpoint shows", err)
			}
			err = l.VerifyWith(ctx, VerifyOptions{Trusted: tc.trusted})
			var ve *VerifyError
			if !errors.As(err, &ve) || ve.Index != tc.index || !strings.Contains(ve.Reason, tc.reason) {
				t.Fatalf("VerifyWith(trusted) = %v, want entry %d, %q", err, tc.index, tc.reason)
			}
			t.Log(err)
			wpath := filepath.Join(t.TempDir(), "witness")
			if err := os.WriteFile(wpath, latest, 0o600); err != nil {
				t.Fatal(err)
			}
			w, err := OpenWitness(wpath, v)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Update(l.ProveConsistency); !errors.Is(err, ErrInconsistent) {
				t.Fatalf("witness: %v, want ErrInconsistent", err)
			}
			if w.Size() != tamperN {
				t.Fatalf("the witness let go of its checkpoint")
			}
		})
	}
}

// resignFrom rewrites entry i, recomputes the hashes, and re-signs every
// checkpoint from size i+1 on with the log's own key, as someone holding
// the signer key would.
func resignFrom(t *testing.T, f *logFiles, i int, s interface {
	Name() string
	KeyHash() uint32
	Sign([]byte) ([]byte, error)
}) {
	t.Helper()
	f.entries[i] = forged(t, i)
	f.rehash(t)
	var front frontier
	for k, p := range f.entries {
		hs, err := tlog.StoredHashes(int64(k), p, &front)
		if err != nil {
			t.Fatal(err)
		}
		front.add(hs)
		if k+1 > i {
			signed, err := signTree(s, &front)
			if err != nil {
				t.Fatal(err)
			}
			f.cps[k+1] = signed
		}
	}
	f.pub = f.cps[len(f.cps)-1]
}

// TestCheckEntries: a client that fetches only the stored entries and the
// signed checkpoint recomputes the tree; entries that do not make it, or a
// log shorter than a checkpoint saved earlier, fail naming the entry.
func TestCheckEntries(t *testing.T) {
	ctx := context.Background()
	dir, v := newTestLog(t, 9, nil)
	f := loadFiles(t, dir)
	serve := func(entries [][]byte) func(from, to int64) ([][]byte, error) {
		return func(from, to int64) ([][]byte, error) {
			// Pages of four, as a server would cut them.
			end := min(to, from+4, int64(len(entries)))
			return entries[from:end], nil
		}
	}
	latest := f.cps[len(f.cps)-1]
	if c, err := CheckEntries(ctx, v, latest, serve(f.entries), VerifyOptions{Trusted: [][]byte{f.cps[5]}}); err != nil || c.Size != 9 {
		t.Fatalf("CheckEntries on a good log = %+v, %v", c, err)
	}
	changed := append([][]byte(nil), f.entries...)
	changed[6] = forged(t, 6)
	var ve *VerifyError
	if _, err := CheckEntries(ctx, v, latest, serve(changed), VerifyOptions{Trusted: [][]byte{f.cps[5]}}); !errors.As(err, &ve) || ve.Index != 5 {
		t.Fatalf("entries changed after the trusted size 5: %v, want a VerifyError at 5", err)
	}
	if _, err := CheckEntries(ctx, v, f.cps[4], serve(f.entries[:4]), VerifyOptions{Trusted: [][]byte{latest}}); !errors.As(err, &ve) || ve.Index != 4 || !strings.Contains(ve.Reason, "cut back") {
		t.Fatalf("a log cut back to 4 entries against a trusted 9: %v", err)
	}
	if _, err := CheckEntries(ctx, v, latest, serve(f.entries[:7]), VerifyOptions{}); !errors.As(err, &ve) || ve.Index != 7 {
		t.Fatalf("a server serving 7 of 9 entries: %v", err)
	}
}
