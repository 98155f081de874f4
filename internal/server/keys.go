package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/seal"
	"moat/internal/store"
)

// storePass names the re-encryption pass over the control-plane store.
const storePass = "store"

// StoreSealer is the Sealer the control-plane store is opened with. It
// forwards to the keyring's AEAD and, while a key pass reads the store,
// notes the ciphertext each value is stored as: the Store interface hands
// out plaintext only, and the pass needs the ciphertext to know which data
// key holds each value.
type StoreSealer struct {
	inner store.Sealer
	scan  sync.Mutex // one capture at a time
	mu    sync.Mutex // guards seen
	seen  map[string][]byte
}

// NewStoreSealer wraps inner (normally Keyring.AEAD()).
func NewStoreSealer(inner store.Sealer) *StoreSealer { return &StoreSealer{inner: inner} }

// Encrypt implements store.Sealer.
func (s *StoreSealer) Encrypt(plaintext, associatedData []byte) ([]byte, error) {
	return s.inner.Encrypt(plaintext, associatedData)
}

// Decrypt implements store.Sealer.
func (s *StoreSealer) Decrypt(ciphertext, associatedData []byte) ([]byte, error) {
	pt, err := s.inner.Decrypt(ciphertext, associatedData)
	if err == nil {
		s.mu.Lock()
		if s.seen != nil {
			s.seen[string(associatedData)] = bytes.Clone(ciphertext)
		}
		s.mu.Unlock()
	}
	return pt, err
}

// capture runs fn and returns the ciphertexts opened meanwhile, by key.
func (s *StoreSealer) capture(fn func() error) (map[string][]byte, error) {
	s.scan.Lock()
	defer s.scan.Unlock()
	s.mu.Lock()
	s.seen = map[string][]byte{}
	s.mu.Unlock()
	err := fn()
	s.mu.Lock()
	seen := s.seen
	s.seen = nil
	s.mu.Unlock()
	return seen, err
}

// storeSource is the control-plane store as a seal.Source: values are
// read through List (capturing their ciphertexts) and written back with a
// Txn conditioned on the revision they were read at. The store seals a
// value itself, under the primary key, so writing the plaintext back is
// what moves it onto the primary.
//
// A storeSource serves one walk at a time: CompareAndSwap uses the
// revisions of the last Scan.
type storeSource struct {
	st     store.Store
	sealer *StoreSealer
	mu     sync.Mutex // guards mods
	mods   map[string]int64
}

func newStoreSource(st store.Store, sealer *StoreSealer) *storeSource {
	return &storeSource{st: st, sealer: sealer, mods: map[string]int64{}}
}

