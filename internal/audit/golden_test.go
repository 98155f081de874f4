package audit

import (
	"bytes"
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
