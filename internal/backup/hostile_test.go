package backup

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/streamingaead"

	"moat/internal/seal"
)

// sealedArchive seals what build writes into a tar archive as Write
// seals a backup, under kek: a backup made by someone holding the KEK
// (a stolen key, another cluster sharing a passphrase) with no check of
// what it holds.
func sealedArchive(t *testing.T, kek seal.KEK, build func(tw *tar.Writer)) []byte {
	t.Helper()
	h, err := keyset.NewHandle(streamingaead.AES256GCMHKDF1MBKeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	var wrapped bytes.Buffer
	if err := h.WriteWithAssociatedData(keyset.NewBinaryWriter(&wrapped), kek, []byte(backupMagic)); err != nil {
		t.Fatal(err)
	}
	header := binary.BigEndian.AppendUint32([]byte(backupMagic), uint32(wrapped.Len()))
	header = append(header, wrapped.Bytes()...)
	sa, err := streamingaead.New(h)
	if err != nil {
		t.Fatal(err)
	}
	out := bytes.NewBuffer(bytes.Clone(header))
	enc, err := sa.NewEncryptingWriter(out, header)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(enc)
	build(tw)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// entry is one tar entry of a hostile archive.
type entry struct {
	hdr  tar.Header
	body string
}

func file(name, body string) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o600, Size: int64(len(body))}, body: body}
}