// Scan implements seal.Source.
func (s *storeSource) Scan(ctx context.Context, after []byte, limit int) ([]seal.Record, error) {
	var kvs []store.KV
	seen, err := s.sealer.capture(func() error {
		var err error
		kvs, _, err = s.st.List(ctx, "")
		return err
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(kvs, func(i, j int) bool { return kvs[i].Key < kvs[j].Key })
	i := sort.Search(len(kvs), func(i int) bool { return after == nil || kvs[i].Key > string(after) })
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.mods)
	var out []seal.Record
	for ; i < len(kvs) && len(out) < limit; i++ {
		ct, ok := seen[kvs[i].Key]
		if !ok {
			return nil, fmt.Errorf("server: key pass: no ciphertext seen for %q (is the store opened with the StoreSealer?)", kvs[i].Key)
		}
		s.mods[kvs[i].Key] = kvs[i].ModRevision
		out = append(out, seal.Record{Key: []byte(kvs[i].Key), Value: ct})
	}
	return out, nil
}

// CompareAndSwap implements seal.Source.
func (s *storeSource) CompareAndSwap(ctx context.Context, key, old, newValue []byte) (bool, error) {
	s.mu.Lock()
	mod, ok := s.mods[string(key)]
	s.mu.Unlock()
	if !ok {
		return false, nil
	}
	pt, err := s.sealer.inner.Decrypt(newValue, key)
	if err != nil {
		return false, err
	}
	_, err = s.st.Txn(ctx, []store.Cond{{Key: string(key), ModRevision: mod}}, []store.Op{store.Put(string(key), pt)})
	clear(pt)
	if errors.Is(err, store.ErrConflict) {
		return false, nil
	}
	return err == nil, err
}

// KeysConfig configures the key manager.
type KeysConfig struct {
	// Keyring holds the data keys; required.
	Keyring *seal.Keyring
	// KEK is the key-encryption key the keyring is under; required for
	// backups and re-wraps.
	KEK seal.KEK
	// KEKFile is the server's key file when its KEK is one, "" otherwise:
	// a re-wrap without a new source replaces this file.
	KEKFile string
	// Store and StoreSealer: the control-plane store and the sealer it was
	// opened with (for the re-encryption pass and usage counts); required.
	Store       store.Store
	StoreSealer *StoreSealer
	// Audit records scheduled rotations and finished passes; required.
	Audit audit.Recorder
	// AuditLog, when set, is counted in key status: its sealed entries
	// stay under the key that wrote them (the log's hashes cover them).
	AuditLog interface {
		Size() int64
		Stored(i int64) ([]byte, error)
	}
	// KeyringChanges, when set, watches a keyring shared by a cluster's
	// servers: it calls its function after every change, until ctx ends.
	// Each change is loaded at once, so a rotation made through any server
	// holds on all of them.
	KeyringChanges func(ctx context.Context, changed func())
	// DataDir is the server's data directory, for backups; "" refuses them.
	DataDir string
	// Every is the scheduled rotation period; 0 means none by age (a
	// primary is still rotated once it has sealed seal's bound of records).
	Every time.Duration
	// Check is how often the schedule is looked at; 0 means one hour.
	Check time.Duration
	// Getenv reads server-side variables named by a re-wrap; nil means
	// os.Getenv.
	Getenv func(string) string
	// After is the scheduler's timer; nil means time.After.
	After func(time.Duration) <-chan time.Time
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Keys runs key rotation, the re-encryption pass and backups.
type Keys struct {
	cfg    KeysConfig
	src    *storeSource
	kick   chan struct{}
	backup sync.Mutex // one backup at a time

	mu      sync.Mutex // guards kek, reseal, running, passErr, last
	kek     seal.KEK
	reseal  func(context.Context) error
	running bool
	passErr error
	last    seal.Progress
}

// NewKeys checks cfg and returns a key manager to Run beside the server.
func NewKeys(cfg KeysConfig) (*Keys, error) {
	if cfg.Keyring == nil || cfg.Store == nil || cfg.StoreSealer == nil || cfg.Audit == nil {
		return nil, errors.New("server: keys: Keyring, Store, StoreSealer and Audit are required")
	}
	if cfg.Every < 0 {
		return nil, fmt.Errorf("server: keys: rotation period %s is negative", cfg.Every)
	}
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	k := &Keys{cfg: cfg, src: newStoreSource(cfg.Store, cfg.StoreSealer), kick: make(chan struct{}, 1), kek: cfg.KEK}
	if p, err := cfg.Keyring.LoadProgress(storePass); err == nil {
		k.last = p
	}
	return k, nil
}

// Run resumes an unfinished re-encryption pass, runs the rotation
// schedule, and runs a pass after every rotation, until ctx ends.
func (k *Keys) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	// The schedule runs with no period too: a primary that has sealed
	// seal's bound of records is rotated whatever key_rotation says.
	sch := &seal.Scheduler{Keyring: k.cfg.Keyring, Every: k.cfg.Every, Check: k.cfg.Check, After: k.cfg.After,
		OnRotate: func(ctx context.Context, ev seal.Event) error {
			if err := k.record(ctx, ev, "scheduled"); err != nil {
				return err
			}
			k.Reencrypt()
			return nil
		}}
	g.Go(func() error { return sch.Run(ctx) })
	if watch := k.cfg.KeyringChanges; watch != nil {
		g.Go(func() error {
			watch(ctx, k.reload)
			return nil
		})
	}
	g.Go(func() error { return k.passes(ctx) })
	return g.Wait()
}

// reload loads the shared keyring after another server changed it.
func (k *Keys) reload() {
	changed, err := k.cfg.Keyring.Reload()
	switch {
	case errors.Is(err, store.ErrUnavailable):
		k.cfg.Logger.Warn("cannot read the cluster keyring now; this server keeps the keys it holds", "err", err)
	case err != nil:
		k.cfg.Logger.Error("the cluster keyring does not load; this server keeps the keys it holds", "err", err)
	case changed:
		k.cfg.Logger.Info("loaded the cluster keyring changed by another server", "primary", k.cfg.Keyring.Primary())
		// Every server moves the values it can reach onto the new primary
		// (each write conditional on what it read), so the pass completes
		// even if the server that rotated stops halfway.
		if p, err := k.cfg.Keyring.LoadProgress(storePass); err != nil || !p.Done || p.Target != k.cfg.Keyring.Primary() {
			k.Reencrypt()
		}
	}
}

// Reencrypt asks for a re-encryption pass (coalesced with a pending one).
func (k *Keys) Reencrypt() {
	select {
	case k.kick <- struct{}{}:
	default:
	}
}

func (k *Keys) passes(ctx context.Context) error {
	p, err := k.cfg.Keyring.LoadProgress(storePass)
	if err != nil || !p.Done || p.Target != k.cfg.Keyring.Primary() {
		k.Reencrypt()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-k.kick:
		}
		k.mu.Lock()
		k.running, k.passErr = true, nil
		reseal := k.reseal
		k.mu.Unlock()
		if reseal != nil {
			if err := reseal(ctx); err != nil {
				k.mu.Lock()
				k.running, k.passErr = false, err
				k.mu.Unlock()
				k.cfg.Logger.Error("resealing the CA keys failed", "err", err)
				continue
			}
		}
		p, err := k.cfg.Keyring.Reencrypt(ctx, seal.ReencryptConfig{
			Name: storePass, Source: k.src,
			Progress: func(p seal.Progress) {
				k.mu.Lock()
				k.last = p
				k.mu.Unlock()
			},
		})
		k.mu.Lock()
		k.running, k.passErr, k.last = false, err, p
		k.mu.Unlock()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			k.cfg.Logger.Error("re-encryption pass failed", "err", err)
			continue
		}
		k.cfg.Logger.Info("re-encryption pass done", "target", p.Target, "rewritten", p.Rewritten, "skipped", p.Skipped, "conflicts", p.Conflicts)
		if p.Rewritten > 0 || p.Conflicts > 0 {
			_ = k.cfg.Audit.Record(context.WithoutCancel(ctx), audit.Entry{
				Time: k.cfg.Now().UTC(), Actor: "server", Action: "keys.reencrypt", Target: storePass, Result: "ok",
				Detail: map[string]string{
					"key": strconv.FormatUint(uint64(p.Target), 10), "rewritten": strconv.FormatInt(p.Rewritten, 10),
					"conflicts": strconv.FormatInt(p.Conflicts, 10),
				},
			})
		}
	}
}

