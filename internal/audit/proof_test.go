package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"
)

func TestProofRoundTrip(t *testing.T) {
	const n = 13
	dir, v := newTestLog(t, n, nil)
	_, _, vkey := testKey(t, "test-log")
	l, err := Open(Config{Dir: dir, Verifier: v, ReadOnly: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cp, err := l.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < n; i++ {
		p, err := l.Prove(i)
		if err != nil {
			t.Fatalf("Prove(%d): %v", i, err)
		}
		text, err := p.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		got, err := CheckProof(cp, vkey, text)
		if err != nil {
			t.Fatalf("CheckProof(%d): %v\n%s", i, err, text)
		}
		e, err := DecodeEntry(got.Index, got.Entry, nil)
		if err != nil || got.Index != i || e.Action != "policy.apply" {
			t.Fatalf("proved entry %d = %+v, %v", got.Index, e, err)
		}
	}
	if _, err := l.Prove(n); err == nil {
		t.Fatal("Prove past the end succeeded")
	}

	good, err := l.Prove(4)
	if err != nil {
		t.Fatal(err)
	}
	goodText, _ := good.MarshalText()
	_, _, otherKey := testKey(t, "other")
	// Each case changes one thing CheckProof depends on.
	cases := []struct {
		name  string
		cp    []byte
		key   string
		proof func(p *Proof)
		want  string
	}{
		{name: "other entry bytes", proof: func(p *Proof) { p.Entry = bytes.Replace(p.Entry, []byte("policy-4"), []byte("policy-X"), 1) }, want: "not proved"},
		{name: "other index", proof: func(p *Proof) { p.Index = 5 }, want: "not proved"},
		{name: "dropped hash", proof: func(p *Proof) { p.Hashes = p.Hashes[1:] }, want: "not proved"},
		{name: "flipped hash", proof: func(p *Proof) { p.Hashes[0][3] ^= 1 }, want: "not proved"},
		{name: "other size", proof: func(p *Proof) { p.Size = n - 1 }, want: "tree of 12"},
		{name: "other root", proof: func(p *Proof) { p.Root[0] ^= 1 }, want: "root differs"},
		{name: "other key", key: otherKey, want: "checkpoint signature"},
		{name: "forged checkpoint", cp: resign(t, cp), want: "checkpoint signature"},
		{name: "not a key", key: "nonsense", want: "verifier key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseProof(goodText)
			if err != nil {
				t.Fatal(err)
			}
			if tc.proof != nil {
				tc.proof(p)
			}
			text, _ := p.MarshalText()
			c, key := cp, vkey
			if tc.cp != nil {
				c = tc.cp
			}
			if tc.key != "" {
				key = tc.key
			}
			_, err = CheckProof(c, key, text)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckProof = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestParseProofErrors(t *testing.T) {
	good := "moat audit inclusion proof v1\nindex 1\nsize 2\nroot " + strings.Repeat("A", 43) + "=\nentry AQ==\nhash " + strings.Repeat("A", 43) + "=\n"
	if _, err := ParseProof([]byte(good)); err != nil {
		t.Fatalf("good proof: %v", err)
	}
	cases := []struct{ name, from, to, want string }{
		{"header", "proof v1", "proof v2", "line 1"},
		{"index", "index 1", "index -1", "line 2: bad index"},
		{"index not below size", "index 1", "index 2", "not below size"},
		{"size", "size 2", "size 02", "line 3: bad size"},
		{"root", "root A", "root !", "line 4: bad root"},
		{"entry key", "entry ", "entri ", "line 5"},
		{"hash", "hash A", "hash !", "line 6: bad hash"},
		{"no newline", "=\n", "=", "newline"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var text string
			if tc.name == "no newline" {
				text = strings.TrimSuffix(good, "\n")
			} else {
				text = strings.Replace(good, tc.from, tc.to, 1)
			}
			if _, err := ParseProof([]byte(text)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseProof = %v, want %q", err, tc.want)
			}
		})
	}
}

func tinkAEAD(t testing.TB) tink.AEAD {
	t.Helper()
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	a, err := aead.New(h)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestSealed: entries stored encrypted verify and prove without the key,
// need it to be read, and do not open at another index.
func TestSealed(t *testing.T) {
	a := tinkAEAD(t)
	dir, v := newTestLog(t, 4, a)
	raw, err := os.ReadFile(filepath.Join(dir, entriesFile))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("policy.apply")) {
		t.Fatal("sealed log holds plaintext")
	}
	if err := verifyDir(t, dir, v); err != nil {
		t.Fatalf("Verify without the key: %v", err)
	}
	l, err := Open(Config{Dir: dir, Verifier: v, ReadOnly: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Entries(0, 1); !errors.Is(err, ErrSealed) {
		t.Fatalf("Entries without the key = %v, want ErrSealed", err)
	}
	if _, err := l.Prove(2); err != nil {
		t.Fatalf("Prove without the key: %v", err)
	}
	l.Close()

	l, err = Open(Config{Dir: dir, Verifier: v, Sealer: a, ReadOnly: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	es, err := l.Entries(0, 4)
	if err != nil || len(es) != 4 || es[3].Entry.Target != "policy-3" {
		t.Fatalf("Entries with the key = %+v, %v", es, err)
	}
	s1, _ := l.Stored(1)
	if _, err := DecodeEntry(2, s1, a); err == nil {
		t.Fatal("a sealed entry opened at another index")
	}
	if err := l.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
}
