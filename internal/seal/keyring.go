package seal

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// KeyringFile is the name of the keyring inside Config.Dir.
const KeyringFile = "keyring.json"

const keyringFormat = "moat-keyring-v1"

// Config configures Open.
type Config struct {
	// Dir is the data directory holding the keyring file (and the progress
	// files of re-encryption passes). Required. Created 0700 if missing.
	Dir string
	// KEK wraps the data keys. Required.
	KEK KEK
	// Now is the clock for key creation times; nil means time.Now.
	Now func() time.Time
	// Logger receives key lifecycle messages; nil discards them.
	Logger *slog.Logger
	// NoCreate makes a missing keyring an error (ErrNoKeyring) instead of
	// creating one. Set it wherever data already exists, so a mistyped
	// directory never silently starts a fresh keyring.
	NoCreate bool
	// Backend holds the wrapped keyring; nil means the file KeyringFile in
	// Dir. A cluster's servers share one Backend (the etcd store's), so a
	// rotation on one is a rotation on all.
	Backend Backend
	// MaxEncryptions is how many records the processes of Dir seal under
	// one primary (as counted in CountFile) before Due says it is time to
	// rotate; 0 means DefaultMaxEncryptions.
	MaxEncryptions uint64
	// Mirror, with a Backend, names a file kept a copy of the wrapped
	// keyring as the backend holds it (rewritten whenever this Keyring
	// loads or writes a change), so tools that read a data directory
	// offline open its data without the backend. Empty means none.
	Mirror string
}

// DefaultMaxEncryptions bounds the records the processes of one data
// directory seal under one data key before the key is due for rotation.
// AES-GCM with random 96-bit nonces stays within NIST SP 800-38D's bound
// on the chance of a repeated nonce for 2^32 encryptions under a key; a
// quarter of that leaves room for the other servers of a cluster, each
// counting its own, and for what a process sealed after the count was
// last saved (CountFile) and before it crashed.
const DefaultMaxEncryptions = 1 << 30

// DefaultRotation is the age at which a primary data key is rotated
// unless configured otherwise (a server's key_rotation; an agent's always),
// as the key services of the large clouds offer. Whatever the period, a
// primary is rotated once a process has sealed DefaultMaxEncryptions
// records under it (Keyring.Due).
const DefaultRotation = 90 * 24 * time.Hour

// KeyMeta is what the keyring records about a data key beside Tink's
// keyset. It is authenticated: it is the associated data of the wrapped
// keyset, so editing it makes the keyring fail to open.
type KeyMeta struct {
	ID      uint32    `json:"id"`
	Created time.Time `json:"created"`
}

type keyringFileV1 struct {
	Format string          `json:"format"`
	Keys   json.RawMessage `json:"keys"`   // []KeyMeta, authenticated
	Keyset string          `json:"keyset"` // base64 Tink EncryptedKeyset
	// Sum is the hex SHA-256 of Format, Keys and Keyset. It tells damage
	// (a flipped byte) from a wrong KEK, which the wrapping alone cannot:
	// both fail to unwrap. Files written before it existed have none.
	Sum string `json:"sum,omitempty"`
}

// Keyring holds the data keys (a Tink AES-256-GCM keyset) wrapped by a KEK
// in one file. It is safe for concurrent use.
type Keyring struct {
	backend Backend
	mirror  string
	dir     string
	maxEnc  uint64
	now     func() time.Time
	log     *slog.Logger

	mu   sync.Mutex // guards kek, keys, meta, disk and writes of the backend
	kek  KEK
	keys *keyset // never changed in place: a change installs a new one
	meta []KeyMeta
	disk []byte // the backend's content as last read or written by this Keyring

	prim       atomic.Pointer[primitive] // current primitive, swapped on rotation
	lastReload atomic.Int64              // unix nanoseconds of the last reload for an unknown key
}

type primitive struct {
	aead    *keyset
	primary uint32
	ids     map[uint32]bool // every key in the keyset
	// sealed counts what this process sealed under primary; a reload that
	// keeps the primary keeps the count.
	sealed *atomic.Uint64
}

