package seal

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable fake clock, safe for concurrent use.
type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func openTest(t testing.TB, dir string, kek KEK, c *clock) *Keyring {
	t.Helper()
	k, err := Open(Config{Dir: dir, KEK: kek, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		fi, _ := e.Info()
		out[e.Name()] = fi.Mode().String() + string(b)
	}
	return out
}

func TestKeyringCreateReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	c := newClock()
	k := openTest(t, dir, testKEK(t, 1), c)
	a := k.AEAD()
	ct, err := a.Encrypt([]byte("policy v1"), []byte("policy/main"))
	if err != nil {
		t.Fatal(err)
	}
	if id, err := KeyID(ct); err != nil || id != k.Primary() {
		t.Fatalf("KeyID = %d, %v; primary %d", id, err, k.Primary())
	}
	fi, err := os.Stat(k.Path())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("keyring file: %v, mode %v", err, fi.Mode())
	}
	raw, _ := os.ReadFile(k.Path())
	if bytes.Contains(raw, []byte("policy v1")) {
		t.Fatal("keyring holds plaintext")
	}

	k2 := openTest(t, dir, testKEK(t, 1), c)
	pt, err := k2.AEAD().Decrypt(ct, []byte("policy/main"))
	if err != nil || string(pt) != "policy v1" {
		t.Fatalf("reopened: %q, %v", pt, err)
	}
	if _, err := Open(Config{Dir: t.TempDir(), KEK: testKEK(t, 1), NoCreate: true}); !errors.Is(err, ErrNoKeyring) {
		t.Fatalf("NoCreate on empty dir: %v", err)
	}
}

// TestWrongKEK: a wrong KEK is refused at open, with a clear error, and
// leaves every byte of the directory as it was.
func TestWrongKEK(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	k := openTest(t, dir, testKEK(t, 1), c)
	if _, err := k.Rotate(); err != nil {
		t.Fatal(err)
	}
	before := snapshotDir(t, dir)
	pass, _ := NewPassphraseKEK([]byte("not it"), fastArgon, nil)
	for name, kek := range map[string]KEK{"other key": testKEK(t, 2), "passphrase": pass} {
		_, err := Open(Config{Dir: dir, KEK: kek, Now: c.Now})
		if !errors.Is(err, ErrWrongKEK) {
			t.Fatalf("%s: err = %v, want ErrWrongKEK", name, err)
		}
		if !strings.Contains(err.Error(), k.Path()) {
			t.Fatalf("%s: error %q does not name the keyring file", name, err)
		}
	}
	after := snapshotDir(t, dir)
	if len(before) != len(after) {
		t.Fatalf("directory changed: %d files before, %d after", len(before), len(after))
	}
	for n, v := range before {
		if after[n] != v {
			t.Fatalf("file %q changed", n)
		}
	}
}