// record appends a key lifecycle event made without an admin call.
func (k *Keys) record(ctx context.Context, ev seal.Event, why string) error {
	detail := map[string]string{"reason": why}
	for key, v := range ev.Detail {
		detail[key] = v
	}
	return k.cfg.Audit.Record(context.WithoutCancel(ctx), audit.Entry{
		Time: ev.Time, Actor: "server", Action: ev.Action, Target: filepath.Base(ev.Target), Result: "ok", Detail: detail,
	})
}

// currentKEK is the KEK the keyring is under now.
func (k *Keys) currentKEK() seal.KEK {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.kek
}

// loadKEK finds the new KEK of a re-wrap on the server's side.
func (k *Keys) loadKEK(src *api.KEKSource) (seal.KEK, string, error) {
	switch src.Source {
	case "", "file":
		path := src.File
		if path == "" {
			if k.cfg.KEKFile == "" {
				return nil, "", errorf(http.StatusBadRequest, "the server's KEK is not a key file: name the new key file")
			}
			// A fresh key beside the old one; it replaces the old file once
			// the keyring is re-wrapped under it.
			path = seal.PendingKeyFile(k.cfg.KEKFile)
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, "", err
			}
			kek, err := seal.GenerateKeyFile(path, nil)
			return kek, path, err
		}
		kek, err := seal.OpenKeyFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			kek, err = seal.GenerateKeyFile(path, nil)
		}
		if err != nil {
			return nil, "", errorf(http.StatusBadRequest, "new KEK file %q: %v", path, err)
		}
		return kek, "", nil
	case "env":
		kek, err := seal.EnvKEK(src.Env, func(n string) (string, bool) { v := k.cfg.Getenv(n); return v, v != "" })
		if err != nil {
			return nil, "", errorf(http.StatusBadRequest, "new KEK: %v", err)
		}
		return kek, "", nil
	case "passphrase":
		p := k.cfg.Getenv(src.Env)
		if src.Env == "" || p == "" {
			return nil, "", errorf(http.StatusBadRequest, "new KEK: the passphrase variable %q is not set on the server", src.Env)
		}
		kek, err := seal.NewPassphraseKEK([]byte(p), seal.Argon2Params{}, nil)
		if err != nil {
			return nil, "", errorf(http.StatusBadRequest, "new KEK: %v", err)
		}
		return kek, "", nil
	}
	return nil, "", errorf(http.StatusBadRequest, "new KEK source %q: want file, env or passphrase", src.Source)
}