// Open loads the keyring in cfg.Dir, or creates it with one data key when
// there is none (unless cfg.NoCreate). A KEK that does not open an existing
// keyring is refused with ErrWrongKEK and nothing on disk changes.
func Open(cfg Config) (*Keyring, error) {
	if cfg.Dir == "" {
		return nil, errors.New("seal: Config.Dir is empty")
	}
	if cfg.KEK == nil {
		return nil, errors.New("seal: Config.KEK is nil")
	}
	k := &Keyring{
		backend: cfg.Backend,
		mirror:  cfg.Mirror,
		dir:     cfg.Dir,
		maxEnc:  cfg.MaxEncryptions,
		now:     cfg.Now,
		log:     cfg.Logger,
		kek:     cfg.KEK,
	}
	if k.backend == nil {
		k.backend = FileBackend(filepath.Join(cfg.Dir, KeyringFile))
	}
	if k.now == nil {
		k.now = time.Now
	}
	if k.maxEnc == 0 {
		k.maxEnc = DefaultMaxEncryptions
	}
	if k.log == nil {
		k.log = slog.New(slog.DiscardHandler)
	}
	err := k.load()
	switch {
	case err == nil:
		k.loadCount()
		return k, nil
	case !isNotExist(err):
		return nil, err
	case cfg.NoCreate:
		return nil, fmt.Errorf("seal: keyring %s: %w", k.backend.Name(), ErrNoKeyring)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	h, err := newKeyset()
	if err != nil {
		return nil, fmt.Errorf("seal: new keyset: %w", err)
	}
	meta := []KeyMeta{{ID: h.primary, Created: k.now().UTC()}}
	err = k.persistLocked(h, meta, cfg.KEK)
	if errors.Is(err, ErrKeyringChanged) {
		// Another process created one first: use it.
		if err := k.load(); err != nil {
			return nil, err
		}
		k.loadCount()
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("seal: keyring %s: %w", k.backend.Name(), err)
	}
	if err := k.install(h, meta); err != nil {
		return nil, fmt.Errorf("seal: keyring %s: %w", k.backend.Name(), err)
	}
	k.log.Info("seal: created keyring", "path", k.backend.Name(), "primary", h.primary)
	return k, nil
}

// load reads, unwraps and installs the keyring file. A missing file is
// returned as is (fs.ErrNotExist) for Open to create one.
func (k *Keyring) load() error {
	data, err := k.backend.Load()
	if isNotExist(err) {
		return err
	}
	if err != nil {
		return fmt.Errorf("seal: keyring %s: %w", k.backend.Name(), err)
	}
	h, meta, err := decodeKeyring(data, k.kek)
	if err != nil {
		return fmt.Errorf("seal: keyring %s: %w", k.backend.Name(), err)
	}
	if err := k.install(h, meta); err != nil {
		return fmt.Errorf("seal: keyring %s: %w", k.backend.Name(), err)
	}
	k.disk = data
	k.writeMirror()
	return nil
}

// writeMirror refreshes the mirror file from k.disk. A mirror that cannot
// be written is logged, not fatal: the backend stays the keyring.
func (k *Keyring) writeMirror() {
	if k.mirror == "" {
		return
	}
	if cur, err := os.ReadFile(k.mirror); err == nil && bytes.Equal(cur, k.disk) {
		return
	}
	if err := WriteFileAtomic(k.mirror, k.disk, 0o600); err != nil {
		k.log.Warn("seal: the keyring's local copy was not refreshed", "path", k.mirror, "err", err)
	}
}

// Reload re-reads the keyring from its backend, to pick up a rotation made
// by another process or, on a cluster, by another server. The KEK is the
// one this Keyring holds; on error the keyring in memory is unchanged. It
// reports whether the stored keyring differed from the one in memory.
func (k *Keyring) Reload() (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	before := k.disk
	if err := k.load(); err != nil {
		return false, err
	}
	return !bytes.Equal(before, k.disk), nil
}

// Wrapped returns the keyring as its backend holds it (wrapped by the
// KEK), for backups.
func (k *Keyring) Wrapped() []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	return bytes.Clone(k.disk)
}

