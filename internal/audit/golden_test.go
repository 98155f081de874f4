package audit

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestGolden pins the on-the-wire formats: the signed checkpoint (tlog
// checkpoint text in a note) and the inclusion proof text. The key, clock
// and entries are fixed and Ed25519 is deterministic, so both are stable.
func TestGolden(t *testing.T) {
	dir, v := newTestLog(t, 5, nil)
	l, err := Open(Config{Dir: dir, Verifier: v, ReadOnly: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cp, err := l.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.Prove(3)
	if err != nil {
		t.Fatal(err)
	}
	proof, err := p.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	stored, err := l.Stored(3)
	if err != nil {
		t.Fatal(err)
	}
	_, _, vkey := testKey(t, "test-log")
	for name, got := range map[string][]byte{
		"checkpoint.golden": cp,
		"proof-3.golden":    proof,
		"entry-3.golden":    stored,
		"verifier.golden":   []byte(vkey + "\n"),
	} {
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s changed:\n got %q\nwant %q", name, got, want)
		}
	}
	if _, err := CheckProof(cp, vkey, proof); err != nil {
		t.Fatal(err)
	}
}

// TestEntriesFromBeforeAccounts: the acting account is a detail key, so
// the stored format is as it was. An entry written before entries
// recorded the account (entry-3.golden, pinned earlier) reads as one by
// no account, named by its actor alone; a log of such entries takes
// entries with an account after them and verifies throughout, its old
// entries' bytes unchanged.
func TestEntriesFromBeforeAccounts(t *testing.T) {
	old, err := os.ReadFile(filepath.Join("testdata", "entry-3.golden"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := DecodeEntry(3, old, nil)
	if err != nil {
		t.Fatalf("an entry from before accounts: %v", err)
	}
	if e.ActorAccount() != "" || e.Who() != e.Actor {
		t.Fatalf("an entry from before accounts: account %q, who %q; want none, %q", e.ActorAccount(), e.Who(), e.Actor)
	}

	dir, v := newTestLog(t, 5, nil)
	s, _, _ := testKey(t, "test-log")
	l, err := Open(Config{Dir: dir, Signer: s, Verifier: v, Now: testClock(), Logger: quietLogger()})
	if err != nil {
		t.Fatalf("opening a log of entries from before accounts to write: %v", err)
	}
	defer l.Close()
	const acct = "0123456789abcdef0123456789abcdef"
	if _, err := l.Append(context.Background(), Entry{Actor: "spiffe://moat/admin", Role: "admin", Action: "policy.apply", Target: "policy-5", Result: "ok",
		Detail: map[string]string{DetailAccount: acct}}); err != nil {
		t.Fatal(err)
	}
	if err := l.VerifyAllCheckpoints(context.Background()); err != nil {
		t.Fatalf("a log of entries from before accounts and after: %v", err)
	}
	stored, err := l.Stored(3)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stored, old) {
		t.Errorf("entry 3 from before accounts changed:\n got %q\nwant %q", stored, old)
	}
	es, err := l.Entries(4, 6)
	if err != nil {
		t.Fatal(err)
	}
	if es[0].Entry.Who() != "spiffe://moat/admin" || es[1].Entry.Who() != "spiffe://moat/admin (account "+acct+")" {
		t.Errorf("who acted: %q before accounts, %q after", es[0].Entry.Who(), es[1].Entry.Who())
	}
}
