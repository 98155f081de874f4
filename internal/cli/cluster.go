package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"moat/internal/seal"
	"moat/internal/server"
	"moat/internal/store"
)

// clusterKeyring is the name of the cluster's keyring among the etcd
// prefix's meta values: the data keys, wrapped by the cluster's KEK, in
// the same format as keyring.json.
const clusterKeyring = "keyring"

// etcdConfig is the etcd store configuration sc names.
func etcdConfig(sc server.StoreFile, sealer store.Sealer) (store.EtcdConfig, error) {
	tc, err := sc.TLSConfig()
	if err != nil {
		return store.EtcdConfig{}, err
	}
	return store.EtcdConfig{Endpoints: sc.Endpoints, Prefix: etcdPrefix(sc), TLS: tc, Sealer: sealer, RequestTimeout: time.Duration(sc.Timeout)}, nil
}

// etcdPrefix is the etcd key prefix sc names.
func etcdPrefix(sc server.StoreFile) string {
	if sc.Prefix == "" {
		return "/moat/"
	}
	return sc.Prefix
}

// etcdKeyring keeps a cluster's keyring in etcd, so that every server of
// the cluster holds the same data keys and sees a rotation at once.
type etcdKeyring struct {
	m *store.EtcdMeta
}

func (b etcdKeyring) Name() string { return b.m.Name(clusterKeyring) }

func (b etcdKeyring) Load() ([]byte, error) {
	v, err := b.m.Get(context.Background(), clusterKeyring)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%s: %w", b.Name(), fs.ErrNotExist)
	}
	return v, err
}

func (b etcdKeyring) Replace(prev, data []byte) error {
	err := b.m.Swap(context.Background(), clusterKeyring, prev, data)
	if errors.Is(err, store.ErrConflict) {
		return seal.ErrKeyringChanged
	}
	return err
}

// serverKeyring is a server's keyring and what holds it open.
type serverKeyring struct {
	kr  *seal.Keyring
	kek seal.KEK
	// meta is the cluster's etcd meta space, nil on the embedded store.
	meta *store.EtcdMeta
}

// changes is the watch of a shared keyring (see server.KeysConfig), nil
// for a keyring file.
func (s *serverKeyring) changes() func(context.Context, func()) {
	if s.meta == nil {
		return nil
	}
	return func(ctx context.Context, fn func()) { s.meta.Watch(ctx, clusterKeyring, fn) }
}

func (s *serverKeyring) Close() error {
	if s.meta != nil {
		return s.meta.Close()
	}
	return nil
}

// openServerKeyring opens the keyring of the control plane c names: the
// file in the data directory on the embedded store, or the cluster's
// keyring in etcd. With create (server init) a missing one is made, and a
// missing key file too.
//
// A server joining a cluster needs only the etcd endpoints and the KEK:
// the keyring (and through it the sealed CA and state) is read from etcd.
// keyring.json in the data directory is then a copy of the cluster's,
// refreshed at every change, for the tools that read the directory
// offline. One left by a server that ran before the keyring moved to etcd
// is published to an etcd that has none; one holding keys the cluster
// lacks stops the server, since data here was sealed with them.
func openServerKeyring(ctx context.Context, e *Env, c *server.File, create bool) (*serverKeyring, error) {
	if c.Store.Backend != "etcd" {
		kr, kek, err := c.KEK.OpenKeyring(c.DataDir, e.Getenv, create)
		if err != nil {
			return nil, err
		}
		return &serverKeyring{kr: kr, kek: kek}, nil
	}
	ec, err := etcdConfig(c.Store, nil)
	if err != nil {
		return nil, err
	}
	meta, err := store.OpenEtcdMeta(ctx, ec)
	if err != nil {
		return nil, err
	}
	sk := &serverKeyring{meta: meta}
	ok := false
	defer func() {
		if !ok {
			meta.Close()
		}
	}()
	backend := etcdKeyring{meta}
	existing, err := backend.Load()
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		existing = nil
	default:
		return nil, err
	}
	// An init that finds a keyring goes on only with the KEK that opens it
	// (the same init, interrupted); otherwise the cluster is another's.
	sk.kek, err = c.KEK.Load(c.DataDir, e.Getenv, create && existing == nil)
	if create && existing != nil && (err != nil || !opens(existing, sk.kek, c.DataDir)) {
		return nil, fmt.Errorf("etcd %v prefix %q already holds a moat control plane: %w", ec.Endpoints, ec.Prefix, errClusterExists)
	}
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, err
	}
	// A KEK rotation that re-wrapped the cluster's keyring (and this
	// directory's copy) and stopped before its key replaced the key file.
	interrupted := func() error {
		if existing == nil {
			return nil
		}
		if ierr := c.KEK.InterruptedRewrap(c.DataDir, func(kek seal.KEK) bool { return opens(existing, kek, c.DataDir) }); ierr != nil {
			return fmt.Errorf("etcd %v prefix %q: %w", ec.Endpoints, ec.Prefix, ierr)
		}
		return nil
	}
	local := filepath.Join(c.DataDir, seal.KeyringFile)
	if err := adoptLocalKeyring(local, backend, sk.kek, existing); err != nil {
		if errors.Is(err, seal.ErrWrongKEK) {
			if ierr := interrupted(); ierr != nil {
				return nil, ierr
			}
		}
		return nil, err
	}
	sk.kr, err = seal.Open(seal.Config{Dir: c.DataDir, KEK: sk.kek, NoCreate: !create, Backend: backend, Mirror: local})
	switch {
	case errors.Is(err, seal.ErrNoKeyring):
		return nil, fmt.Errorf("etcd %v prefix %q holds no moat control plane: run \"moat server init\" with the same store settings first", ec.Endpoints, ec.Prefix)
	case errors.Is(err, seal.ErrWrongKEK) && create:
		return nil, fmt.Errorf("another server initialized etcd %v prefix %q meanwhile: run \"moat server run\" with its key-encryption key", ec.Endpoints, ec.Prefix)
	case errors.Is(err, seal.ErrWrongKEK):
		if ierr := interrupted(); ierr != nil {
			return nil, ierr
		}
		return nil, fmt.Errorf("%w: every server of a cluster needs the cluster's key-encryption key", err)
	case err != nil:
		return nil, err
	}
	ok = true
	return sk, nil
}