// decodeKeyring parses and unwraps a keyring file.
func decodeKeyring(data []byte, kek KEK) (*keyset, []KeyMeta, error) {
	var f keyringFileV1
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, nil, fmt.Errorf("%w: not a keyring file: %v", ErrKeyringDamaged, err)
	}
	if f.Format != keyringFormat {
		return nil, nil, fmt.Errorf("%w: format %q, want %q", ErrKeyringDamaged, f.Format, keyringFormat)
	}
	if f.Sum != "" && f.Sum != keyringSum(f) {
		return nil, nil, fmt.Errorf("%w: its checksum does not match its content", ErrKeyringDamaged)
	}
	var meta []KeyMeta
	if err := json.Unmarshal(f.Keys, &meta); err != nil {
		return nil, nil, fmt.Errorf("%w: keys: %v", ErrKeyringDamaged, err)
	}
	ks, err := base64.StdEncoding.DecodeString(f.Keyset)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: keyset is not base64", ErrKeyringDamaged)
	}
	h, err := unwrapKeyset(ks, kek, keyringAD(f.Keys))
	if errors.Is(err, errWrapped) {
		return nil, nil, ErrWrongKEK
	}
	if err != nil {
		return nil, nil, err
	}
	return h, meta, nil
}

// ListedKeyIDs returns the IDs of the data keys a keyring file lists,
// read without its KEK. They are not authenticated until the keyring is
// opened: enough to tell a copy of a keyring re-wrapped under another KEK
// from another keyring, never to trust a key.
func ListedKeyIDs(data []byte) ([]uint32, error) {
	var f keyringFileV1
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%w: not a keyring file: %v", ErrKeyringDamaged, err)
	}
	var meta []KeyMeta
	if err := json.Unmarshal(f.Keys, &meta); err != nil {
		return nil, fmt.Errorf("%w: keys: %v", ErrKeyringDamaged, err)
	}
	ids := make([]uint32, len(meta))
	for i, m := range meta {
		ids[i] = m.ID
	}
	return ids, nil
}

// keyringAD binds the wrapped keyset to the format and the key metadata.
func keyringAD(keys []byte) []byte {
	return append([]byte(keyringFormat+"\x00"), keys...)
}

// encodeKeyring wraps h under kek with meta as associated data.
func encodeKeyring(h *keyset, meta []KeyMeta, kek KEK) ([]byte, error) {
	keys, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	wrapped, err := h.wrap(kek, keyringAD(keys))
	if err != nil {
		return nil, fmt.Errorf("wrapping keyset: %w", err)
	}
	f := keyringFileV1{
		Format: keyringFormat,
		Keys:   keys,
		Keyset: base64.StdEncoding.EncodeToString(wrapped),
	}
	f.Sum = keyringSum(f)
	return json.Marshal(f)
}

// keyringSum is the checksum a keyring file carries over its content.
func keyringSum(f keyringFileV1) string {
	h := sha256.New()
	h.Write(RecordAD(f.Format, string(f.Keys), f.Keyset))
	return hex.EncodeToString(h.Sum(nil))
}

// persist writes the keyring wrapped under kek. It refuses
// (ErrKeyringChanged) when the backend no longer holds what this Keyring
// last read or wrote: another process or server changed it, and writing
// would drop its keys.
func (k *Keyring) persist(h *keyset, meta []KeyMeta, kek KEK) error {
	return k.persistLocked(h, meta, kek)
}

// persistLocked writes the keyring, after checking that kek opens what
// was written (wrap, then unwrap what was wrapped), if the backend still
// holds k.disk (nothing, for a keyring being created).
func (k *Keyring) persistLocked(h *keyset, meta []KeyMeta, kek KEK) error {
	data, err := encodeKeyring(h, meta, kek)
	if err != nil {
		return err
	}
	if _, _, err := decodeKeyring(data, kek); err != nil {
		return fmt.Errorf("the KEK does not open what it wrapped: %w", err)
	}
	if err := k.backend.Replace(k.disk, data); err != nil {
		return err
	}
	k.disk = data
	k.writeMirror()
	return nil
}

