package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Paths of the key-management and backup calls (role admin, status viewer).
const (
	PathKeys       = "/v1/admin/keys"
	PathKeysRotate = "/v1/admin/keys/rotate"
	PathBackup     = "/v1/admin/backup"
)

// KeyRotateRequest asks for a new primary data key, or with KEK set for
// the data keys to be re-wrapped under a new key-encryption key.
type KeyRotateRequest struct {
	KEK *KEKSource `json:"kek,omitempty"`
}

// KEKSource names a key-encryption key as the server sees it: key material
// never crosses the API, only where the server finds it.
type KEKSource struct {
	// Source is "file", "env" or "passphrase".
	Source string `json:"source"`
	// File is the key file (Source "file"); empty means the server's own
	// key file, replaced by a freshly generated key.
	File string `json:"file,omitempty"`
	// Env names the server-side variable holding the key or passphrase.
	Env string `json:"env,omitempty"`
}

// KeyRotateResponse reports a rotation.
type KeyRotateResponse struct {
	Action     string `json:"action"` // "keys.rotate" or "keys.rewrap"
	OldPrimary uint32 `json:"old_primary,omitempty"`
	NewPrimary uint32 `json:"new_primary"`
	Keys       int    `json:"keys"`
	// Note tells the operator what to do next, e.g. which KEK to start
	// the server with after a re-wrap.
	Note string `json:"note,omitempty"`
}

// KeyInfo is one data key of the server's keyring.
type KeyInfo struct {
	ID      uint32        `json:"id"`
	Created time.Time     `json:"created"`
	Age     time.Duration `json:"age"`
	State   string        `json:"state"` // primary, enabled, disabled
	Records int64         `json:"records"`
	Bytes   int64         `json:"bytes"`
	// ByPart counts records per part of the state: "store", "audit".
	ByPart map[string]int64 `json:"by_part,omitempty"`
}

// ReencryptStatus is the progress of the pass moving stored values onto
// the primary key.
type ReencryptStatus struct {
	Target    uint32    `json:"target"`
	Scanned   int64     `json:"scanned"`
	Rewritten int64     `json:"rewritten"`
	Skipped   int64     `json:"skipped"`
	Conflicts int64     `json:"conflicts"`
	Done      bool      `json:"done"`
	Running   bool      `json:"running"`
	Updated   time.Time `json:"updated"`
	Error     string    `json:"error,omitempty"`
}

// KeyStatus is what `moat keys status` shows.
type KeyStatus struct {
	Primary uint32    `json:"primary"`
	Keys    []KeyInfo `json:"keys"`
	// Scope says which data the usage counts cover.
	Scope     string          `json:"scope"`
	Reencrypt ReencryptStatus `json:"reencrypt"`
	// Schedule is the automatic rotation period; zero means none.
	Schedule time.Duration `json:"schedule"`
	// Encryptions is what the answering server sealed under the primary
	// since it started; at MaxEncryptions the primary is rotated.
	Encryptions    uint64 `json:"encryptions"`
	MaxEncryptions uint64 `json:"max_encryptions"`
}

// BackupRequest asks the server for a backup of its state.
type BackupRequest struct{}

// Download sends in as JSON and copies a successful answer's body to w,
// returning the bytes copied: for answers that are files, not JSON. A call
// that needs a fresh MFA proof gets one as Call does; nothing is written
// to w before the answer is a success.
func (c *Client) Download(ctx context.Context, method, path string, in any, w io.Writer) (int64, error) {
	var resp *http.Response
	err := c.withMFA(ctx, func() error {
		r, err := c.sendJSON(ctx, method, path, in)
		if err != nil {
			return err
		}
		if r.StatusCode/100 != 2 {
			defer r.Body.Close()
			return readError(r)
		}
		resp = r
		return nil
	})
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("api: %s %s: reading the answer: %w", method, path, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, fmt.Errorf("api: %s %s: answer cut short at %d of %d bytes", method, path, n, resp.ContentLength)
	}
	return n, nil
}
