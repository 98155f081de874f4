package seal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"
)

// Record is one stored value: its key and its ciphertext.
type Record struct {
	Key   []byte
	Value []byte
}

// Source is the store a re-encryption pass walks: whatever holds records
// sealed by the keyring (the control-plane store, the event database, the
// spool). Keys are ordered bytewise.
type Source interface {
	// Scan returns up to limit records whose keys sort strictly after
	// after (nil: from the first key), in ascending key order. Fewer than
	// limit records means the end was reached.
	Scan(ctx context.Context, after []byte, limit int) ([]Record, error)
	// CompareAndSwap stores newValue under key only if the stored value is
	// still old, atomically, and reports whether it did.
	CompareAndSwap(ctx context.Context, key, old, newValue []byte) (bool, error)
}

// ReencryptConfig configures one re-encryption pass.
type ReencryptConfig struct {
	// Name identifies the pass, and so its progress file in the keyring's
	// directory (reencrypt-<Name>.json). Required: lowercase letters,
	// digits and dashes.
	Name string
	// Source holds the records. Required.
	Source Source
	// AD returns a record's associated data; nil means the record key
	// itself, the convention of every moat writer.
	AD func(key []byte) []byte
	// Batch is how many records are read per Scan and between progress
	// saves; 0 means 256.
	Batch int
	// Progress, if not nil, is called after each batch.
	Progress func(Progress)
}

// Progress is a pass's state; it is persisted after every batch, so a pass
// killed at any point resumes from its last cursor.
type Progress struct {
	Name      string    `json:"name"`
	Target    uint32    `json:"target"` // the primary key records are moved to
	Cursor    []byte    `json:"cursor"` // last key handled; nil before the first
	Started   time.Time `json:"started"`
	Updated   time.Time `json:"updated"`
	Scanned   int64     `json:"scanned"`
	Rewritten int64     `json:"rewritten"`
	Skipped   int64     `json:"skipped"`   // already under Target
	Conflicts int64     `json:"conflicts"` // changed by a writer meanwhile (so written under the primary)
	Done      bool      `json:"done"`
}