// install makes h the keyring's current keyset.
func (k *Keyring) install(h *keyset, meta []KeyMeta) error {
	if h.find(h.primary) < 0 {
		return errors.New("keyset: no primary key")
	}
	// Every key in the keyset has metadata; keys missing from it (a file
	// from an older writer) are dated zero rather than refused.
	ids := make(map[uint32]bool, len(h.keys))
	for _, e := range h.keys {
		if !slices.ContainsFunc(meta, func(m KeyMeta) bool { return m.ID == e.id }) {
			meta = append(meta, KeyMeta{ID: e.id})
		}
		ids[e.id] = true
	}
	k.keys, k.meta = h, meta
	sealed := new(atomic.Uint64)
	if old := k.prim.Load(); old != nil && old.primary == h.primary {
		sealed = old.sealed
	}
	k.prim.Store(&primitive{aead: h, primary: h.primary, ids: ids, sealed: sealed})
	return nil
}

// Path names where the keyring lives: its file, or its place in a shared
// backend.
func (k *Keyring) Path() string { return k.backend.Name() }

// Primary is the ID of the data key that new ciphertexts use.
func (k *Keyring) Primary() uint32 { return k.prim.Load().primary }

// Event describes a key lifecycle change for the caller to append to the
// audit log; its fields map one to one onto audit.Entry's.
type Event struct {
	Time   time.Time
	Action string // "keys.rotate", "keys.rewrap", "keys.disable"
	Target string // the keyring file
	Detail map[string]string
}

// Rotate adds a new data key and makes it the primary: new ciphertexts use
// it, old ones stay readable. The change is durable before Rotate returns.
func (k *Keyring) Rotate() (Event, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	old := k.prim.Load().primary
	h := k.keys.clone()
	id, err := h.add()
	if err != nil {
		return Event{}, fmt.Errorf("seal: rotate: %w", err)
	}
	h.primary = id
	now := k.now().UTC()
	meta := append(slices.Clone(k.meta), KeyMeta{ID: id, Created: now})
	if err := k.persist(h, meta, k.kek); err != nil {
		return Event{}, fmt.Errorf("seal: rotate: keyring %s: %w", k.backend.Name(), err)
	}
	if err := k.install(h, meta); err != nil {
		return Event{}, fmt.Errorf("seal: rotate: %w", err)
	}
	k.log.Info("seal: rotated data key", "path", k.backend.Name(), "old", old, "new", id)
	return Event{Time: now, Action: "keys.rotate", Target: k.backend.Name(), Detail: map[string]string{
		"old_primary": strconv.FormatUint(uint64(old), 10),
		"new_primary": strconv.FormatUint(uint64(id), 10),
		"keys":        strconv.Itoa(len(meta)),
	}}, nil
}