// TestKeyringFileTampering mutates a good keyring file and expects a refusal.
func TestKeyringFileTampering(t *testing.T) {
	dir := t.TempDir()
	k := openTest(t, dir, testKEK(t, 1), newClock())
	good, err := os.ReadFile(k.Path())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mut  func(string) string
		want string
	}{
		{"not json", func(s string) string { return "x" + s }, "not a keyring file"},
		{"unknown field", func(s string) string { return strings.Replace(s, `{`, `{"extra":1,`, 1) }, "not a keyring file"},
		{"format", func(s string) string { return strings.Replace(s, keyringFormat, "moat-keyring-v9", 1) }, `format "moat-keyring-v9"`},
		{"created date", func(s string) string { return strings.Replace(s, "2026-01-02", "2020-01-02", 1) }, "damaged: its checksum does not match"},
		{"keyset base64", func(s string) string { return strings.Replace(s, `"keyset":"`, `"keyset":"!`, 1) }, "damaged: its checksum does not match"},
		{"flipped keyset byte", func(s string) string {
			i := strings.Index(s, `"keyset":"`) + len(`"keyset":"`) + 20
			b := []byte(s)
			b[i] ^= 1
			return string(b)
		}, "damaged: its checksum does not match"},
		// A checksum recomputed over an edit (or a file from before the
		// checksum) still fails to unwrap: the metadata is authenticated.
		{"created date, checksum recomputed", func(s string) string {
			var f keyringFileV1
			json.Unmarshal([]byte(s), &f)
			f.Keys = json.RawMessage(strings.Replace(string(f.Keys), "2026-01-02", "2020-01-02", 1))
			f.Sum = keyringSum(f)
			b, _ := json.Marshal(f)
			return string(b)
		}, "KEK does not open"},
		{"created date, no checksum", func(s string) string {
			var f keyringFileV1
			json.Unmarshal([]byte(s), &f)
			f.Keys = json.RawMessage(strings.Replace(string(f.Keys), "2026-01-02", "2020-01-02", 1))
			f.Sum = ""
			b, _ := json.Marshal(f)
			return string(b)
		}, "KEK does not open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			if err := os.WriteFile(filepath.Join(d, KeyringFile), []byte(tc.mut(string(good))), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(Config{Dir: d, KEK: testKEK(t, 1)})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestRecordBinding: a ciphertext moved to another record does not open.
func TestRecordBinding(t *testing.T) {
	k := openTest(t, t.TempDir(), testKEK(t, 1), newClock())
	a := k.AEAD()
	ct, err := a.Encrypt([]byte("alice's token"), RecordAD("store", "tokens", "alice"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Decrypt(ct, RecordAD("store", "tokens", "mallory")); !errors.Is(err, ErrOpen) {
		t.Fatalf("moved ciphertext: err = %v, want ErrOpen", err)
	}
	if _, err := a.Decrypt(ct, RecordAD("store", "tokensalice")); !errors.Is(err, ErrOpen) {
		t.Fatalf("re-split record name: err = %v, want ErrOpen", err)
	}
	if pt, err := a.Decrypt(ct, RecordAD("store", "tokens", "alice")); err != nil || string(pt) != "alice's token" {
		t.Fatalf("own record: %q, %v", pt, err)
	}
	if bytes.Equal(RecordAD("ab", "c"), RecordAD("a", "bc")) {
		t.Fatal("RecordAD is ambiguous")
	}
}

func TestRotateRewrapStatus(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	kek1 := testKEK(t, 1)
	k := openTest(t, dir, kek1, c)
	a := k.AEAD() // held across rotation, as other packages will
	first := k.Primary()
	ct1, _ := a.Encrypt([]byte("one"), []byte("r1"))

	if r := k.Due(c.Now(), 90*24*time.Hour); r != "" {
		t.Fatalf("a new key is due (%s)", r)
	}
	c.Advance(90 * 24 * time.Hour)
	if r := k.Due(c.Now(), 90*24*time.Hour); r != "age" {
		t.Fatalf("a 90-day-old key: due %q, want age", r)
	}
	ev, rotated, err := k.RotateIfDue(90 * 24 * time.Hour)
	if err != nil || !rotated {
		t.Fatalf("RotateIfDue: %v %v", rotated, err)
	}
	second := k.Primary()
	if second == first {
		t.Fatal("primary unchanged after rotation")
	}
	if ev.Action != "keys.rotate" || ev.Target != k.Path() || !ev.Time.Equal(c.Now()) {
		t.Fatalf("event = %+v", ev)
	}
	if _, rotated, _ := k.RotateIfDue(90 * 24 * time.Hour); rotated {
		t.Fatal("rotated twice in one day")
	}
	ct2, _ := a.Encrypt([]byte("two"), []byte("r2"))
	if id, _ := KeyID(ct2); id != second {
		t.Fatalf("held AEAD sealed under %d, want new primary %d", id, second)
	}

	kek2, _ := NewPassphraseKEK([]byte("new passphrase"), fastArgon, nil)
	ev, err = k.RewrapKEK(kek2)
	if err != nil || ev.Action != "keys.rewrap" {
		t.Fatalf("rewrap: %+v %v", ev, err)
	}
	if _, err := Open(Config{Dir: dir, KEK: kek1}); !errors.Is(err, ErrWrongKEK) {
		t.Fatalf("old KEK after rewrap: %v", err)
	}
	k2 := openTest(t, dir, kek2, c)
	for ad, ct := range map[string][]byte{"r1": ct1, "r2": ct2} {
		if _, err := k2.AEAD().Decrypt(ct, []byte(ad)); err != nil {
			t.Fatalf("%s after rewrap: %v", ad, err)
		}
	}

	st := k2.Status(map[uint32]Usage{first: {Records: 1, Bytes: int64(len(ct1))}, second: {Records: 1}})
	if len(st.Keys) != 2 || st.Primary != second {
		t.Fatalf("status = %+v", st)
	}
	if k0 := st.Keys[0]; k0.ID != first || k0.State != "enabled" || k0.Age != 90*24*time.Hour || k0.Usage.Records != 1 {
		t.Fatalf("old key status = %+v", k0)
	}
	if k1 := st.Keys[1]; k1.ID != second || !k1.Primary || k1.State != "primary" || k1.Age != 0 {
		t.Fatalf("new key status = %+v", k1)
	}

	if _, err := k2.Disable(second); err == nil {
		t.Fatal("disabled the primary")
	}
	if _, err := k2.Disable(first); err != nil {
		t.Fatal(err)
	}
	if _, err := k2.AEAD().Decrypt(ct1, []byte("r1")); !errors.Is(err, ErrOpen) {
		t.Fatalf("disabled key still opens: %v", err)
	}
	k3 := openTest(t, dir, kek2, c)
	if st := k3.Status(nil); st.Keys[0].State != "disabled" {
		t.Fatalf("disable not persisted: %+v", st)
	}
}

func TestKeyID(t *testing.T) {
	for _, b := range [][]byte{nil, {1, 2, 3}, {0, 0, 0, 0, 1, 9}} {
		if _, err := KeyID(b); err == nil {
			t.Errorf("KeyID(%x) accepted", b)
		}
	}
	if id, err := KeyID([]byte{1, 0, 0, 1, 2, 99}); err != nil || id != 258 {
		t.Fatalf("KeyID = %d, %v", id, err)
	}
}

// TestTwoProcesses: a keyring changed by another process is never
// overwritten; Reload picks the change up, and so does the first
// ciphertext under a key the stale keyring does not hold.
func TestTwoProcesses(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	k1 := openTest(t, dir, testKEK(t, 1), c)
	k2 := openTest(t, dir, testKEK(t, 1), c)
	if _, err := k1.Rotate(); err != nil {
		t.Fatal(err)
	}
	if _, err := k2.Rotate(); !errors.Is(err, ErrKeyringChanged) {
		t.Fatalf("rotate over another process's rotation: %v", err)
	}
	ct, _ := k1.AEAD().Encrypt([]byte("x"), nil)
	if _, err := k2.AEAD().Decrypt(ct, nil); err != nil {
		t.Fatalf("stale keyring did not reload for a new key's ciphertext: %v", err)
	}
	if changed, err := k2.Reload(); err != nil || changed {
		t.Fatalf("Reload after the automatic one = %v, %v; want no change", changed, err)
	}
	if _, err := k2.Rotate(); err != nil {
		t.Fatal(err)
	}
	if changed, err := k1.Reload(); err != nil || !changed {
		t.Fatalf("Reload after another process rotated = %v, %v; want a change", changed, err)
	}
	if n := len(k1.Status(nil).Keys); n != 3 {
		t.Fatalf("%d keys after two rotations, want 3", n)
	}
}

// memBackend is a shared keyring backend in memory, as etcd is to a
// cluster's servers.
type memBackend struct {
	mu   sync.Mutex // guards data
	data []byte
}

func (m *memBackend) Name() string { return "memory" }

func (m *memBackend) Load() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.data == nil {
		return nil, fs.ErrNotExist
	}
	return bytes.Clone(m.data), nil
}

func (m *memBackend) Replace(prev, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !bytes.Equal(prev, m.data) || (prev == nil) != (m.data == nil) {
		return ErrKeyringChanged
	}
	m.data = bytes.Clone(data)
	return nil
}

// TestSharedBackend: two keyrings on one backend (two servers of a
// cluster) see each other's rotations: a ciphertext under the other's new
// key opens at once, and a rotation never drops the other's key.
func TestSharedBackend(t *testing.T) {
	b := &memBackend{}
	kek := testKEK(t, 1)
	k1, err := Open(Config{Dir: t.TempDir(), KEK: kek, Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	k2, err := Open(Config{Dir: t.TempDir(), KEK: kek, Backend: b, NoCreate: true})
	if err != nil {
		t.Fatalf("second server opening the shared keyring: %v", err)
	}
	if _, err := k1.Rotate(); err != nil {
		t.Fatal(err)
	}
	ct, _ := k1.AEAD().Encrypt([]byte("x"), []byte("svc/a"))
	if pt, err := k2.AEAD().Decrypt(ct, []byte("svc/a")); err != nil || string(pt) != "x" {
		t.Fatalf("the other server opening a value under the new key: %q, %v", pt, err)
	}
	if k2.Primary() != k1.Primary() {
		t.Fatalf("primaries differ after the reload: %d and %d", k2.Primary(), k1.Primary())
	}
	if _, err := k1.Rotate(); err != nil {
		t.Fatal(err)
	}
	if _, err := k2.Rotate(); !errors.Is(err, ErrKeyringChanged) {
		t.Fatalf("rotation over the other's: %v, want ErrKeyringChanged", err)
	}
	if _, err := k2.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := k2.Rotate(); err != nil {
		t.Fatal(err)
	}
	if _, err := k1.Reload(); err != nil {
		t.Fatal(err)
	}
	if n := len(k1.Status(nil).Keys); n != 4 {
		t.Fatalf("%d keys after three rotations, want 4", n)
	}
	if _, err := Open(Config{Dir: t.TempDir(), KEK: testKEK(t, 2), Backend: b}); !errors.Is(err, ErrWrongKEK) {
		t.Fatalf("another KEK on the shared keyring: %v, want ErrWrongKEK", err)
	}
}