var passName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`) })

// ProgressPath is where the progress of pass name is kept.
func (k *Keyring) ProgressPath(name string) string {
	return filepath.Join(k.dir, "reencrypt-"+name+".json")
}

// LoadProgress reads the saved progress of pass name; a pass never run
// gives a zero Progress and no error.
func (k *Keyring) LoadProgress(name string) (Progress, error) {
	if !passName().MatchString(name) {
		return Progress{}, fmt.Errorf("seal: reencrypt: invalid pass name %q", name)
	}
	path := k.ProgressPath(name)
	b, err := os.ReadFile(path)
	if isNotExist(err) {
		return Progress{Name: name}, nil
	}
	if err != nil {
		return Progress{}, fmt.Errorf("seal: reencrypt %q: %w", name, err)
	}
	var p Progress
	if err := json.Unmarshal(b, &p); err != nil || p.Name != name {
		return Progress{}, fmt.Errorf("seal: reencrypt %q: progress file %q is corrupt; delete it to start over", name, path)
	}
	return p, nil
}

// Reencrypt moves every record of cfg.Source onto the primary data key.
// Each record is opened, resealed and written back with a compare-and-swap,
// so a record is at every instant either its old or its new ciphertext and
// always readable; records already under the primary are skipped. The
// cursor is saved after each batch: a pass cancelled, failed or killed
// resumes where it stopped, and one rotated past starts over for the new
// primary. A record that does not open stops the pass with an error naming
// it (fail closed: it is corrupt, or sealed for another record).
func (k *Keyring) Reencrypt(ctx context.Context, cfg ReencryptConfig) (Progress, error) {
	if cfg.Source == nil {
		return Progress{}, errors.New("seal: reencrypt: Source is nil")
	}
	p, err := k.LoadProgress(cfg.Name)
	if err != nil {
		return Progress{}, err
	}
	ad := cfg.AD
	if ad == nil {
		ad = func(key []byte) []byte { return key }
	}
	batch := cfg.Batch
	if batch <= 0 {
		batch = 256
	}
	prim := k.prim.Load()
	if p.Target != prim.primary || p.Started.IsZero() {
		p = Progress{Name: cfg.Name, Target: prim.primary, Started: k.now().UTC()}
	}
	if p.Done {
		return p, nil
	}
	sealer := k.AEAD()
	for {
		if err := ctx.Err(); err != nil {
			return p, fmt.Errorf("seal: reencrypt %q: %w", cfg.Name, err)
		}
		if k.prim.Load().primary != p.Target {
			return p, fmt.Errorf("seal: reencrypt %q: the primary key changed during the pass; run it again", cfg.Name)
		}
		recs, err := cfg.Source.Scan(ctx, p.Cursor, batch)
		if err != nil {
			return p, fmt.Errorf("seal: reencrypt %q: scan after %q: %w", cfg.Name, p.Cursor, err)
		}
		for _, r := range recs {
			if err := ctx.Err(); err != nil {
				return p, fmt.Errorf("seal: reencrypt %q: %w", cfg.Name, err)
			}
			if p.Cursor != nil && bytes.Compare(r.Key, p.Cursor) <= 0 {
				return p, fmt.Errorf("seal: reencrypt %q: source returned key %q not after cursor %q", cfg.Name, r.Key, p.Cursor)
			}
			if err := k.reencryptOne(ctx, sealer, cfg.Source, r, ad(r.Key), p.Target, &p); err != nil {
				return p, fmt.Errorf("seal: reencrypt %q: %w", cfg.Name, err)
			}
			p.Scanned++
			// The cursor is saved only after the batch; a record handled
			// again after a crash is skipped, being under the target.
			p.Cursor = bytes.Clone(r.Key)
		}
		p.Done = len(recs) < batch
		p.Updated = k.now().UTC()
		if err := k.saveProgress(p); err != nil {
			return p, fmt.Errorf("seal: reencrypt %q: saving progress: %w", cfg.Name, err)
		}
		if cfg.Progress != nil {
			cfg.Progress(p)
		}
		if p.Done {
			return p, nil
		}
	}
}

func (k *Keyring) reencryptOne(ctx context.Context, sealer *AEAD, src Source, r Record, ad []byte, target uint32, p *Progress) error {
	if id, err := KeyID(r.Value); err == nil && id == target {
		p.Skipped++
		return nil
	}
	pt, err := sealer.Decrypt(r.Value, ad)
	if err != nil {
		return fmt.Errorf("record %q: %w", r.Key, err)
	}
	ct, err := sealer.Encrypt(pt, ad)
	clear(pt)
	if err != nil {
		return fmt.Errorf("record %q: %w", r.Key, err)
	}
	ok, err := src.CompareAndSwap(ctx, r.Key, r.Value, ct)
	if err != nil {
		return fmt.Errorf("record %q: write: %w", r.Key, err)
	}
	if ok {
		p.Rewritten++
	} else {
		p.Conflicts++
	}
	return nil
}

func (k *Keyring) saveProgress(p Progress) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return WriteFileAtomic(k.ProgressPath(p.Name), b, 0o600)
}

// CountUsage walks src and counts, per data key, the records and bytes
// sealed under it: the usage map Status takes. Values without a key prefix
// are counted under key 0.
func CountUsage(ctx context.Context, src Source, batch int) (map[uint32]Usage, error) {
	if batch <= 0 {
		batch = 256
	}
	out := map[uint32]Usage{}
	var after []byte
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("seal: count usage: %w", err)
		}
		recs, err := src.Scan(ctx, after, batch)
		if err != nil {
			return nil, fmt.Errorf("seal: count usage: %w", err)
		}
		for _, r := range recs {
			id, _ := KeyID(r.Value)
			u := out[id]
			u.Records++
			u.Bytes += int64(len(r.Value))
			out[id] = u
			after = r.Key
		}
		if len(recs) < batch {
			return out, nil
		}
	}
}