// RewrapKEK re-wraps the data keys under newKEK; data ciphertexts do not
// change. The new file is checked to open under newKEK before it replaces
// the old one, so a failure leaves the keyring under the old KEK.
func (k *Keyring) RewrapKEK(newKEK KEK) (Event, error) {
	if newKEK == nil {
		return Event{}, errors.New("seal: rewrap: new KEK is nil")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.persist(k.keys, k.meta, newKEK); err != nil {
		return Event{}, fmt.Errorf("seal: rewrap: keyring %s: %w", k.backend.Name(), err)
	}
	k.kek = newKEK
	now := k.now().UTC()
	k.log.Info("seal: re-wrapped keyring under a new KEK", "path", k.backend.Name())
	return Event{Time: now, Action: "keys.rewrap", Target: k.backend.Name(), Detail: map[string]string{
		"keys": strconv.Itoa(len(k.meta)),
	}}, nil
}

// Disable stops a non-primary data key from opening anything. Do it only
// once a re-encryption pass has moved every record off the key (Status
// with usage counts says so); ciphertexts still under it stop opening.
func (k *Keyring) Disable(id uint32) (Event, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if id == k.prim.Load().primary {
		return Event{}, fmt.Errorf("seal: disable key %d: it is the primary", id)
	}
	h := k.keys.clone()
	if err := h.disable(id); err != nil {
		return Event{}, fmt.Errorf("seal: disable key %d: %w", id, err)
	}
	if err := k.persist(h, k.meta, k.kek); err != nil {
		return Event{}, fmt.Errorf("seal: disable key %d: keyring %s: %w", id, k.backend.Name(), err)
	}
	if err := k.install(h, k.meta); err != nil {
		return Event{}, fmt.Errorf("seal: disable key %d: %w", id, err)
	}
	return Event{Time: k.now().UTC(), Action: "keys.disable", Target: k.backend.Name(), Detail: map[string]string{
		"key": strconv.FormatUint(uint64(id), 10),
	}}, nil
}

// Due reports whether the primary key is due for rotation: the processes
// of this directory have sealed MaxEncryptions records under it
// ("encryptions"), or it is at
// least every old at now ("age"; every <= 0 is never). "" is not due.
func (k *Keyring) Due(now time.Time, every time.Duration) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	p := k.prim.Load()
	if p.sealed.Load() >= k.maxEnc {
		return "encryptions"
	}
	if every <= 0 {
		return ""
	}
	for _, m := range k.meta {
		if m.ID == p.primary {
			if now.Before(m.Created.Add(every)) {
				return ""
			}
			return "age"
		}
	}
	return "age" // a primary without a creation time is of unknown age
}

// RotateIfDue rotates when Due(now, every) and reports whether it did; the
// Event's "reason" is Due's.
// The servers of a cluster share one keyring and find its primary due
// together: the first one's rotation changes the keyring under the
// others, whose writes are then refused (ErrKeyringChanged). Such a
// server loads the keyring and rotates only if its new primary is due
// too, so one rotation is made, not one for each server.
func (k *Keyring) RotateIfDue(every time.Duration) (Event, bool, error) {
	for range 2 {
		reason := k.Due(k.now(), every)
		if reason == "" {
			return Event{}, false, nil
		}
		ev, err := k.Rotate()
		if errors.Is(err, ErrKeyringChanged) {
			if _, err := k.Reload(); err != nil {
				return Event{}, false, fmt.Errorf("seal: rotate: loading the keyring another server changed: %w", err)
			}
			continue
		}
		if err != nil {
			return Event{}, false, err
		}
		ev.Detail["reason"] = reason
		return ev, true, nil
	}
	return Event{}, false, fmt.Errorf("seal: rotate: keyring %s: %w", k.backend.Name(), ErrKeyringChanged)
}

// KeyID returns the ID of the data key that made ciphertext, read from
// Tink's 5-byte output prefix (0x01 and the big-endian key ID).
func KeyID(ciphertext []byte) (uint32, error) {
	if len(ciphertext) < 5 || ciphertext[0] != 1 {
		return 0, errors.New("seal: not a keyring ciphertext (no key ID prefix)")
	}
	return binary.BigEndian.Uint32(ciphertext[1:5]), nil
}

// Usage is how much stored data one key protects.
type Usage struct {
	Records int64
	Bytes   int64
}

// KeyStatus describes one data key.
type KeyStatus struct {
	ID      uint32
	Created time.Time // zero if unknown
	Age     time.Duration
	Primary bool
	State   string // "primary", "enabled" (opens old data), "disabled"
	Usage   Usage  // from the usage map given to Status
}

// Status is what `moat keys status` shows.
type Status struct {
	Path    string
	Primary uint32
	Keys    []KeyStatus // oldest first
	// Encryptions is what the processes of this directory sealed under
	// the primary (CountFile);
	// MaxEncryptions is where Due says it is time to rotate.
	Encryptions, MaxEncryptions uint64
}

