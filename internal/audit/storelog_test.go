package audit

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"moat/internal/store"
	"moat/internal/store/storetest"
)

func openBolt(t *testing.T, sealer store.Sealer) store.Store {
	t.Helper()
	st, err := store.OpenBolt(store.BoltConfig{Dir: t.TempDir(), Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func openEtcd(t *testing.T, url string, sealer store.Sealer) store.Store {
	t.Helper()
	st, err := store.OpenEtcd(context.Background(), store.EtcdConfig{Endpoints: []string{url}, Prefix: "/moat-test/", Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func openStoreLog(t *testing.T, st store.Store, sealer Sealer) *StoreLog {
	t.Helper()
	l, err := OpenStoreLog(context.Background(), StoreLogConfig{Store: st, Sealer: sealer, Now: testClock(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestStoreLog: entries appended to a log kept in a sealed store read back,
// prove, verify, and survive a reopen with the key the store keeps.
func TestStoreLog(t *testing.T) {
	ctx := context.Background()
	a := tinkAEAD(t)
	st := openBolt(t, a)
	l := openStoreLog(t, st, a)
	for i := 0; i < 10; i++ {
		n, err := l.Append(ctx, Entry{Actor: "spiffe://example.org/admin/alice", Action: "policy.apply", Target: fmt.Sprint(i), Result: "ok"})
		if err != nil || n != int64(i) {
			t.Fatalf("Append %d = %d, %v", i, n, err)
		}
	}
	if _, err := l.AppendBatch(ctx, []Entry{{Action: "a"}, {Action: "b"}, {Action: "c"}}); err != nil {
		t.Fatal(err)
	}
	if got := l.Size(); got != 13 {
		t.Fatalf("Size = %d, want 13", got)
	}
	if err := l.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	es, err := l.Entries(11, 13)
	if err != nil || len(es) != 2 || es[1].Entry.Action != "c" {
		t.Fatalf("Entries = %+v, %v", es, err)
	}
	cp, err := l.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.Prove(4)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := p.MarshalText()
	vkey := verifierKeyString(t, l)
	if _, err := CheckProof(cp, vkey, text); err != nil {
		t.Fatalf("proof from the store log: %v", err)
	}

	t.Log("reopened, the log keeps its key and its tree")
	l2 := openStoreLog(t, st, a)
	if l2.Verifier().KeyHash() != l.Verifier().KeyHash() {
		t.Fatal("reopening made a new signer key")
	}
	if n, err := l2.Append(ctx, Entry{Action: "after.reopen"}); err != nil || n != 13 {
		t.Fatalf("Append after reopen = %d, %v", n, err)
	}
	if err := l2.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

func verifierKeyString(t *testing.T, l *StoreLog) string {
	t.Helper()
	ctx := context.Background()
	kv, err := l.st.Get(ctx, l.prefix+storeKey)
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := verifierKeyFor(string(kv.Value))
	if err != nil {
		t.Fatal(err)
	}
	return vkey
}

// TestStoreLogCluster: several servers share one etcd and append at once;
// the result is one sequence, every entry exactly once, that verifies, and
// a witness that followed it accepts each server's checkpoint.
func TestStoreLogCluster(t *testing.T) {
	ctx := context.Background()
	url := storetest.StartEtcd(t)
	a := tinkAEAD(t)
	const servers, each = 3, 20
	logs := make([]*StoreLog, servers)
	for i := range logs {
		logs[i] = openStoreLog(t, openEtcd(t, url, a), a)
	}
	for i := 1; i < servers; i++ {
		if logs[i].Verifier().KeyHash() != logs[0].Verifier().KeyHash() {
			t.Fatal("servers of one cluster sign with different keys")
		}
	}
	w, err := OpenWitness(t.TempDir()+"/witness", logs[0].Verifier())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, servers*each)
	for s := range logs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < each; k++ {
				if _, err := logs[s].Append(ctx, Entry{Actor: fmt.Sprintf("server-%d", s), Action: "svc.register", Target: fmt.Sprintf("%d/%d", s, k), Result: "ok"}); err != nil {
					errs <- err
					return
				}
				if _, err := w.Update(logs[(s+1)%servers].ProveConsistency); err != nil {
					errs <- fmt.Errorf("witness: %w", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, l := range logs {
		if got := l.Size(); got != servers*each {
			t.Fatalf("Size = %d, want %d", got, servers*each)
		}
		if err := l.Verify(ctx); err != nil {
			t.Fatal(err)
		}
	}
	es, err := logs[2].Entries(0, servers*each)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range es {
		if seen[e.Entry.Target] {
			t.Fatalf("entry %q twice", e.Entry.Target)
		}
		seen[e.Entry.Target] = true
	}
	if len(seen) != servers*each {
		t.Fatalf("%d distinct entries, want %d", len(seen), servers*each)
	}
}

// TestStoreLogTamper: someone with write access to the store (and the
// store's key) changes what a signed checkpoint covers; Verify names the
// entry, and Open refuses the log.
func TestStoreLogTamper(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		index  int64
		mutate func(t *testing.T, l *StoreLog)
	}{
		{"modify-entry", 3, func(t *testing.T, l *StoreLog) {
			b, _ := EncodeEntry(3, Entry{Action: "policy.apply", Actor: "mallory"}, l.sealer)
			mustPut(t, l.st, l.key(storeEntry, 3), b)
		}},
		{"delete-entry", 5, func(t *testing.T, l *StoreLog) {
			if _, err := l.st.Delete(ctx, l.key(storeEntry, 5)); err != nil {
				t.Fatal(err)
			}
		}},
		{"modify-hashes", 6, func(t *testing.T, l *StoreLog) {
			kv, _ := l.st.Get(ctx, l.key(storeHashes, 6))
			kv.Value[0] ^= 1
			mustPut(t, l.st, l.key(storeHashes, 6), kv.Value)
		}},
		{"extra-hashes", 2, func(t *testing.T, l *StoreLog) {
			kv, _ := l.st.Get(ctx, l.key(storeHashes, 2))
			mustPut(t, l.st, l.key(storeHashes, 2), append(kv.Value, kv.Value[:32]...))
		}},
		{"plaintext-entry", 4, func(t *testing.T, l *StoreLog) {
			// A plaintext entry, with the hashes and checkpoints redone as
			// someone holding the signer key would: the log is sealed, so
			// it is refused all the same.
			rewriteFrom(t, l, 4, Entry{Action: "policy.apply", Actor: "mallory", Result: "ok"})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := tinkAEAD(t)
			st := openBolt(t, a)
			l := openStoreLog(t, st, a)
			for i := 0; i < 8; i++ {
				if _, err := l.Append(ctx, Entry{Action: "svc.register", Target: fmt.Sprint(i), Result: "ok"}); err != nil {
					t.Fatal(err)
				}
			}
			tc.mutate(t, l)
			err := l.Verify(ctx)
			var ve *VerifyError
			if !errors.As(err, &ve) || ve.Index != tc.index {
				t.Fatalf("Verify = %v, want a VerifyError at entry %d", err, tc.index)
			}
			t.Log(err)
			_, err = OpenStoreLog(ctx, StoreLogConfig{Store: st, Sealer: a, Logger: quietLogger()})
			if !errors.As(err, &ve) || ve.Index != tc.index || !strings.Contains(err.Error(), "refusing to append") {
				t.Fatalf("OpenStoreLog = %v, want a refusal at entry %d", err, tc.index)
			}
		})
	}
}

func mustPut(t *testing.T, st store.Store, k string, v []byte) {
	t.Helper()
	if _, err := st.Put(context.Background(), k, v); err != nil {
		t.Fatal(err)
	}
}

// rewriteFrom replaces entry i (unsealed) and everything after it, redoing
// the hashes and re-signing every checkpoint from i on with the log's own
// key: a rewrite by someone holding the signer key.
func rewriteFrom(t *testing.T, l *StoreLog, i int64, e Entry) {
	t.Helper()
	ctx := context.Background()
	n := l.Size()
	var front frontier
	for k := int64(0); k < n; k++ {
		kv, err := l.st.Get(ctx, l.key(storeEntry, k))
		if err != nil {
			t.Fatal(err)
		}
		stored := kv.Value
		if k == i {
			stored, _ = EncodeEntry(k, e, nil)
			mustPut(t, l.st, l.key(storeEntry, k), stored)
		}
		hs, err := tlog.StoredHashes(k, stored, &front)
		if err != nil {
			t.Fatal(err)
		}
		if k >= i {
			var hb []byte
			for _, h := range hs {
				hb = append(hb, h[:]...)
			}
			mustPut(t, l.st, l.key(storeHashes, k), hb)
		}
		front.add(hs)
		if k+1 > i {
			signed, err := signTree(l.signer, &front)
			if err != nil {
				t.Fatal(err)
			}
			mustPut(t, l.st, l.key(storeHistory, k+1), signed)
			if k+1 == n {
				mustPut(t, l.st, l.prefix+storeHead, signed)
			}
		}
	}
}

// TestStoreLogTruncation: the head cut back to an earlier checkpoint, as
// someone with the store's key could do, verifies on its own; a witness
// that saw the longer log refuses it, and so does Verify given the
// checkpoint saved earlier, naming the first missing entry.
func TestStoreLogTruncation(t *testing.T) {
	ctx := context.Background()
	a := tinkAEAD(t)
	st := openBolt(t, a)
	l := openStoreLog(t, st, a)
	for i := 0; i < 9; i++ {
		if _, err := l.Append(ctx, Entry{Action: "svc.register", Target: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	w, err := OpenWitness(t.TempDir()+"/w", l.Verifier())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Update(l.ProveConsistency); err != nil {
		t.Fatal(err)
	}
	saved, _ := w.Latest()

	cut, err := st.Get(ctx, l.key(storeHistory, 6))
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, st, l.prefix+storeHead, cut.Value)
	for k := int64(7); k <= 9; k++ {
		st.Delete(ctx, l.key(storeHistory, k))
		st.Delete(ctx, l.key(storeEntry, k-1))
		st.Delete(ctx, l.key(storeHashes, k-1))
	}
	if err := l.Verify(ctx); err != nil {
		t.Fatalf("the cut log no longer verifies on its own (%v); the test wants the case that needs a witness", err)
	}
	_, err = w.Update(l.ProveConsistency)
	if !errors.Is(err, ErrInconsistent) {
		t.Fatalf("witness given a log cut back from 9 to 6 entries: %v, want ErrInconsistent", err)
	}
	t.Log(err)
	err = l.VerifyWith(ctx, VerifyOptions{Trusted: [][]byte{saved}})
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Index != 6 || !strings.Contains(ve.Reason, "trusted checkpoint covers 9") {
		t.Fatalf("VerifyWith(trusted) = %v, want entry 6 missing", err)
	}
}

// TestStoreKeyMovesLegacyFile: a log signed with a plaintext audit.key
// from an earlier version keeps its key, which moves into the sealed store;
// the plaintext file is gone and the log verifies with the same key.
func TestStoreKeyMovesLegacyFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := Open(Config{Dir: dir, Logger: quietLogger()}) // makes audit.key in dir
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, Entry{Action: "svc.register"}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	a := tinkAEAD(t)
	st := openBolt(t, a)
	legacy := filepath.Join(dir, SignerKeyFile)
	s, v, err := StoreKey(ctx, st, "audit/key", DefaultKeyName, legacy)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(legacy); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the plaintext signer key is still there: %v", err)
	}
	l, err = Open(Config{Dir: dir, Signer: s, Verifier: v, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("the log does not open with the moved key: %v", err)
	}
	defer l.Close()
	if _, err := l.Append(ctx, Entry{Action: "svc.register"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	s2, _, err := StoreKey(ctx, st, "audit/key", DefaultKeyName, legacy)
	if err != nil || s2.KeyHash() != s.KeyHash() {
		t.Fatalf("second StoreKey = %v, %v; want the same key", s2, err)
	}
}
