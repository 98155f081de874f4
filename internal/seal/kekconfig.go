package seal

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"moat/internal/config"
)

// KEKConfig says where a service's key-encryption key comes from, as its
// configuration file and flags name it (key "kek": source, file, env).
// Everything moat stores is encrypted under data keys that this key wraps.
type KEKConfig struct {
	// Source is "file" (the default), "env" or "passphrase".
	Source string `yaml:"source"`
	// File is the key file for Source "file"; empty means DATA_DIR.kek,
	// beside the data directory and not inside it, so a copy of the data
	// directory alone opens nothing.
	File string `yaml:"file"`
	// Env names the variable holding the key (Source "env") or the
	// passphrase (Source "passphrase"); empty means MOAT_KEK or
	// MOAT_PASSPHRASE.
	Env string `yaml:"env"`
}

// Validate checks k, naming path (e.g. "kek") in its error.
func (k *KEKConfig) Validate(path string) error {
	switch k.Source {
	case "", "file", "env", "passphrase":
		return nil
	}
	return config.Errorf(config.Join(path, "source"), "%q: want file, env or passphrase", k.Source)
}

// KeyFile returns the key file of dataDir for Source "file".
func (k *KEKConfig) KeyFile(dataDir string) string {
	if k.File != "" {
		return k.File
	}
	return strings.TrimRight(filepath.Clean(dataDir), string(filepath.Separator)) + ".kek"
}

// RewrappableFile is the key file a KEK rotation replaces: KeyFile for
// Source "file", else "".
func (k *KEKConfig) RewrappableFile(dataDir string) string {
	if k.Source == "" || k.Source == "file" {
		return k.KeyFile(dataDir)
	}
	return ""
}

// describe names where the KEK came from, for an error: the key file, or
// the variable holding the key or passphrase.
func (k *KEKConfig) describe(dataDir string) string {
	switch k.Source {
	case "env":
		return "the key in $" + cmp.Or(k.Env, "MOAT_KEK")
	case "passphrase":
		return "the passphrase in $" + cmp.Or(k.Env, "MOAT_PASSPHRASE")
	}
	return "the key file " + k.KeyFile(dataDir)
}

// PendingKeyFile is where a KEK rotation writes the new key of the key
// file path: the keyring is re-wrapped under it, then it replaces path.
func PendingKeyFile(path string) string { return path + ".new" }

// InterruptedRewrap explains a keyring of dataDir that the key file does
// not open (opens reports whether a KEK opens it): when the key a KEK
// rotation left pending beside the key file does, the rotation stopped
// before replacing the file, and the error (ErrWrongKEK and
// ErrRewrapInterrupted) names both files. It returns nil otherwise. It
// moves nothing: the old key may still be needed for backups made under it.
func (k *KEKConfig) InterruptedRewrap(dataDir string, opens func(KEK) bool) error {
	file := k.RewrappableFile(dataDir)
	if file == "" {
		return nil
	}
	pending := PendingKeyFile(file)
	kek, err := OpenKeyFile(pending)
	if err != nil || !opens(kek) {
		return nil
	}
	return fmt.Errorf("%w: the keyring opens under %q, not under the key file %q: %w; keep a copy of %q if backups were made under it, then move %q to %q",
		ErrWrongKEK, pending, file, ErrRewrapInterrupted, file, pending, file)
}

// Load returns the key-encryption key of dataDir; with create, a missing key
// file is generated. getenv reads the environment.
func (k *KEKConfig) Load(dataDir string, getenv func(string) string, create bool) (KEK, error) {
	lookup := func(name string) (string, bool) {
		v := getenv(name)
		return v, v != ""
	}
	switch k.Source {
	case "env":
		name := k.Env
		if name == "" {
			name = "MOAT_KEK"
		}
		return EnvKEK(name, lookup)
	case "passphrase":
		name := k.Env
		if name == "" {
			name = "MOAT_PASSPHRASE"
		}
		p, ok := lookup(name)
		if !ok {
			return nil, fmt.Errorf("kek: the passphrase variable %s is not set", name)
		}
		return NewPassphraseKEK([]byte(p), Argon2Params{}, nil)
	}
	path := k.KeyFile(dataDir)
	kek, err := OpenKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		return GenerateKeyFile(path, nil)
	}
	return kek, err
}

// OpenKeyring opens the data-key keyring of dataDir under the KEK; with
// create, a missing key file, directory and keyring are made. A wrong KEK
// is refused here, before anything else is opened or modified.
func (k *KEKConfig) OpenKeyring(dataDir string, getenv func(string) string, create bool) (*Keyring, KEK, error) {
	kek, err := k.Load(dataDir, getenv, create)
	if err != nil {
		return nil, nil, err
	}
	if create {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, nil, err
		}
	}
	kr, err := Open(Config{Dir: dataDir, KEK: kek, NoCreate: !create})
	if errors.Is(err, ErrWrongKEK) {
		if ierr := k.InterruptedRewrap(dataDir, func(kek KEK) bool {
			_, err := Open(Config{Dir: dataDir, KEK: kek, NoCreate: true})
			return err == nil
		}); ierr != nil {
			return nil, nil, fmt.Errorf("seal: keyring %s: %w", filepath.Join(dataDir, KeyringFile), ierr)
		}
		return nil, nil, fmt.Errorf("%w: the KEK tried was %s", err, k.describe(dataDir))
	}
	if err != nil {
		return nil, nil, err
	}
	return kr, kek, nil
}