// Status lists the data keys. usage, if not nil, maps key IDs to what each
// protects (see CountUsage); keys absent from it show zero.
func (k *Keyring) Status(usage map[uint32]Usage) Status {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	p := k.prim.Load()
	st := Status{Path: k.backend.Name(), Primary: p.primary, Encryptions: p.sealed.Load(), MaxEncryptions: k.maxEnc}
	created := map[uint32]time.Time{}
	for _, m := range k.meta {
		created[m.ID] = m.Created
	}
	for _, e := range k.keys.keys {
		primary := e.id == k.keys.primary
		ks := KeyStatus{ID: e.id, Created: created[e.id], Primary: primary, Usage: usage[e.id]}
		if !ks.Created.IsZero() {
			ks.Age = now.Sub(ks.Created)
		}
		switch {
		case primary:
			ks.State = "primary"
		case e.status == statusEnabled:
			ks.State = "enabled"
		default:
			ks.State = "disabled"
		}
		st.Keys = append(st.Keys, ks)
	}
	slices.SortStableFunc(st.Keys, func(a, b KeyStatus) int { return a.Created.Compare(b.Created) })
	return st
}

// AEAD returns the primitive other packages hold to seal records. It
// follows rotation: Encrypt always uses the current primary.
func (k *Keyring) AEAD() *AEAD { return &AEAD{k: k} }

// AEAD seals and opens records under the keyring's data keys. Pass the
// record's identity (its key, or RecordAD of its parts) as associated data:
// a ciphertext then opens only for the record it was made for.
type AEAD struct {
	k *Keyring
}

// Encrypt seals plaintext under the primary data key.
func (a *AEAD) Encrypt(plaintext, associatedData []byte) ([]byte, error) {
	p := a.k.prim.Load()
	p.sealed.Add(1)
	ct, err := p.aead.Encrypt(plaintext, associatedData)
	if err != nil {
		return nil, fmt.Errorf("seal: encrypt: %w", err)
	}
	return ct, nil
}

// Decrypt opens a ciphertext made by Encrypt with the same associated
// data. Any failure is ErrOpen: the caller learns nothing about why.
//
// A ciphertext under a key this keyring does not hold may come from a
// rotation another server of the cluster has just made: the keyring is
// reloaded from its backend (at most once per reloadEvery) and the
// ciphertext tried again, so every server opens new values at once.
func (a *AEAD) Decrypt(ciphertext, associatedData []byte) ([]byte, error) {
	p := a.k.prim.Load()
	pt, err := p.aead.Decrypt(ciphertext, associatedData)
	if err == nil {
		return pt, nil
	}
	if id, kerr := KeyID(ciphertext); kerr == nil && !p.ids[id] && a.k.reloadForUnknownKey() {
		if pt, err := a.k.prim.Load().aead.Decrypt(ciphertext, associatedData); err == nil {
			return pt, nil
		}
	}
	return nil, ErrOpen
}

// reloadEvery bounds reloads for unknown keys, so a stream of forged
// ciphertexts cannot turn into a stream of backend reads.
const reloadEvery = time.Second

// reloadForUnknownKey reloads the keyring unless it did so within
// reloadEvery, and reports whether the keyring changed.
func (k *Keyring) reloadForUnknownKey() bool {
	now := time.Now().UnixNano()
	last := k.lastReload.Load()
	if now-last < int64(reloadEvery) || !k.lastReload.CompareAndSwap(last, now) {
		return false
	}
	changed, err := k.Reload()
	if err != nil {
		k.log.Warn("seal: reloading the keyring for a ciphertext under an unknown key", "path", k.backend.Name(), "err", err)
		return false
	}
	return changed
}

// RecordAD builds unambiguous associated data from the parts naming a
// record (e.g. "store", bucket, key): each part is length-prefixed, so
// ("ab","c") and ("a","bc") differ.
func RecordAD(parts ...string) []byte {
	n := 0
	for _, p := range parts {
		n += 4 + len(p)
	}
	out := make([]byte, 0, n)
	for _, p := range parts {
		out = binary.BigEndian.AppendUint32(out, uint32(len(p)))
		out = append(out, p...)
	}
	return out
}
