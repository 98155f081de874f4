package seal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fastArgon keeps passphrase tests quick; production uses the defaults.
var fastArgon = Argon2Params{Time: 1, Memory: 1024, Threads: 1}

func testKEK(t testing.TB, b byte) KEK {
	t.Helper()
	k, err := newRawKEK("test", bytes.Repeat([]byte{b}, KEKKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func roundTrip(t *testing.T, k KEK) {
	t.Helper()
	ct, err := k.Encrypt([]byte("data key"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	pt, err := k.Decrypt(ct, []byte("ad"))
	if err != nil || string(pt) != "data key" {
		t.Fatalf("round trip: %q, %v", pt, err)
	}
	if _, err := k.Decrypt(ct, []byte("other ad")); err == nil {
		t.Fatal("opened with other associated data")
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kek")
	k, err := GenerateKeyFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, k)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %04o, want 0600", fi.Mode().Perm())
	}
	if _, err := GenerateKeyFile(path, nil); err == nil {
		t.Fatal("GenerateKeyFile overwrote an existing file")
	}
	k2, err := OpenKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := k.Encrypt([]byte("x"), nil)
	if pt, err := k2.Decrypt(ct, nil); err != nil || string(pt) != "x" {
		t.Fatalf("reopened key file does not open: %v", err)
	}
	keyText, _ := os.ReadFile(path)
	if s := fmt.Sprintf("%v %#v %s %+v", k2, k2, k2, k2); strings.Contains(s, strings.TrimSpace(string(keyText))) {
		t.Fatalf("printing a KEK shows key bytes: %s", s)
	}

	for _, tc := range []struct {
		name    string
		mode    os.FileMode
		content string
		want    string
	}{
		{"group readable", 0o640, "", "mode 0640"},
		{"world readable", 0o604, "", "mode 0604"},
		{"not base64", 0o600, "!!!", "not base64"},
		{"short key", 0o600, EncodeKEKKey([]byte("short")), "want 32 bytes, got 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "kek")
			good, _ := os.ReadFile(path)
			content := string(good)
			if tc.content != "" {
				content = tc.content
			}
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, err := OpenKeyFile(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if tc.mode != 0o600 && !errors.Is(err, ErrKeyFileMode) {
				t.Fatalf("err = %v, want ErrKeyFileMode", err)
			}
		})
	}
	t.Run("symlink", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "link")
		if err := os.Symlink(path, p); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenKeyFile(p); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestEnvKEK(t *testing.T) {
	key := EncodeKEKKey(bytes.Repeat([]byte{7}, 32))
	env := map[string]string{"GOOD": key, "EMPTY": "  ", "BAD": "abc"}
	lookup := func(n string) (string, bool) { v, ok := env[n]; return v, ok }
	k, err := EnvKEK("GOOD", lookup)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, k)
	for name, want := range map[string]string{
		"MISSING": `"MISSING" is not set`,
		"EMPTY":   `"EMPTY" is not set`,
		"BAD":     `"BAD": not base64`,
	} {
		if _, err := EnvKEK(name, lookup); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", name, err, want)
		}
	}
}

func TestPassphraseKEK(t *testing.T) {
	k, err := NewPassphraseKEK([]byte("correct horse"), fastArgon, nil)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, k)
	ct, err := k.Encrypt([]byte("secret"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	// A fresh KEK from the same passphrase opens it: salt and parameters
	// travel with the ciphertext.
	k2, _ := NewPassphraseKEK([]byte("correct horse"), fastArgon, nil)
	if pt, err := k2.Decrypt(ct, []byte("ad")); err != nil || string(pt) != "secret" {
		t.Fatalf("same passphrase: %q, %v", pt, err)
	}
	wrong, _ := NewPassphraseKEK([]byte("battery staple"), fastArgon, nil)
	if _, err := wrong.Decrypt(ct, []byte("ad")); err == nil || !strings.Contains(err.Error(), "wrong passphrase") {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if strings.Contains(fmt.Sprintf("%v %#v", k, k), "horse") {
		t.Fatal("printing a passphrase KEK shows the passphrase")
	}
	// Header tampering: parameters out of bounds, version, truncation.
	for _, tc := range []struct {
		name string
		mut  func([]byte) []byte
		want string
	}{
		{"short", func(b []byte) []byte { return b[:10] }, "too short"},
		{"version", func(b []byte) []byte { b[0] = 9; return b }, "unknown header version 9"},
		{"huge time", func(b []byte) []byte { b[1] = 0xff; return b }, "argon2id time"},
		{"huge memory", func(b []byte) []byte { b[5] = 0xff; return b }, "argon2id memory"},
		{"zero threads", func(b []byte) []byte { b[9] = 0; return b }, "threads must be at least 1"},
		{"salt", func(b []byte) []byte { b[12] ^= 1; return b }, "wrong passphrase"},
		{"body", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, "wrong passphrase"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := k2.Decrypt(tc.mut(bytes.Clone(ct)), []byte("ad"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := NewPassphraseKEK(nil, fastArgon, nil); err == nil {
		t.Fatal("empty passphrase accepted")
	}
	if _, err := NewPassphraseKEK([]byte("x"), Argon2Params{Time: 1, Memory: 1, Threads: 1}, nil); err == nil {
		t.Fatal("tiny memory accepted")
	}
}

// TestOpenKeyringAfterInterruptedRewrap: a KEK rotation re-wraps the
// keyring under a new key written beside the key file, then moves it over
// the key file. Stopped between the two, the key file no longer opens the
// keyring: opening says which file does and what to do, and opens nothing.
func TestOpenKeyringAfterInterruptedRewrap(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "data")
	var cfg KEKConfig
	kr, _, err := cfg.OpenKeyring(dir, func(string) string { return "" }, true)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := cfg.KeyFile(dir)
	pending := PendingKeyFile(keyFile)
	newKEK, err := GenerateKeyFile(pending, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kr.RewrapKEK(newKEK); err != nil {
		t.Fatal(err)
	}
	t.Log("the rotation stops here, before the new key replaces the old file")
	_, _, err = cfg.OpenKeyring(dir, func(string) string { return "" }, false)
	if !errors.Is(err, ErrWrongKEK) || !errors.Is(err, ErrRewrapInterrupted) {
		t.Fatalf("err = %v, want ErrWrongKEK and ErrRewrapInterrupted", err)
	}
	for _, want := range []string{keyFile, pending} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to name %q", err, want)
		}
	}
	t.Log(err)

	t.Log("a pending file that does not open the keyring is not named")
	if err := os.Remove(pending); err != nil {
		t.Fatal(err)
	}
	if _, err := GenerateKeyFile(pending, nil); err != nil {
		t.Fatal(err)
	}
	_, _, err = cfg.OpenKeyring(dir, func(string) string { return "" }, false)
	if !errors.Is(err, ErrWrongKEK) || errors.Is(err, ErrRewrapInterrupted) || strings.Contains(err.Error(), pending) {
		t.Fatalf("err = %v, want ErrWrongKEK alone", err)
	}
}
