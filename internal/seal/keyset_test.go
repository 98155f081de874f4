package seal

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tink-crypto/tink-go/v2/aead"
	tinkkeyset "github.com/tink-crypto/tink-go/v2/keyset"
	tinkpb "github.com/tink-crypto/tink-go/v2/proto/tink_go_proto"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// readWrapped returns a keyring file's wrapped keyset and its associated data.
func readWrapped(t *testing.T, path string) (wrapped, ad []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f keyringFileV1
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	ks, err := base64.StdEncoding.DecodeString(f.Keyset)
	if err != nil {
		t.Fatal(err)
	}
	return ks, keyringAD(f.Keys)
}

// crossCheck seals with each side and opens with the other.
func crossCheck(t *testing.T, ours, theirs tink.AEAD) {
	t.Helper()
	ad := []byte("record/1")
	ct, err := ours.Encrypt([]byte("from us"), ad)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := theirs.Decrypt(ct, ad); err != nil || string(pt) != "from us" {
		t.Fatalf("Tink opens ours: %q, %v", pt, err)
	}
	ct, err = theirs.Encrypt([]byte("from Tink"), ad)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := ours.Decrypt(ct, ad); err != nil || string(pt) != "from Tink" {
		t.Fatalf("we open Tink's: %q, %v", pt, err)
	}
	if _, err := ours.Decrypt(ct, []byte("record/2")); err == nil {
		t.Fatal("opened under other associated data")
	}
}

// TestKeyringOpensInTink: a keyring this package writes (created, rotated,
// with a key disabled) is a keyset Tink reads under the same KEK, with the
// same keys, states and primary, and ciphertexts cross both ways.
func TestKeyringOpensInTink(t *testing.T) {
	dir := t.TempDir()
	kek := testKEK(t, 1)
	k := openTest(t, dir, kek, newClock())
	first := k.Primary()
	if _, err := k.Rotate(); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Rotate(); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Disable(first); err != nil {
		t.Fatal(err)
	}
	wrapped, ad := readWrapped(t, filepath.Join(dir, KeyringFile))
	h, err := tinkkeyset.ReadWithAssociatedData(tinkkeyset.NewBinaryReader(bytes.NewReader(wrapped)), kek, ad)
	if err != nil {
		t.Fatalf("Tink does not read the keyring: %v", err)
	}
	info := h.KeysetInfo()
	if info.GetPrimaryKeyId() != k.Primary() || len(info.GetKeyInfo()) != 3 {
		t.Fatalf("Tink sees primary %d and %d keys, want %d and 3", info.GetPrimaryKeyId(), len(info.GetKeyInfo()), k.Primary())
	}
	for _, ki := range info.GetKeyInfo() {
		want := tinkpb.KeyStatusType_ENABLED
		if ki.GetKeyId() == first {
			want = tinkpb.KeyStatusType_DISABLED
		}
		if ki.GetStatus() != want || ki.GetTypeUrl() != aesGCMTypeURL || ki.GetOutputPrefixType() != tinkpb.OutputPrefixType_TINK {
			t.Errorf("key %d: %v", ki.GetKeyId(), ki)
		}
	}
	theirs, err := aead.New(h)
	if err != nil {
		t.Fatal(err)
	}
	crossCheck(t, k.AEAD(), theirs)
}

// TestTinkKeysetOpensHere: a keyset Tink writes (three AES-256-GCM keys,
// one disabled) unwraps here, and its keys seal and open as Tink's do.
func TestTinkKeysetOpensHere(t *testing.T) {
	kek := testKEK(t, 2)
	m := tinkkeyset.NewManager()
	var ids []uint32
	for range 3 {
		id, err := m.Add(aead.AES256GCMKeyTemplate())
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := m.SetPrimary(ids[1]); err != nil {
		t.Fatal(err)
	}
	if err := m.Disable(ids[0]); err != nil {
		t.Fatal(err)
	}
	h, err := m.Handle()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	ad := []byte("ad")
	if err := h.WriteWithAssociatedData(tinkkeyset.NewBinaryWriter(&buf), kek, ad); err != nil {
		t.Fatal(err)
	}
	ks, err := unwrapKeyset(buf.Bytes(), kek, ad)
	if err != nil {
		t.Fatal(err)
	}
	if ks.primary != ids[1] || len(ks.keys) != 3 || ks.keys[ks.find(ids[0])].status != statusDisabled {
		t.Fatalf("keyset: primary %d, %d keys", ks.primary, len(ks.keys))
	}
	theirs, err := aead.New(h)
	if err != nil {
		t.Fatal(err)
	}
	crossCheck(t, ks, theirs)
	if _, err := unwrapKeyset(buf.Bytes(), testKEK(t, 3), ad); !errors.Is(err, errWrapped) {
		t.Fatalf("another KEK: %v", err)
	}
	if _, err := unwrapKeyset(buf.Bytes(), kek, []byte("other")); !errors.Is(err, errWrapped) {
		t.Fatalf("other associated data: %v", err)
	}
}

// TestKeysetRefuses: keys of another type or output prefix, and a keyset
// whose primary is missing or disabled, are refused as damage rather than
// used.
func TestKeysetRefuses(t *testing.T) {
	kek := testKEK(t, 4)
	ad := []byte("ad")
	tinkWrapped := func(tmpl *tinkpb.KeyTemplate) []byte {
		h, err := tinkkeyset.NewHandle(tmpl)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := h.WriteWithAssociatedData(tinkkeyset.NewBinaryWriter(&buf), kek, ad); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	ours := func(mut func(*keyset)) []byte {
		ks, err := newKeyset()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ks.add(); err != nil {
			t.Fatal(err)
		}
		mut(ks)
		b, err := ks.wrap(kek, ad)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for name, b := range map[string][]byte{
		"ChaCha20-Poly1305":   tinkWrapped(aead.ChaCha20Poly1305KeyTemplate()),
		"raw output prefix":   tinkWrapped(aead.AES256GCMNoPrefixKeyTemplate()),
		"disabled primary":    ours(func(ks *keyset) { ks.keys[0].status = statusDisabled }),
		"missing primary":     ours(func(ks *keyset) { ks.primary++ }),
		"duplicate key ID":    ours(func(ks *keyset) { ks.keys[1].id = ks.keys[0].id }),
		"not a keyset at all": []byte("\x12\x03abc\xff"),
	} {
		if _, err := unwrapKeyset(b, kek, ad); !errors.Is(err, ErrKeyringDamaged) {
			t.Errorf("%s: %v, want ErrKeyringDamaged", name, err)
		}
	}
	// A keyset of ours that is well formed opens.
	if _, err := unwrapKeyset(ours(func(*keyset) {}), kek, ad); err != nil {
		t.Fatal(err)
	}
}
