package audit

import (
	"context"
	"errors"
	"moat/internal/store/storetest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// appendBytes adds raw bytes to a file of the log, as a crash part-way
// through an append would leave them.
func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestTornTail: each way an append can be cut short is reported by a
// read-only Verify, and a writer's Open cuts it, logs it in an
// audit.repair entry, and leaves a log that verifies.
func TestTornTail(t *testing.T) {
	const n = 5
	whole := appendFrame(nil, forged(t, n))
	cases := []struct {
		name    string
		entries []byte
		hashes  []byte
		cps     []byte
		cut     string // Detail key that must be non-zero
	}{
		{name: "half an entry", entries: whole[:len(whole)/2], cut: "entry_bytes_cut"},
		{name: "entry without hashes", entries: whole, cut: "entries_cut"},
		{name: "entry with half its hashes", entries: whole, hashes: make([]byte, 40), cut: "hash_bytes_cut"},
		{name: "half a checkpoint", cps: []byte{0, 0, 1, 0, 'x'}, cut: "checkpoint_bytes_cut"},
		{name: "entry and hashes without a checkpoint", entries: whole, hashes: make([]byte, 64), cut: "entries_cut"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir, v := newTestLog(t, n, nil)
			appendBytes(t, filepath.Join(dir, entriesFile), tc.entries)
			appendBytes(t, filepath.Join(dir, hashesFile), tc.hashes)
			appendBytes(t, filepath.Join(dir, checkpointsFile), tc.cps)

			err := verifyDir(t, dir, v)
			var ve *VerifyError
			if !errors.As(err, &ve) || ve.Index != n {
				t.Fatalf("Verify of a torn log = %v, want a VerifyError at entry %d", err, n)
			}
			t.Logf("read-only verify: %v", err)

			s, _, _ := testKey(t, "test-log")
			l, err := Open(Config{Dir: dir, Signer: s, Verifier: v, Now: testClock(), Logger: quietLogger()})
			if err != nil {
				t.Fatalf("writer Open of a torn log: %v", err)
			}
			defer l.Close()
			if err := l.Verify(context.Background()); err != nil {
				t.Fatalf("Verify after repair: %v", err)
			}
			es, err := l.Entries(n, l.Size())
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != 1 || es[0].Entry.Action != "audit.repair" || es[0].Entry.Detail["index"] != "5" {
				t.Fatalf("after repair the log ends with %+v, want one audit.repair entry at 5", es)
			}
			if d := es[0].Entry.Detail[tc.cut]; d == "" || d == "0" {
				t.Fatalf("repair entry %v does not record %s", es[0].Entry.Detail, tc.cut)
			}
			// What was cut is kept beside the log.
			for _, name := range []string{entriesFile, hashesFile, checkpointsFile} {
				saved := es[0].Entry.Detail[name+"_saved_as"]
				if saved == "" {
					continue
				}
				b, err := os.ReadFile(filepath.Join(dir, saved))
				if err != nil || len(b) == 0 {
					t.Fatalf("cut bytes of %s not saved: %v", name, err)
				}
			}
		})
	}
}

// TestOpenRefusesSignedDamage: a writer never cuts entries a signed
// checkpoint covers; that is tampering, not a crash.
func TestOpenRefusesSignedDamage(t *testing.T) {
	dir, v := newTestLog(t, 5, nil)
	p := filepath.Join(dir, entriesFile)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b[:len(b)-3], 0o600); err != nil {
		t.Fatal(err)
	}
	s, _, _ := testKey(t, "test-log")
	_, err = Open(Config{Dir: dir, Signer: s, Verifier: v, Logger: quietLogger()})
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Index != 4 {
		t.Fatalf("Open = %v, want a VerifyError at entry 4", err)
	}
	if st, _ := os.Stat(p); st.Size() != int64(len(b)-3) {
		t.Fatalf("Open changed the damaged entries file")
	}
}

