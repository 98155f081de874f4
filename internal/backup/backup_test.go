package backup

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"moat/internal/seal"
)

// backupFixture builds a data directory with a keyring, a bbolt store, and
// an audit directory, and returns a good backup of it.
func backupFixture(t *testing.T, kek seal.KEK) (src string, backup []byte) {
	t.Helper()
	src = t.TempDir()
	k := openTest(t, src, testKEK(t, 1))
	fillBolt(t, filepath.Join(src, "store.db"), k, 50)
	if err := os.MkdirAll(filepath.Join(src, "audit", "seg"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(src, "audit", "seg", "000001.log"), bytes.Repeat([]byte("entry\n"), 5000), 0o600)
	os.WriteFile(filepath.Join(src, "audit", "checkpoint"), []byte("cp 1\n"), 0o600)
	os.MkdirAll(filepath.Join(src, "audit", "empty"), 0o700)
	// Big enough for three 1 MiB stream segments, so segment boundaries
	// can be cut at.
	big := make([]byte, 2<<20+12345)
	for i := range big {
		big[i] = byte(i * 7 / 3)
	}
	os.WriteFile(filepath.Join(src, "audit", "seg", "000002.log"), big, 0o600)

	db := openBolt(t, filepath.Join(src, "store.db"))
	defer db.Close()
	var buf bytes.Buffer
	err := db.View(func(tx *bolt.Tx) error {
		_, err := Write(&buf, Config{KEK: kek, Now: newClock(), Items: []Item{
			{Name: seal.KeyringFile, Path: filepath.Join(src, seal.KeyringFile)},
			{Name: "store.db", Size: tx.Size(), WriteTo: tx.WriteTo},
			{Name: "audit", Path: filepath.Join(src, "audit")},
		}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return src, buf.Bytes()
}

func sameTree(t *testing.T, a, b string) {
	t.Helper()
	for _, rel := range []string{seal.KeyringFile, "audit/seg/000001.log", "audit/seg/000002.log", "audit/checkpoint"} {
		x, err1 := os.ReadFile(filepath.Join(a, rel))
		y, err2 := os.ReadFile(filepath.Join(b, rel))
		if err1 != nil || err2 != nil || !bytes.Equal(x, y) {
			t.Fatalf("%s differs after restore (%v, %v)", rel, err1, err2)
		}
	}
	if fi, err := os.Stat(filepath.Join(b, "audit", "empty")); err != nil || !fi.IsDir() {
		t.Fatalf("empty directory not restored: %v", err)
	}
}

func TestBackupRoundTrip(t *testing.T) {
	kek, _ := seal.NewPassphraseKEK([]byte("backup passphrase"), seal.Argon2Params{Time: 1, Memory: 1024, Threads: 1}, nil)
	src, backup := backupFixture(t, kek)
	for _, secret := range []string{"value of record", "entry\n", "cp 1"} {
		if bytes.Contains(backup, []byte(secret)) {
			t.Fatalf("backup holds %q in the clear", secret)
		}
	}
	// A fresh machine: a new KEK object from the same passphrase.
	kek2, _ := seal.NewPassphraseKEK([]byte("backup passphrase"), seal.Argon2Params{Time: 1, Memory: 1024, Threads: 1}, nil)
	if _, err := Verify(bytes.NewReader(backup), kek2); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "restored")
	m, err := Restore(bytes.NewReader(backup), kek2, dst)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != 8 {
		t.Fatalf("manifest has %d entries: %+v", len(m.Files), m.Files)
	}
	sameTree(t, src, dst)
	k := openTest(t, dst, testKEK(t, 1))
	db := openBolt(t, filepath.Join(dst, "store.db"))
	defer db.Close()
	checkAll(t, db, k, 50)

	// An existing empty directory is a valid target too.
	empty := t.TempDir()
	if _, err := Restore(bytes.NewReader(backup), kek2, empty); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, empty)
}

func TestRestoreRefuses(t *testing.T) {
	kek := testKEK(t, 3)
	_, good := backupFixture(t, kek)
	hdrLen := len(backupMagic) + 4
	for _, tc := range []struct {
		name string
		mut  func([]byte) []byte
		kek  seal.KEK
		want error
		msg  string
	}{
		{name: "magic", mut: func(b []byte) []byte { b[0] ^= 1; return b }, want: ErrCorrupt, msg: "not a moat backup"},
		{name: "key length", mut: func(b []byte) []byte { b[hdrLen-4] = 0xff; return b }, want: ErrCorrupt, msg: "out of range"},
		{name: "wrapped key byte", mut: func(b []byte) []byte { b[hdrLen+20] ^= 1; return b }, want: seal.ErrWrongKEK},
		{name: "first stream byte", mut: func(b []byte) []byte { b[hdrLen+200] ^= 1; return b }, want: ErrCorrupt},
		{name: "middle byte", mut: func(b []byte) []byte { b[len(b)/2] ^= 0x80; return b }, want: ErrCorrupt},
		{name: "last byte", mut: func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, want: ErrCorrupt},
		{name: "truncated by one", mut: func(b []byte) []byte { return b[:len(b)-1] }, want: ErrCorrupt},
		{name: "truncated to half", mut: func(b []byte) []byte { return b[:len(b)/2] }, want: ErrCorrupt},
		{name: "truncated header", mut: func(b []byte) []byte { return b[:hdrLen+3] }, want: ErrCorrupt},
		{name: "empty", mut: func(b []byte) []byte { return nil }, want: ErrCorrupt},
		{name: "appended garbage", mut: func(b []byte) []byte { return append(b, "more"...) }, want: ErrCorrupt},
		{name: "wrong KEK", mut: func(b []byte) []byte { return b }, kek: testKEK(t, 4), want: seal.ErrWrongKEK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := kek
			if tc.kek != nil {
				k = tc.kek
			}
			parent := t.TempDir()
			dst := filepath.Join(parent, "restored")
			_, err := Restore(bytes.NewReader(tc.mut(bytes.Clone(good))), k, dst)
			if err == nil {
				t.Fatal("restored a bad backup")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %q", err, tc.msg)
			}
			t.Log(err)
			if left, _ := os.ReadDir(parent); len(left) != 0 {
				t.Fatalf("a refused restore left %v behind", left[0].Name())
			}
		})
	}
	t.Run("non-empty target", func(t *testing.T) {
		dst := t.TempDir()
		os.WriteFile(filepath.Join(dst, "keep"), []byte("mine"), 0o600)
		_, err := Restore(bytes.NewReader(good), kek, dst)
		if !errors.Is(err, ErrTargetNotEmpty) || !strings.Contains(err.Error(), "keep") {
			t.Fatalf("err = %v", err)
		}
		if b, _ := os.ReadFile(filepath.Join(dst, "keep")); string(b) != "mine" {
			t.Fatal("target file overwritten")
		}
		if left, _ := os.ReadDir(filepath.Dir(dst)); len(left) != 1 {
			t.Fatalf("temp directory left behind: %d entries", len(left))
		}
	})
	// Cut exactly at segment boundaries: the stream must notice the missing
	// last segment even though every segment present authenticates.
	wrappedLen := int(good[hdrLen-1]) | int(good[hdrLen-2])<<8
	streamStart := hdrLen + wrappedLen
	for seg := 1; seg <= 2; seg++ {
		n := streamStart + seg*(1<<20)
		if n >= len(good) {
			t.Fatalf("fixture too small for segment %d", seg)
		}
		_, err := Verify(bytes.NewReader(good[:n]), kek)
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cut after segment %d: err = %v", seg, err)
		}
		t.Logf("cut after segment %d: %v", seg, err)
	}
	// Every truncation point is refused (bounded: a stride through the file).
	for n := 0; n < len(good); n += 1 + len(good)/97 {
		if _, err := Verify(bytes.NewReader(good[:n]), kek); err == nil {
			t.Fatalf("backup truncated to %d of %d bytes verified", n, len(good))
		}
	}
}

func TestWriteBackupRefuses(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o600)
	os.Symlink("f", filepath.Join(dir, "link"))
	snap := func(s string) func(io.Writer) (int64, error) {
		return func(w io.Writer) (int64, error) { n, err := io.WriteString(w, s); return int64(n), err }
	}
	for _, tc := range []struct {
		name  string
		items []Item
		want  string
	}{
		{"dotdot", []Item{{Name: "../x", Path: filepath.Join(dir, "f")}}, "invalid name"},
		{"absolute", []Item{{Name: "/x", Path: filepath.Join(dir, "f")}}, "invalid name"},
		{"manifest", []Item{{Name: ManifestName, Path: filepath.Join(dir, "f")}}, "reserved"},
		{"twice", []Item{{Name: "a", Path: filepath.Join(dir, "f")}, {Name: "a", Path: filepath.Join(dir, "f")}}, "appears twice"},
		{"symlink", []Item{{Name: "d", Path: dir}}, "not a file or directory"},
		{"short snapshot", []Item{{Name: "s", Size: 5, WriteTo: snap("abc")}}, "wrote 3 bytes, expected 5"},
		{"nothing", []Item{{Name: "s"}}, "neither Path nor WriteTo"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Write(io.Discard, Config{KEK: testKEK(t, 1), Items: tc.items})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// testKEK is a raw KEK of 32 bytes b.
func testKEK(t testing.TB, b byte) seal.KEK {
	t.Helper()
	key := seal.EncodeKEKKey(bytes.Repeat([]byte{b}, seal.KEKKeySize))
	k, err := seal.EnvKEK("K", func(string) (string, bool) { return key, true })
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newClock() func() time.Time {
	return func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
}

func openTest(t testing.TB, dir string, kek seal.KEK) *seal.Keyring {
	t.Helper()
	k, err := seal.Open(seal.Config{Dir: dir, KEK: kek, Now: newClock()})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var testBucket = []byte("records")

func recKey(i int) []byte { return fmt.Appendf(nil, "rec/%05d", i) }
func recVal(i int) string { return fmt.Sprintf("value of record %d", i) }

func openBolt(t testing.TB, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// fillBolt stores n records sealed under k.
func fillBolt(t testing.TB, path string, k *seal.Keyring, n int) {
	t.Helper()
	db := openBolt(t, path)
	defer db.Close()
	a := k.AEAD()
	err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(testBucket)
		if err != nil {
			return err
		}
		for i := range n {
			ct, err := a.Encrypt([]byte(recVal(i)), recKey(i))
			if err != nil {
				return err
			}
			if err := b.Put(recKey(i), ct); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkAll opens each of the n records under k.
func checkAll(t testing.TB, db *bolt.DB, k *seal.Keyring, n int) {
	t.Helper()
	a := k.AEAD()
	err := db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(testBucket)
		for i := range n {
			pt, err := a.Decrypt(b.Get(recKey(i)), recKey(i))
			if err != nil || string(pt) != recVal(i) {
				return fmt.Errorf("record %d: %q, %v", i, pt, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRestoreCheckedRefusesOnManifest: the trust domain and CA roots Write
// is given are in the authenticated manifest, and a check refusing it leaves nothing in
// the target.
func TestRestoreCheckedRefusesOnManifest(t *testing.T) {
	kek := testKEK(t, 4)
	var buf bytes.Buffer
	root := CAFingerprint([]byte("a root certificate"))
	if _, err := Write(&buf, Config{KEK: kek, Now: newClock(), TrustDomain: "a.example", CARoots: []string{root},
		Items: []Item{{Name: "f", Size: 2, WriteTo: func(w io.Writer) (int64, error) { n, err := w.Write([]byte("hi")); return int64(n), err }}}}); err != nil {
		t.Fatal(err)
	}
	m, err := Verify(bytes.NewReader(buf.Bytes()), kek)
	if err != nil || m.TrustDomain != "a.example" || len(m.CARoots) != 1 || m.CARoots[0] != root {
		t.Fatalf("manifest %+v, %v: want trust domain a.example and CA root %s", m, err, root)
	}
	refused := errors.New("not this cluster's")
	dst := filepath.Join(t.TempDir(), "restored")
	if _, err := RestoreChecked(bytes.NewReader(buf.Bytes()), kek, dst, func(m *Manifest) error { return refused }); !errors.Is(err, refused) {
		t.Fatalf("restore: %v, want the check's error", err)
	}
	ents, err := os.ReadDir(filepath.Dir(dst))
	if err != nil || len(ents) != 0 {
		t.Fatalf("a refused restore left %v (%v)", ents, err)
	}
}

// TestCAFingerprint: a root's fingerprint is read as operators copy it
// (moat ca show's hex, openssl's colons and capitals, a sha256: prefix),
// and nothing else is taken for one.
func TestCAFingerprint(t *testing.T) {
	fp := CAFingerprint([]byte("root"))
	if len(fp) != 64 || strings.ToLower(fp) != fp {
		t.Fatalf("CAFingerprint = %q, want 64 lowercase hex digits", fp)
	}
	var colons []string
	for i := 0; i < len(fp); i += 2 {
		colons = append(colons, strings.ToUpper(fp[i:i+2]))
	}
	for _, in := range []string{fp, strings.ToUpper(fp), strings.Join(colons, ":"), "sha256:" + fp, "SHA256:" + strings.Join(colons, ":")} {
		if got, err := ParseCAFingerprint(in); err != nil || got != fp {
			t.Errorf("ParseCAFingerprint(%q) = %q, %v; want %q", in, got, err, fp)
		}
	}
	for _, in := range []string{"", "abc", fp[:62], fp + "00", strings.Replace(fp, fp[:1], "g", 1), "sha1:" + fp} {
		if got, err := ParseCAFingerprint(in); err == nil {
			t.Errorf("ParseCAFingerprint(%q) = %q, want an error", in, got)
		}
	}
	if _, err := Write(io.Discard, Config{KEK: testKEK(t, 6), CARoots: []string{strings.ToUpper(fp)}}); err == nil || !strings.Contains(err.Error(), "not a lowercase hex SHA-256 fingerprint") {
		t.Errorf("Write with an uppercase root: %v, want it refused", err)
	}
}