// errClusterExists ends an init that finds a cluster in etcd.
var errClusterExists = errors.New("to add this server to it, run \"moat server run\" with the same store settings and the cluster's key-encryption key (no init needed)")

// opens reports whether kek opens the wrapped keyring data.
func opens(data []byte, kek seal.KEK, dir string) bool {
	_, err := seal.Open(seal.Config{Dir: dir, KEK: kek, NoCreate: true, Backend: fixedKeyring(data)})
	return err == nil
}

// fixedKeyring is a read-only keyring backend holding data.
type fixedKeyring []byte

func (f fixedKeyring) Name() string              { return "the cluster keyring" }
func (f fixedKeyring) Load() ([]byte, error)     { return f, nil }
func (f fixedKeyring) Replace(_, _ []byte) error { return seal.ErrKeyringChanged }

// adoptLocalKeyring moves a data directory's keyring.json to the cluster:
// published when etcd holds none, kept (as the local copy the cluster's
// keyring refreshes) when etcd's holds all of its keys, and refused
// otherwise.
func adoptLocalKeyring(local string, backend etcdKeyring, kek seal.KEK, existing []byte) error {
	if _, err := os.Stat(local); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	mine, err := seal.Open(seal.Config{Dir: filepath.Dir(local), KEK: kek, NoCreate: true})
	if errors.Is(err, seal.ErrWrongKEK) && existing != nil {
		return adoptRewrapped(local, backend, kek, err)
	}
	if err != nil {
		return err
	}
	if existing == nil {
		if err := backend.Replace(nil, mine.Wrapped()); err != nil && !errors.Is(err, seal.ErrKeyringChanged) {
			return fmt.Errorf("publishing %s to %s: %w", local, backend.Name(), err)
		}
	}
	cluster, err := seal.Open(seal.Config{Dir: filepath.Dir(local), KEK: kek, NoCreate: true, Backend: backend})
	if err != nil {
		return err
	}
	have := map[uint32]bool{}
	for _, k := range cluster.Status(nil).Keys {
		have[k.ID] = true
	}
	for _, k := range mine.Status(nil).Keys {
		if !have[k.ID] {
			return fmt.Errorf("%s holds data key %d, which the cluster's keyring (%s) lacks: data in this directory was sealed with it; move the directory's audit/ and flows/ aside before joining the cluster, or restore the cluster's keyring", local, k.ID, backend.Name())
		}
	}
	return nil
}

// adoptRewrapped takes a directory's copy of the keyring that kek does not
// open (errWrong) for the cluster's, under an older KEK, when kek opens the
// cluster's keyring and it holds every data key the copy lists: a KEK
// re-wrap made through another server leaves this server's copy so, and
// the server, restarted with the new KEK, opens the cluster's and writes
// its copy again. Otherwise errWrong stands.
func adoptRewrapped(local string, backend etcdKeyring, kek seal.KEK, errWrong error) error {
	cluster, err := seal.Open(seal.Config{Dir: filepath.Dir(local), KEK: kek, NoCreate: true, Backend: backend})
	if err != nil {
		return errWrong
	}
	data, err := os.ReadFile(local)
	if err != nil {
		return err
	}
	listed, err := seal.ListedKeyIDs(data)
	if err != nil {
		return fmt.Errorf("%s: %w", local, err)
	}
	have := map[uint32]bool{}
	for _, k := range cluster.Status(nil).Keys {
		have[k.ID] = true
	}
	for _, id := range listed {
		if !have[id] {
			return fmt.Errorf("%w; it lists data key %d, which the cluster's keyring (%s) lacks: it is no copy of the cluster's keyring under an older KEK", errWrong, id, backend.Name())
		}
	}
	return nil
}