func TestOpenErrors(t *testing.T) {
	s, v, _ := testKey(t, "test-log")
	_, other, _ := testKey(t, "other")
	dir, _ := newTestLog(t, 2, nil)
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no dir", Config{}, "Config.Dir is required"},
		{"signer without verifier", Config{Dir: t.TempDir(), Signer: s}, "Config.Verifier is required"},
		{"wrong verifier", Config{Dir: dir, Signer: s, Verifier: other}, "latest checkpoint"},
		{"read-only of nothing", Config{Dir: t.TempDir() + "/none", ReadOnly: true}, "no log in"},
		{"key missing for a non-empty log", Config{Dir: dir}, "signer key"},
	}
	_ = v
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Logger = quietLogger()
			l, err := Open(tc.cfg)
			if err == nil {
				l.Close()
				t.Fatalf("Open succeeded, want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestOwnKey: with no key given the log makes one, keeps the signer key
// private, and verifies with the published verifier key.
func TestOwnKey(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(Config{Dir: dir, Name: "prod-audit", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Record(context.Background(), Entry{Action: "ca.rotate.prepare"}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	st, err := os.Stat(filepath.Join(dir, SignerKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("signer key file: %v, %v; want mode 0600", st.Mode(), err)
	}
	v, err := LoadVerifier(filepath.Join(dir, VerifierKeyFile))
	if err != nil || v.Name() != "prod-audit" {
		t.Fatalf("verifier key: %v, %v", v, err)
	}
	if err := verifyDir(t, dir, v); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, SignerKeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{Dir: dir, Logger: quietLogger()}); err == nil || !strings.Contains(err.Error(), "want 0600") {
		t.Fatalf("Open with a world-readable key = %v", err)
	}
}

// TestOpenDoesNotBlessRewrites: entries rewritten past a truncated
// checkpoint history are cut and saved aside, never signed; a missing
// history is refused.
func TestOpenDoesNotBlessRewrites(t *testing.T) {
	dir, v := newTestLog(t, 6, nil)
	f := loadFiles(t, dir)
	f.entries[4] = forged(t, 4)
	f.rehash(t)
	f.cps = f.cps[:5] // sizes 0..4
	f.pub = f.cps[4]
	f.save(t)
	s, _, _ := testKey(t, "test-log")
	l, err := Open(Config{Dir: dir, Signer: s, Verifier: v, Now: testClock(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	es, err := l.Entries(0, l.Size())
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 5 || es[4].Entry.Action != "audit.repair" || es[4].Entry.Detail["entries_cut"] != "2" {
		t.Fatalf("after Open the log is %+v; want 4 entries and an audit.repair cutting 2", es)
	}
	for _, x := range es {
		if x.Entry.Actor == "mallory" {
			t.Fatalf("the rewritten entry %d was kept", x.Index)
		}
	}
	l.Close()

	f = loadFiles(t, dir)
	f.cps = nil
	f.save(t)
	var ve *VerifyError
	if _, err := Open(Config{Dir: dir, Signer: s, Verifier: v, Logger: quietLogger()}); !errors.As(err, &ve) || !strings.Contains(err.Error(), "history") {
		t.Fatalf("Open without a checkpoint history = %v", err)
	}
}

// TestAppendAfterFullDisk: appends on a full file system fail, leave the
// log whole, and succeed again once space is back, with no reopen.
func TestAppendAfterFullDisk(t *testing.T) {
	ctx := context.Background()
	disk := storetest.SmallDisk(t, 512<<10)
	s, v, _ := testKey(t, "test-log")
	l, err := Open(Config{Dir: filepath.Join(disk, "audit"), Signer: s, Verifier: v, Now: testClock(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := 0; i < 5; i++ {
		if _, err := l.Append(ctx, Entry{Action: "svc.register"}); err != nil {
			t.Fatal(err)
		}
	}
	free := storetest.Fill(t, disk)
	big := Entry{Action: "policy.apply", Detail: map[string]string{"yaml": strings.Repeat("x", 8000)}}
	for i := 0; i < 3; i++ {
		if _, err := l.Append(ctx, big); err == nil {
			t.Fatal("an append on a full disk succeeded")
		} else if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("append on a full disk: %v, want ENOSPC", err)
		}
	}
	if err := l.Verify(ctx); err != nil {
		t.Fatalf("after failed appends the log does not verify: %v", err)
	}
	free()
	n, err := l.Append(ctx, big)
	if err != nil {
		t.Fatalf("append once space is back: %v", err)
	}
	if n != 5 {
		t.Fatalf("append once space is back got index %d, want 5", n)
	}
	if err := l.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}
