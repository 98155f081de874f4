// Package backup writes and restores a data directory's encrypted,
// integrity-checked backups: a tar archive inside Tink's streaming AEAD
// (AES256-GCM-HKDF, 1 MiB segments) under a fresh key wrapped by the
// keyring's KEK (package seal), with a manifest of SHA-256 sums. Restore
// writes only into an empty or absent directory, through a temporary
// directory renamed into place once everything has authenticated: a
// flipped byte, a truncation or a wrong KEK is refused and leaves nothing
// behind. Only the control plane and the CLI link it: agents do not take
// backups.
package backup

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/streamingaead"

	"moat/internal/seal"
)

// ErrCorrupt: a backup is corrupt, truncated, or not a moat backup.
var ErrCorrupt = errors.New("backup is corrupt or truncated")

// ErrTargetNotEmpty: a restore target directory already holds files.
var ErrTargetNotEmpty = errors.New("restore target is not empty")

// A backup is, in order:
//
//	magic            "MOATBACKUP1\n"
//	uint32 (BE)      length of the wrapped stream key
//	wrapped key      a fresh Tink streaming-AEAD keyset (AES256-GCM-HKDF,
//	                 1 MiB segments), wrapped by the KEK, associated data = magic
//	stream           Tink streaming AEAD ciphertext of a tar archive, with
//	                 everything before it as associated data
//
// The tar archive holds the files, then ManifestName, which lists every
// file with its size and SHA-256. The streaming AEAD authenticates each
// segment and marks the last one, so a flipped byte, a dropped segment or
// a truncated file is detected; the manifest then checks that the archive
// is the whole set that was written.
const (
	backupMagic   = "MOATBACKUP1\n"
	backupFormat  = "moat-backup-v1"
	maxWrappedKey = 64 << 10
	// ManifestName is the manifest's name inside a backup; no file may use it.
	ManifestName = "MANIFEST.json"
)

// Manifest lists a backup's contents.
type Manifest struct {
	Format  string    `json:"format"`
	Created time.Time `json:"created"`
	// TrustDomain is the trust domain of the control plane the backup is
	// of; empty in backups made before it was recorded.
	TrustDomain string `json:"trust_domain,omitempty"`
	// CARoots names the CA of the control plane the backup is of: the
	// fingerprint (CAFingerprint) of each root certificate of its trust
	// bundle when the backup was made, as moat ca show prints them. Two
	// clusters of one trust domain have different roots. Empty in backups
	// made before it was recorded.
	CARoots []string       `json:"ca_roots,omitempty"`
	Files   []ManifestFile `json:"files"`
}

// maxCARoots bounds a manifest's CARoots: a bundle holds two roots during
// a rotation, one otherwise.
const maxCARoots = 16

// CAFingerprint is the fingerprint of a root certificate (its DER) by
// which backups name their CA: the SHA-256 of the certificate, in
// lowercase hex, as moat ca show prints it and openssl x509 -fingerprint
// -sha256 does (with colons).
func CAFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// ParseCAFingerprint reads a root certificate's SHA-256 fingerprint as an
// operator may write it: hex in either case, with or without the colons
// openssl puts between bytes, and an optional "sha256:" prefix. It
// returns the form CAFingerprint gives.
func ParseCAFingerprint(s string) (string, error) {
	t := strings.ReplaceAll(strings.TrimPrefix(strings.ToLower(s), "sha256:"), ":", "")
	if b, err := hex.DecodeString(t); err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("%q is not a SHA-256 fingerprint (64 hex digits, as moat ca show prints a root's)", s)
	}
	return t, nil
}

// ManifestFile is one entry of a backup.
type ManifestFile struct {
	Name   string `json:"name"` // slash-separated, relative
	Dir    bool   `json:"dir,omitempty"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256,omitempty"` // hex, files only
}

// Item is one thing to back up: a file or directory tree on disk
// (Path), or a snapshot the caller writes (Size and WriteTo), such as a
// bbolt transaction: Item{Name: "store.db", Size: tx.Size(),
// WriteTo: tx.WriteTo}, which is consistent while the store keeps serving.
type Item struct {
	// Name is the item's path inside the backup and so inside the restored
	// directory: relative, slash-separated, no "..".
	Name string
	// Path is a regular file or a directory copied recursively. Symlinks
	// and special files are refused.
	Path string
	// Size and WriteTo, used when Path is empty, give a snapshot of
	// exactly Size bytes.
	Size    int64
	WriteTo func(w io.Writer) (int64, error)
}

