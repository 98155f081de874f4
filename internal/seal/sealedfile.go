package seal

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteSealedFile seals data with a (for example a Keyring's AEAD) and
// replaces path with the result atomically, mode 0600: how CA, node and
// admin private keys and agents' cached SVID keys are kept on disk. name
// is the associated data's record name (e.g. "ca/root.key"); use the same
// name to read the file back, so files cannot be swapped.
func WriteSealedFile(path string, a KEK, name string, data []byte) error {
	ct, err := a.Encrypt(data, RecordAD("file", name))
	if err != nil {
		return fmt.Errorf("seal: sealed file %q: %w", path, err)
	}
	if err := WriteFileAtomic(path, ct, 0o600); err != nil {
		return fmt.Errorf("seal: sealed file %q: %w", path, err)
	}
	return nil
}

// ReadSealedFile opens a file written by WriteSealedFile under the same
// name. A file sealed for another name, altered, or under a retired key
// fails with ErrOpen.
func ReadSealedFile(path string, a KEK, name string) ([]byte, error) {
	ct, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("seal: sealed file %q: %w", path, err)
	}
	pt, err := a.Decrypt(ct, RecordAD("file", name))
	if err != nil {
		return nil, fmt.Errorf("seal: sealed file %q: %w", path, ErrOpen)
	}
	return pt, nil
}

// Finding is a secret found in the clear by ScanPlaintext.
type Finding struct {
	Path   string // file
	Offset int64  // byte offset of the match
	Secret string // the label of the secret found
	Form   string // "raw", "base64", "base64url" or "hex"
}

// ScanPlaintext searches every byte of every regular file under the given
// roots for each secret (label → bytes), raw and in base64, base64url and
// hex, and returns where any appears. It is the acceptance check that a
// data directory or a backup holds nothing usable: after a scenario, scan
// for the private keys, join tokens, Authorization values and body markers
// it used, and expect no findings. Secrets shorter than 8 bytes are
// refused (they would match by chance).
func ScanPlaintext(secrets map[string][]byte, roots ...string) ([]Finding, error) {
	type needle struct {
		label, form string
		b           []byte
	}
	var needles []needle
	for label, s := range secrets {
		if len(s) < 8 {
			return nil, fmt.Errorf("seal: scan: secret %q is shorter than 8 bytes", label)
		}
		needles = append(needles,
			needle{label, "raw", s},
			needle{label, "hex", []byte(hex.EncodeToString(s))},
		)
		// Base64 of a secret depends on its alignment in the encoded
		// stream; search the part that is the same at every alignment.
		for _, enc := range []struct {
			form string
			e    *base64.Encoding
		}{{"base64", base64.StdEncoding}, {"base64url", base64.RawURLEncoding}} {
			for shift := range 3 {
				padded := append(make([]byte, shift), s...)
				e := enc.e.EncodeToString(padded)
				// Skip the characters touched by the pad or the tail.
				start, end := (shift*8+5)/6+1, len(e)-4
				if end-start >= 8 {
					needles = append(needles, needle{label, enc.form, []byte(e[start:end])})
				}
			}
		}
	}
	var out []Finding
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, n := range needles {
				if i := bytes.Index(data, n.b); i >= 0 {
					out = append(out, Finding{Path: p, Offset: int64(i), Secret: n.label, Form: n.form})
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("seal: scan %q: %w", root, err)
		}
	}
	return out, nil
}