func (s *Server) keyRoutes(t *routeTable) {
	if k := s.cfg.Keys; k != nil {
		k.mu.Lock()
		k.reseal = s.resealCA
		k.mu.Unlock()
	}
	admin := t.admin
	admin("POST", api.PathKeysRotate, api.RoleAdmin, "keys.rotate", s.handleKeysRotate)
	admin("GET", api.PathKeys, api.RoleViewer, "keys.status", s.handleKeysStatus)
	admin("POST", api.PathBackup, api.RoleAdmin, "backup.create", s.handleBackup)
}

// resealCA stores the CA state again: its private keys are sealed inside
// the store value, so re-putting the value alone would leave them under
// the old data key.
func (s *Server) resealCA(ctx context.Context) error {
	s.caMu.Lock()
	defer s.caMu.Unlock()
	kv, err := s.st.Get(ctx, keyCA)
	if err != nil {
		return fmt.Errorf("server: reseal CA: %w", err)
	}
	b, err := s.ca.Marshal(s.cfg.Sealer)
	if err != nil {
		return fmt.Errorf("server: reseal CA: %w", err)
	}
	if _, err := s.st.Txn(ctx, []store.Cond{{Key: keyCA, ModRevision: kv.ModRevision}}, []store.Op{store.Put(keyCA, b)}); err != nil {
		return fmt.Errorf("server: reseal CA: %w", err)
	}
	return nil
}

func (s *Server) keys() (*Keys, error) {
	if s.cfg.Keys == nil {
		return nil, errorf(http.StatusNotImplemented, "this server has no key manager")
	}
	return s.cfg.Keys, nil
}