// Config configures Write.
type Config struct {
	KEK   seal.KEK // required; the same KEK (or passphrase) restores the backup
	Items []Item
	Now   func() time.Time // manifest time; nil means time.Now
	// TrustDomain is recorded in the manifest: the trust domain of the
	// control plane backed up, which a restore may check.
	TrustDomain string
	// CARoots is recorded in the manifest (Manifest.CARoots): the
	// fingerprints of the control plane's root certificates, which a
	// restore may check; each must be one CAFingerprint gives.
	CARoots []string
}

// Write writes an encrypted, integrity-checked archive of cfg.Items
// to w and returns its manifest. Nothing is written in the clear but the
// magic and the wrapped stream key. On error w holds an incomplete backup
// that Restore refuses.
func Write(w io.Writer, cfg Config) (*Manifest, error) {
	if cfg.KEK == nil {
		return nil, errors.New("backup: KEK is nil")
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	h, err := keyset.NewHandle(streamingaead.AES256GCMHKDF1MBKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("backup: stream key: %w", err)
	}
	var wrapped bytes.Buffer
	if err := h.WriteWithAssociatedData(keyset.NewBinaryWriter(&wrapped), cfg.KEK, []byte(backupMagic)); err != nil {
		return nil, fmt.Errorf("backup: wrapping the stream key: %w", err)
	}
	header := binary.BigEndian.AppendUint32([]byte(backupMagic), uint32(wrapped.Len()))
	header = append(header, wrapped.Bytes()...)
	sa, err := streamingaead.New(h)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if _, err := w.Write(header); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	enc, err := sa.NewEncryptingWriter(w, header)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	tw := tar.NewWriter(enc)
	if err := checkCARoots(cfg.CARoots); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	m := &Manifest{Format: backupFormat, Created: now().UTC(), TrustDomain: cfg.TrustDomain, CARoots: cfg.CARoots}
	seen := map[string]bool{}
	for _, it := range cfg.Items {
		if err := addItem(tw, m, seen, it); err != nil {
			return nil, fmt.Errorf("backup: item %q: %w", it.Name, err)
		}
	}
	mj, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("backup: manifest: %w", err)
	}
	if err := tw.WriteHeader(&tar.Header{Name: ManifestName, Mode: 0o600, Size: int64(len(mj)), Typeflag: tar.TypeReg, ModTime: m.Created}); err != nil {
		return nil, fmt.Errorf("backup: manifest: %w", err)
	}
	if _, err := tw.Write(mj); err != nil {
		return nil, fmt.Errorf("backup: manifest: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	return m, nil
}

// checkCARoots accepts at most maxCARoots fingerprints, each in the form
// CAFingerprint gives.
func checkCARoots(roots []string) error {
	if len(roots) > maxCARoots {
		return fmt.Errorf("%d CA roots, more than %d", len(roots), maxCARoots)
	}
	for _, r := range roots {
		if len(r) != 2*sha256.Size {
			return fmt.Errorf("a CA root fingerprint of %d characters, want %d", len(r), 2*sha256.Size)
		}
		if p, err := ParseCAFingerprint(r); err != nil || p != r {
			return fmt.Errorf("CA root %q is not a lowercase hex SHA-256 fingerprint", r)
		}
	}
	return nil
}

// checkName accepts relative, clean, slash-separated names without "..".
func checkName(name string) error {
	if name == "" || !fs.ValidPath(name) || name == "." || strings.Contains(name, `\`) {
		return fmt.Errorf("invalid name %q (want a relative slash-separated path without ..)", name)
	}
	if name == ManifestName {
		return fmt.Errorf("name %q is reserved for the manifest", name)
	}
	return nil
}

func addItem(tw *tar.Writer, m *Manifest, seen map[string]bool, it Item) error {
	if err := checkName(it.Name); err != nil {
		return err
	}
	if it.Path == "" {
		if it.WriteTo == nil {
			return errors.New("neither Path nor WriteTo is set")
		}
		return addFile(tw, m, seen, it.Name, it.Size, func(w io.Writer) error {
			_, err := it.WriteTo(w)
			return err
		})
	}
	root := it.Path
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := it.Name
		if rel != "." {
			name = path.Join(it.Name, filepath.ToSlash(rel))
		}
		switch {
		case d.IsDir():
			if seen[name] {
				return fmt.Errorf("%q appears twice", name)
			}
			seen[name] = true
			m.Files = append(m.Files, ManifestFile{Name: name, Dir: true})
			return tw.WriteHeader(&tar.Header{Name: name + "/", Mode: 0o700, Typeflag: tar.TypeDir, ModTime: m.Created})
		case d.Type().IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			return addFile(tw, m, seen, name, fi.Size(), func(w io.Writer) error {
				f, err := os.Open(p)
				if err != nil {
					return err
				}
				defer f.Close()
				_, err = io.Copy(w, f)
				return err
			})
		default:
			return fmt.Errorf("%q is a %s, not a file or directory", p, d.Type())
		}
	})
}

func addFile(tw *tar.Writer, m *Manifest, seen map[string]bool, name string, size int64, write func(io.Writer) error) error {
	if seen[name] {
		return fmt.Errorf("%q appears twice", name)
	}
	seen[name] = true
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: size, Typeflag: tar.TypeReg, ModTime: m.Created}); err != nil {
		return err
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(tw, h)}
	if err := write(cw); err != nil {
		return fmt.Errorf("%q: %w", name, err)
	}
	if cw.n != size {
		return fmt.Errorf("%q: wrote %d bytes, expected %d (did it change during the backup?)", name, cw.n, size)
	}
	m.Files = append(m.Files, ManifestFile{Name: name, Size: size, SHA256: hex.EncodeToString(h.Sum(nil))})
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// backupError marks a corrupt or truncated backup.
func backupError(format string, args ...any) error {
	return fmt.Errorf("backup: restore: %w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// readBackup authenticates and walks a backup, handing each entry to put
// (nil r for a directory), and returns the manifest once the whole stream
// has been read, authenticated, and matched against it.
func readBackup(r io.Reader, kek seal.KEK, put func(name string, dir bool, r io.Reader) error) (*Manifest, error) {
	if kek == nil {
		return nil, errors.New("backup: restore: KEK is nil")
	}
	header := make([]byte, len(backupMagic)+4)
	if _, err := io.ReadFull(r, header); err != nil {
		return nil, backupError("header: %v", err)
	}
	if string(header[:len(backupMagic)]) != backupMagic {
		return nil, fmt.Errorf("backup: restore: not a moat backup (bad magic): %w", ErrCorrupt)
	}
	n := binary.BigEndian.Uint32(header[len(backupMagic):])
	if n == 0 || n > maxWrappedKey {
		return nil, backupError("wrapped key length %d out of range", n)
	}
	wrapped := make([]byte, n)
	if _, err := io.ReadFull(r, wrapped); err != nil {
		return nil, backupError("wrapped key: %v", err)
	}
	header = append(header, wrapped...)
	h, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(wrapped)), kek, []byte(backupMagic))
	if err != nil {
		return nil, fmt.Errorf("backup: restore: %w", seal.ErrWrongKEK)
	}
	sa, err := streamingaead.New(h)
	if err != nil {
		return nil, backupError("stream key: %v", err)
	}
	dr, err := sa.NewDecryptingReader(r, header)
	if err != nil {
		return nil, backupError("stream: %v", err)
	}
	tr := tar.NewReader(&streamReader{r: dr})
	type got struct {
		dir  bool
		size int64
		sum  string
	}
	entries := map[string]got{}
	var manifest *Manifest
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, backupError("%v", describeStreamErr(err))
		}
		if manifest != nil {
			return nil, backupError("entry %q after the manifest", hdr.Name)
		}
		if hdr.Name == ManifestName && hdr.Typeflag == tar.TypeReg {
			if hdr.Size > 64<<20 {
				return nil, backupError("manifest of %d bytes", hdr.Size)
			}
			var m Manifest
			dec := json.NewDecoder(tr)
			dec.DisallowUnknownFields()
			if err := dec.Decode(&m); err != nil {
				return nil, backupError("manifest: %v", err)
			}
			if m.Format != backupFormat {
				return nil, backupError("manifest format %q, want %q", m.Format, backupFormat)
			}
			if err := checkCARoots(m.CARoots); err != nil {
				return nil, backupError("manifest: %v", err)
			}
			manifest = &m
			continue
		}
		name := strings.TrimSuffix(hdr.Name, "/")
		if err := checkName(name); err != nil {
			return nil, backupError("entry: %v", err)
		}
		if _, dup := entries[name]; dup {
			return nil, backupError("entry %q appears twice", name)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := put(name, true, nil); err != nil {
				return nil, err
			}
			entries[name] = got{dir: true}
		case tar.TypeReg:
			hs := sha256.New()
			cr := &countWriter{w: hs}
			if err := put(name, false, io.TeeReader(tr, cr)); err != nil {
				if errors.Is(err, ErrCorrupt) {
					return nil, err
				}
				return nil, fmt.Errorf("backup: restore: %q: %w", name, err)
			}
			entries[name] = got{size: cr.n, sum: hex.EncodeToString(hs.Sum(nil))}
		default:
			return nil, backupError("entry %q has type %q; only files and directories are restored", name, hdr.Typeflag)
		}
	}
	// The tar end marker is not the stream's end: read on, so the streaming
	// AEAD checks the final segment (this is what catches truncation at a
	// segment boundary).
	if _, err := io.Copy(io.Discard, dr); err != nil {
		return nil, backupError("%v", describeStreamErr(&streamError{err}))
	}
	if manifest == nil {
		return nil, backupError("no manifest")
	}
	if len(manifest.Files) != len(entries) {
		return nil, backupError("manifest lists %d entries, archive holds %d", len(manifest.Files), len(entries))
	}
	for _, f := range manifest.Files {
		g, ok := entries[f.Name]
		switch {
		case !ok:
			return nil, backupError("%q is in the manifest but not in the archive", f.Name)
		case g.dir != f.Dir:
			return nil, backupError("%q: kind differs from the manifest", f.Name)
		case !f.Dir && (g.size != f.Size || g.sum != f.SHA256):
			return nil, backupError("%q: size or SHA-256 differs from the manifest", f.Name)
		}
	}
	return manifest, nil
}

// Verify reads a whole backup and checks it as Restore would,
// writing nothing.
func Verify(r io.Reader, kek seal.KEK) (*Manifest, error) {
	return readBackup(r, kek, func(name string, dir bool, r io.Reader) error {
		if dir {
			return nil
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return backupError("%q: %v", name, describeStreamErr(err))
		}
		return nil
	})
}

// Restore restores a backup made by Write into dir, which must
// not exist or be empty (else ErrTargetNotEmpty). It writes into a fresh
// directory beside dir and renames it into place only after the whole
// backup has been authenticated and checked against its manifest, so a
// corrupt, truncated or wrongly keyed backup (ErrCorrupt, seal.ErrWrongKEK)
// leaves no trace and overwrites nothing. Restored files are 0600 and
// directories 0700.
func Restore(r io.Reader, kek seal.KEK, dir string) (*Manifest, error) {
	return RestoreChecked(r, kek, dir, nil)
}

// RestoreChecked is Restore, with check (if not nil) called on the
// authenticated manifest before anything is moved into dir: its error
// leaves no trace, as a corrupt backup does.
func RestoreChecked(r io.Reader, kek seal.KEK, dir string, check func(*Manifest) error) (*Manifest, error) {
	if dir == "" {
		return nil, errors.New("backup: restore: target directory is empty")
	}
	dir = filepath.Clean(dir)
	if err := checkEmptyTarget(dir); err != nil {
		return nil, err
	}
	parent := filepath.Dir(dir)
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".restore-*")
	if err != nil {
		return nil, fmt.Errorf("backup: restore: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	m, err := readBackup(r, kek, func(name string, isDir bool, r io.Reader) error {
		p := filepath.Join(tmp, filepath.FromSlash(name))
		if isDir {
			return os.MkdirAll(p, 0o700)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, r)
		if err != nil {
			f.Close()
			return backupError("%q: %v", name, describeStreamErr(err))
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
	if err != nil {
		return nil, err
	}
	if check != nil {
		if err := check(m); err != nil {
			return nil, err
		}
	}
	if err := syncTree(tmp); err != nil {
		return nil, fmt.Errorf("backup: restore: %w", err)
	}
	// rename(2) replaces an empty directory and fails on a non-empty one,
	// so a target filled meanwhile is not overwritten. (os.Rename refuses
	// any existing directory, hence the system call.)
	if err := checkEmptyTarget(dir); err != nil {
		return nil, err
	}
	if err := syscall.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("backup: restore: moving into %q: %w", dir, err)
	}
	done = true
	if err := seal.SyncDir(parent); err != nil {
		return nil, fmt.Errorf("backup: restore: %w", err)
	}
	return m, nil
}

func checkEmptyTarget(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("backup: restore: target %q: %w", dir, err)
	case len(entries) > 0:
		names := make([]string, 0, 3)
		for _, e := range entries[:min(3, len(entries))] {
			names = append(names, e.Name())
		}
		return fmt.Errorf("backup: restore: target %q holds %s: %w", dir, strings.Join(names, ", "), ErrTargetNotEmpty)
	}
	return nil
}

// syncTree syncs every directory under root, so the restored entries are
// durable before the rename publishes them.
func syncTree(root string) error {
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return err
	})
	if err != nil {
		return err
	}
	slices.Reverse(dirs)
	for _, d := range dirs {
		if err := seal.SyncDir(d); err != nil {
			return err
		}
	}
	return nil
}

// streamError is a failure of the decrypting stream itself (as opposed to
// the archive inside it): the bytes do not authenticate.
type streamError struct{ err error }

func (e *streamError) Error() string { return e.err.Error() }
func (e *streamError) Unwrap() error { return e.err }

type streamReader struct{ r io.Reader }

func (s *streamReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		err = &streamError{err}
	}
	return n, err
}

// describeStreamErr says what a read failure means for the operator.
func describeStreamErr(err error) string {
	var se *streamError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the archive ends early (truncated)"
	case errors.As(err, &se):
		return "encrypted stream fails authentication (altered, truncated or extended bytes)"
	default:
		return "archive: " + err.Error()
	}
}
