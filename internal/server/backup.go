package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"moat/internal/audit"
	"moat/internal/backup"
	"moat/internal/filelock"
	"moat/internal/flow/flowstore"
	"moat/internal/seal"
	"moat/internal/store"
)

// snapshotter is a store that can copy itself consistently as a bbolt
// file: the embedded store copies its file, an etcd cluster writes its
// keys, read at one revision, in the same format.
type snapshotter interface {
	Snapshot(ctx context.Context, w io.Writer) (int64, error)
}

// The data directory's parts a backup holds, by name inside the backup.
const (
	backupStore   = "store.db"
	backupFlows   = "flows"
	backupAudit   = "audit"
	backupKeyring = seal.KeyringFile
)

// auditSkip are the audit directory's files a backup leaves out: locks,
// recreated on open, and an interrupted checkpoint write.
var auditSkip = map[string]bool{"lock": true, "writer.lock": true, "checkpoint.tmp~": true}

// handleBackup writes a consistent, encrypted backup of the server's state
// (store, flow partitions, audit log, keyring) under the KEK and streams
// it. The parts are copied into a private directory first (the store in
// one read transaction, each flow partition with VACUUM INTO, the audit
// files under the log's reader lock, the keyring last so it holds every
// key the copies use), then sealed with backup.Write.
func (s *Server) handleBackup(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	k, err := s.keys()
	if err != nil {
		return nil, "", err
	}
	if k.cfg.DataDir == "" {
		return nil, "", errorf(http.StatusNotImplemented, "backups need the server's data directory")
	}
	snap, ok := k.cfg.Store.(snapshotter)
	if !ok {
		return nil, "", errorf(http.StatusNotImplemented, "this store backend cannot make a snapshot")
	}
	k.backup.Lock()
	defer k.backup.Unlock()
	tmp, err := os.MkdirTemp(k.cfg.DataDir, ".backup-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(tmp)
	parts := filepath.Join(tmp, "parts")
	if err := os.Mkdir(parts, 0o700); err != nil {
		return nil, "", err
	}
	// The audit log before the store: its entries carry the store's
	// revision when they were written, and a restored server refuses a
	// store older than its log (checkStoreNotOlder).
	if err := copyAudit(filepath.Join(k.cfg.DataDir, audit.DirName), filepath.Join(parts, backupAudit)); err != nil {
		return nil, "", err
	}
	if err := copyStore(ctx, snap, filepath.Join(parts, backupStore)); err != nil {
		return nil, "", err
	}
	if err := copyFlows(ctx, filepath.Join(k.cfg.DataDir, backupFlows), filepath.Join(parts, backupFlows)); err != nil {
		return nil, "", err
	}
	if _, ok := k.cfg.Store.(*store.Etcd); ok {
		copied, gone, err := s.copyMemberFlows(ctx, parts)
		if err != nil {
			return nil, "", err
		}
		c.note("servers", strings.Join(append([]string{s.cfg.Name}, copied...), ","))
		if len(gone) > 0 {
			c.note("servers_missing", strings.Join(gone, ","))
		}
	}
	// The keyring last, as its backend holds it now (a file, or a
	// cluster's keyring in etcd): it holds every key the copies use.
	if err := os.WriteFile(filepath.Join(parts, backupKeyring), k.cfg.Keyring.Wrapped(), 0o600); err != nil {
		return nil, "", err
	}
	var items []backup.Item
	ents, err := os.ReadDir(parts)
	if err != nil {
		return nil, "", err
	}
	for _, e := range ents {
		items = append(items, backup.Item{Name: e.Name(), Path: filepath.Join(parts, e.Name())})
	}
	out, err := os.OpenFile(filepath.Join(tmp, "backup"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, "", err
	}
	// The roots name the cluster: two of one trust domain differ in them.
	var roots []string
	for _, r := range s.CA().Bundle().X509Authorities() {
		roots = append(roots, backup.CAFingerprint(r.Raw))
	}
	m, err := backup.Write(out, backup.Config{KEK: k.currentKEK(), Items: items, Now: s.now, TrustDomain: s.td.String(), CARoots: roots})
	if err == nil {
		_, err = out.Seek(0, io.SeekStart)
	}
	if err != nil {
		out.Close()
		return nil, "", err
	}
	size, err := out.Seek(0, io.SeekEnd)
	if err == nil {
		_, err = out.Seek(0, io.SeekStart)
	}
	if err != nil {
		out.Close()
		return nil, "", err
	}
	c.note("files", strconv.Itoa(len(m.Files)))
	c.note("bytes", strconv.FormatInt(size, 10))
	// The open file outlives the directory removed on return.
	return &backupFile{f: out, size: size}, "backup", nil
}

// backupFile streams a finished backup as the answer.
type backupFile struct {
	f    *os.File
	size int64
}

func (b *backupFile) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer b.f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(b.size, 10))
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, b.f)
}

func copyStore(ctx context.Context, snap snapshotter, dst string) error {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := snap.Snapshot(ctx, f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// copyFlows copies every flow partition with VACUUM INTO (a consistent
// copy of a database that another connection keeps writing) and the
// sealed index key its keyed query columns need.
func copyFlows(ctx context.Context, src, dst string) error {
	ents, err := os.ReadDir(src)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("server: backup: flows: %w", err)
	}
	if err := os.Mkdir(dst, 0o700); err != nil {
		return err
	}
	for _, e := range ents {
		if e.Name() == flowstore.IndexKeyFile {
			if err := copyFile(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
				return fmt.Errorf("server: backup: flow index key: %w", err)
			}
			continue
		}
		if e.IsDir() || !strings.HasPrefix(e.Name(), "flows-") || !strings.HasSuffix(e.Name(), ".db") {
			continue
		}
		if err := vacuumInto(ctx, filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return fmt.Errorf("server: backup: flow partition %q: %w", e.Name(), err)
		}
	}
	return nil
}

func vacuumInto(ctx context.Context, src, dst string) error {
	db, err := sql.Open("sqlite", "file:"+src+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", dst); err != nil {
		return err
	}
	return os.Chmod(dst, 0o600)
}

// copyAudit copies the audit log's files while holding its reader lock,
// which every append takes exclusively: the copy is between two appends.
func copyAudit(src, dst string) error {
	lock, err := os.OpenFile(filepath.Join(src, "lock"), os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat(src); errors.Is(serr, os.ErrNotExist) {
			return nil // a cluster's log lives in the store, and the store's copy holds it
		}
	}
	if err != nil {
		return fmt.Errorf("server: backup: audit log: %w", err)
	}
	defer lock.Close()
	if err := filelock.Flock(lock, filelock.Shared); err != nil {
		return fmt.Errorf("server: backup: audit lock: %w", err)
	}
	defer filelock.Flock(lock, filelock.Unlock)
	ents, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("server: backup: audit log: %w", err)
	}
	if err := os.Mkdir(dst, 0o700); err != nil {
		return err
	}
	for _, e := range ents {
		if e.IsDir() || auditSkip[e.Name()] {
			continue
		}
		if err := copyFile(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return fmt.Errorf("server: backup: audit log: %w", err)
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeNew(dst, in)
}

var (
	_ snapshotter = (*store.Bolt)(nil)
	_ snapshotter = (*store.Etcd)(nil)
)