// restoreToEtcd loads a restored data directory's state into the etcd
// prefix of c, all or nothing. The prefix must hold no keyring and no key
// of the store. Every key of store.db goes in, the control plane's meta
// record last so no server takes a half-loaded prefix for a whole one,
// then the keyring; a load cut short is taken out again (loadEtcd).
func restoreToEtcd(ctx context.Context, c *server.File, kr *seal.Keyring) error {
	ec, err := etcdConfig(c.Store, nil)
	if err != nil {
		return err
	}
	meta, err := store.OpenEtcdMeta(ctx, ec)
	if err != nil {
		return err
	}
	defer meta.Close()
	backend := etcdKeyring{meta}
	if err := prefixFree(backend, ec); err != nil {
		return err
	}
	src, err := store.OpenBolt(store.BoltConfig{Dir: c.DataDir, Sealer: kr.AEAD()})
	if err != nil {
		return err
	}
	defer src.Close()
	ec, err = etcdConfig(c.Store, kr.AEAD())
	if err != nil {
		return err
	}
	dst, err := store.OpenEtcd(ctx, ec)
	if err != nil {
		return err
	}
	defer dst.Close()
	switch kvs, _, err := dst.List(ctx, ""); {
	case errors.Is(err, store.ErrCorrupt) || err == nil && len(kvs) > 0:
		return fmt.Errorf("etcd %v prefix %q holds keys but no moat control plane (what a restore or init cut short left?): restore into an empty prefix, or clear it first (etcdctl del --prefix %s)", ec.Endpoints, ec.Prefix, ec.Prefix)
	case err != nil:
		return err
	}
	return loadEtcd(ctx, dst, src, func() error {
		if err := backend.Replace(nil, kr.Wrapped()); err != nil {
			return fmt.Errorf("publishing the keyring to %s: %w", backend.Name(), err)
		}
		return nil
	})
}

// errLeftInEtcd: a load into etcd failed and what it put there could not
// be taken out again.
var errLeftInEtcd = errors.New("part of the state is left in etcd")

// loadEtcd copies every key of src into dst, which holds none, the meta
// record last, then publishes the keyring. On failure it deletes what it
// put into dst, so the prefix holds nothing of the restore; if that fails
// too, the error wraps errLeftInEtcd.
func loadEtcd(ctx context.Context, dst, src store.Store, publish func() error) error {
	err := store.CopyAll(ctx, dst, src, server.MetaKey)
	if err == nil {
		err = publish()
	}
	if err == nil {
		return nil
	}
	// Taken out even when ctx ended (an interrupt), within a bound.
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if uerr := clearStore(uctx, dst); uerr != nil {
		return fmt.Errorf("%w; taking out what was loaded failed too (%v): %w (no control plane, which no server starts on); clear the prefix before restoring again", err, uerr, errLeftInEtcd)
	}
	return fmt.Errorf("%w; what was loaded into etcd was taken out again", err)
}

// clearStore deletes every key of st.
func clearStore(ctx context.Context, st store.Store) error {
	kvs, _, err := st.List(ctx, "")
	if err != nil {
		return err
	}
	for len(kvs) > 0 {
		n := min(len(kvs), store.MaxTxnOps)
		ops := make([]store.Op, 0, n)
		for _, kv := range kvs[:n] {
			ops = append(ops, store.Delete(kv.Key))
		}
		if _, err := st.Txn(ctx, nil, ops); err != nil {
			return err
		}
		kvs = kvs[n:]
	}
	return nil
}

// etcdPrefixFree checks, before anything is restored, that the etcd
// prefix of c holds no control plane.
func etcdPrefixFree(ctx context.Context, c *server.File) error {
	ec, err := etcdConfig(c.Store, nil)
	if err != nil {
		return err
	}
	meta, err := store.OpenEtcdMeta(ctx, ec)
	if err != nil {
		return err
	}
	defer meta.Close()
	return prefixFree(etcdKeyring{meta}, ec)
}

func prefixFree(backend etcdKeyring, ec store.EtcdConfig) error {
	if _, err := backend.Load(); err == nil {
		return fmt.Errorf("etcd %v prefix %q already holds a moat control plane: restore into an empty prefix", ec.Endpoints, ec.Prefix)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
