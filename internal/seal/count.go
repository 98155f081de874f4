package seal

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// CountFile, in Config.Dir, keeps how many records the processes of that
// directory sealed under the primary, so that the bound on encryptions
// (MaxEncryptions) counts across restarts: a process that restarts more
// often than it reaches the bound would otherwise never reach it, however
// much its key sealed. The Scheduler saves it at each check and as it
// stops; what a process sealed after its last save and before a crash is
// not counted (at most one check's worth). It holds no secret: whoever
// may write it could as well replace the keyring.
const CountFile = "keyring.count"

type countFileV1 struct {
	Primary uint32 `json:"primary"`
	Sealed  uint64 `json:"sealed"`
}

// loadCount takes the saved count into the primary's when it is of the
// same primary; a missing or unreadable file counts nothing.
func (k *Keyring) loadCount() {
	b, err := os.ReadFile(filepath.Join(k.dir, CountFile))
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	var c countFileV1
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil {
		k.log.Warn("seal: the saved count of encryptions does not read; counting from zero", "path", filepath.Join(k.dir, CountFile), "err", err)
		return
	}
	if p := k.prim.Load(); c.Primary == p.primary {
		p.sealed.Add(c.Sealed)
	}
}

// SaveCount writes what the primary has sealed, as counted in this
// process and the earlier ones of its directory, to CountFile.
func (k *Keyring) SaveCount() error {
	p := k.prim.Load()
	b, err := json.Marshal(countFileV1{Primary: p.primary, Sealed: p.sealed.Load()})
	if err != nil {
		return err
	}
	if err := WriteFileAtomic(filepath.Join(k.dir, CountFile), b, 0o600); err != nil {
		return fmt.Errorf("seal: count of encryptions: %w", err)
	}
	return nil
}