func (s *Server) handleKeysRotate(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	k, err := s.keys()
	if err != nil {
		return nil, "", err
	}
	var req api.KeyRotateRequest
	if err := decode(r, &req); err != nil {
		return nil, "", err
	}
	kr := k.cfg.Keyring
	if req.KEK == nil {
		ev, err := kr.Rotate()
		if err != nil {
			return nil, "", err
		}
		for key, v := range ev.Detail {
			c.note(key, v)
		}
		k.Reencrypt()
		st := kr.Status(nil)
		old, _ := strconv.ParseUint(ev.Detail["old_primary"], 10, 32)
		return api.KeyRotateResponse{Action: ev.Action, OldPrimary: uint32(old), NewPrimary: st.Primary, Keys: len(st.Keys),
			Note: "re-encryption of stored values started; see moat keys status"}, "keyring", nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	kek, pending, err := k.loadKEK(req.KEK)
	if err != nil {
		return nil, "", err
	}
	ev, err := kr.RewrapKEK(kek)
	if err != nil {
		if pending != "" {
			os.Remove(pending)
		}
		return nil, "", err
	}
	k.kek = kek
	note := "restart the server with the new KEK source"
	if pending != "" {
		if err := os.Rename(pending, k.cfg.KEKFile); err != nil {
			return nil, "", fmt.Errorf("server: the keyring is under the key in %q but it could not replace %q: %w", pending, k.cfg.KEKFile, err)
		}
		note = fmt.Sprintf("the key file %s now holds the new KEK", k.cfg.KEKFile)
	}
	note += "; backups made before this rotation open only under the old KEK"
	if k.cfg.KeyringChanges != nil {
		// The keyring is the cluster's: every other server still holds the
		// old KEK, keeps the keys it loaded, and cannot load a later change.
		note += "; the keyring is the cluster's: give every other server the new KEK and restart it before the next key rotation"
	}
	c.note("kek_source", req.KEK.Source)
	for key, v := range ev.Detail {
		c.note(key, v)
	}
	st := kr.Status(nil)
	return api.KeyRotateResponse{Action: ev.Action, NewPrimary: st.Primary, Keys: len(st.Keys), Note: note}, "keyring", nil
}

func (s *Server) handleKeysStatus(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	k, err := s.keys()
	if err != nil {
		return nil, "", err
	}
	// A source of its own: the pass's source remembers what it last read.
	usage, err := seal.CountUsage(ctx, newStoreSource(k.cfg.Store, k.cfg.StoreSealer), 1<<20)
	if err != nil {
		return nil, "", err
	}
	byPart := map[uint32]map[string]int64{}
	for id, u := range usage {
		byPart[id] = map[string]int64{"store": u.Records}
	}
	scope := "control-plane store values"
	if l := k.cfg.AuditLog; l != nil {
		scope += " and audit entries"
		for i := range l.Size() {
			if err := ctx.Err(); err != nil {
				return nil, "", err
			}
			b, err := l.Stored(i)
			if err != nil {
				return nil, "", err
			}
			if !audit.IsSealed(b) {
				continue
			}
			id, _ := seal.KeyID(b[1:])
			u := usage[id]
			u.Records++
			u.Bytes += int64(len(b))
			usage[id] = u
			if byPart[id] == nil {
				byPart[id] = map[string]int64{}
			}
			byPart[id]["audit"]++
		}
	}
	st := k.cfg.Keyring.Status(usage)
	out := api.KeyStatus{Primary: st.Primary, Scope: scope, Schedule: k.cfg.Every,
		Encryptions: st.Encryptions, MaxEncryptions: st.MaxEncryptions}
	for _, ks := range st.Keys {
		out.Keys = append(out.Keys, api.KeyInfo{ID: ks.ID, Created: ks.Created, Age: ks.Age, State: ks.State,
			Records: ks.Usage.Records, Bytes: ks.Usage.Bytes, ByPart: byPart[ks.ID]})
	}
	k.mu.Lock()
	p := k.last
	out.Reencrypt = api.ReencryptStatus{Target: p.Target, Scanned: p.Scanned, Rewritten: p.Rewritten, Skipped: p.Skipped,
		Conflicts: p.Conflicts, Done: p.Done, Running: k.running, Updated: p.Updated}
	if k.passErr != nil {
		out.Reencrypt.Error = k.passErr.Error()
	}
	k.mu.Unlock()
	return out, "keyring", nil
}