// listed writes entries, then a manifest listing files (nil: every
// regular entry as written).
func listed(t *testing.T, entries []entry, files []ManifestFile) func(tw *tar.Writer) {
	return func(tw *tar.Writer) {
		m := Manifest{Format: backupFormat, Files: files}
		for _, e := range entries {
			hdr := e.hdr
			if err := tw.WriteHeader(&hdr); err != nil {
				t.Fatal(err)
			}
			if e.body != "" {
				if _, err := tw.Write([]byte(e.body)); err != nil {
					t.Fatal(err)
				}
			}
			if files == nil && hdr.Typeflag == tar.TypeReg {
				sum := sha256.Sum256([]byte(e.body))
				m.Files = append(m.Files, ManifestFile{Name: hdr.Name, Size: hdr.Size, SHA256: hex.EncodeToString(sum[:])})
			}
		}
		mj, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(&tar.Header{Name: ManifestName, Typeflag: tar.TypeReg, Mode: 0o600, Size: int64(len(mj))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(mj); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRestoreRefusesHostileArchive: a backup that authenticates under the
// KEK but was not made by Write (its maker held the KEK) is still held to
// what Write makes: relative names inside the target, files and
// directories only, each once, all listed with their sums. Every such
// backup is refused as corrupt, and nothing lands inside or outside the
// target.
func TestRestoreRefusesHostileArchive(t *testing.T) {
	kek := testKEK(t, 5)
	t.Run("well formed", func(t *testing.T) {
		// The fixture's own form restores: the cases below fail for what
		// they change, not for the way they are made.
		b := sealedArchive(t, kek, listed(t, []entry{file("store.db", "state")}, nil))
		dst := filepath.Join(t.TempDir(), "restored")
		if _, err := Restore(bytes.NewReader(b), kek, dst); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(filepath.Join(dst, "store.db")); err != nil || string(got) != "state" {
			t.Fatalf("restored %q, %v", got, err)
		}
	})
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	for _, tc := range []struct {
		name  string
		build func(tw *tar.Writer)
		msg   string
	}{
		{"parent escape", listed(t, []entry{file("../escape", "x")}, nil), "invalid name"},
		{"nested escape", listed(t, []entry{file("audit/../../escape", "x")}, nil), "invalid name"},
		{"absolute", listed(t, []entry{file("/tmp/escape", "x")}, nil), "invalid name"},
		{"backslash", listed(t, []entry{file(`..\escape`, "x")}, nil), "invalid name"},
		{"dot", listed(t, []entry{{hdr: tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o700}}}, nil), "invalid name"},
		{"symlink", listed(t, []entry{{hdr: tar.Header{Name: "store.db", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}}}, nil), "only files and directories"},
		{"symlink then through it", listed(t, []entry{
			{hdr: tar.Header{Name: "audit", Typeflag: tar.TypeSymlink, Linkname: "/tmp"}},
			file("audit/escape", "x"),
		}, nil), "only files and directories"},
		{"hard link", listed(t, []entry{{hdr: tar.Header{Name: "keyring.json", Typeflag: tar.TypeLink, Linkname: "../../etc/shadow"}}}, nil), "only files and directories"},
		{"device", listed(t, []entry{{hdr: tar.Header{Name: "dev", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}}}, nil), "only files and directories"},
		{"fifo", listed(t, []entry{{hdr: tar.Header{Name: "fifo", Typeflag: tar.TypeFifo}}}, nil), "only files and directories"},
		{"twice", listed(t, []entry{file("store.db", "a"), file("store.db", "b")}, []ManifestFile{{Name: "store.db", Size: 1, SHA256: sum("a")}}), "appears twice"},
		{"unlisted file", listed(t, []entry{file("store.db", "a"), file("extra", "b")}, []ManifestFile{{Name: "store.db", Size: 1, SHA256: sum("a")}}), "manifest lists 1 entries, archive holds 2"},
		{"file changed after listing", listed(t, []entry{file("store.db", "forged")}, []ManifestFile{{Name: "store.db", Size: 6, SHA256: sum("honest")}}), "differs from the manifest"},
		{"listed, absent", listed(t, nil, []ManifestFile{{Name: "store.db", Size: 1, SHA256: sum("a")}}), "manifest lists 1 entries, archive holds 0"},
		{"no manifest", func(tw *tar.Writer) {
			hdr := tar.Header{Name: "store.db", Typeflag: tar.TypeReg, Mode: 0o600, Size: 1}
			tw.WriteHeader(&hdr)
			tw.Write([]byte("a"))
		}, "no manifest"},
		{"entry after the manifest", func(tw *tar.Writer) {
			listed(t, nil, []ManifestFile{})(tw)
			hdr := tar.Header{Name: "late", Typeflag: tar.TypeReg, Mode: 0o600, Size: 1}
			tw.WriteHeader(&hdr)
			tw.Write([]byte("a"))
		}, "after the manifest"},
		{"manifest of another format", func(tw *tar.Writer) {
			mj := []byte(`{"format":"moat-backup-v0","created":"2026-01-01T00:00:00Z","files":[]}`)
			tw.WriteHeader(&tar.Header{Name: ManifestName, Typeflag: tar.TypeReg, Mode: 0o600, Size: int64(len(mj))})
			tw.Write(mj)
		}, "manifest format"},
		{"manifest with a CA root not a fingerprint", func(tw *tar.Writer) {
			mj := []byte(`{"format":"moat-backup-v1","created":"2026-01-01T00:00:00Z","ca_roots":["` + strings.Repeat("Z", 64) + `"],"files":[]}`)
			tw.WriteHeader(&tar.Header{Name: ManifestName, Typeflag: tar.TypeReg, Mode: 0o600, Size: int64(len(mj))})
			tw.Write(mj)
		}, "not a lowercase hex SHA-256 fingerprint"},
		{"manifest with a long CA root", func(tw *tar.Writer) {
			mj := []byte(`{"format":"moat-backup-v1","created":"2026-01-01T00:00:00Z","ca_roots":["` + strings.Repeat("a", 1<<16) + `"],"files":[]}`)
			tw.WriteHeader(&tar.Header{Name: ManifestName, Typeflag: tar.TypeReg, Mode: 0o600, Size: int64(len(mj))})
			tw.Write(mj)
		}, "fingerprint of 65536 characters, want 64"},
		{"manifest with too many CA roots", func(tw *tar.Writer) {
			roots := strings.TrimSuffix(strings.Repeat(`"`+strings.Repeat("a", 64)+`",`, maxCARoots+1), ",")
			mj := []byte(`{"format":"moat-backup-v1","created":"2026-01-01T00:00:00Z","ca_roots":[` + roots + `],"files":[]}`)
			tw.WriteHeader(&tar.Header{Name: ManifestName, Typeflag: tar.TypeReg, Mode: 0o600, Size: int64(len(mj))})
			tw.Write(mj)
		}, "17 CA roots, more than 16"},
		{"manifest with an unknown field", func(tw *tar.Writer) {
			mj := []byte(`{"format":"moat-backup-v1","created":"2026-01-01T00:00:00Z","files":[],"hooks":["sh"]}`)
			tw.WriteHeader(&tar.Header{Name: ManifestName, Typeflag: tar.TypeReg, Mode: 0o600, Size: int64(len(mj))})
			tw.Write(mj)
		}, "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := sealedArchive(t, kek, tc.build)
			outer := t.TempDir()
			parent := filepath.Join(outer, "p")
			if err := os.Mkdir(parent, 0o700); err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(parent, "restored")
			_, err := Restore(bytes.NewReader(b), kek, dst)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want ErrCorrupt saying %q", err, tc.msg)
			}
			t.Log(err)
			for _, d := range []string{outer, parent} {
				left, _ := os.ReadDir(d)
				if d == outer && len(left) == 1 && left[0].Name() == "p" {
					continue
				}
				if len(left) != 0 {
					t.Fatalf("a refused restore left %q in %s", left[0].Name(), d)
				}
			}
			if _, err := Verify(bytes.NewReader(b), kek); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("verify: err = %v, want ErrCorrupt", err)
			}
		})
	}
}
