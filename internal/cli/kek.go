package cli

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"moat/internal/config"
	"moat/internal/seal"
)

// kekConfig says where the key-encryption key comes from. Everything moat
// stores is encrypted under data keys that this key wraps.
type kekConfig struct {
	// Source is "file" (default), "env" or "passphrase".
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

func (c *serverConfig) kekFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.KEK.Source, "kek-source", "file", "key-encryption key source: file, env or passphrase")
	fs.StringVar(&c.KEK.File, "kek-file", "", "key-encryption key file (default DATA_DIR.kek, created by init)")
	fs.StringVar(&c.KEK.Env, "kek-env", "", "variable holding the key or passphrase (default MOAT_KEK or MOAT_PASSPHRASE)")
}

func (k *kekConfig) validate(path string) error {
	switch k.Source {
	case "", "file", "env", "passphrase":
		return nil
	}
	return config.Errorf(config.Join(path, "source"), "%q: want file, env or passphrase", k.Source)
}

// kekFile returns the key file path for dataDir.
func (k *kekConfig) kekFile(dataDir string) string {
	if k.File != "" {
		return k.File
	}
	return strings.TrimRight(filepath.Clean(dataDir), string(filepath.Separator)) + ".kek"
}

// kek loads the key-encryption key; with create, a missing key file is made.
func (k *kekConfig) kek(e *Env, dataDir string, create bool) (seal.KEK, error) {
	lookup := func(name string) (string, bool) {
		v := e.Getenv(name)
		return v, v != ""
	}
	switch k.Source {
	case "env":
		name := k.Env
		if name == "" {
			name = "MOAT_KEK"
		}
		return seal.EnvKEK(name, lookup)
	case "passphrase":
		name := k.Env
		if name == "" {
			name = "MOAT_PASSPHRASE"
		}
		p, ok := lookup(name)
		if !ok {
			return nil, fmt.Errorf("kek: the passphrase variable %s is not set", name)
		}
		return seal.NewPassphraseKEK([]byte(p), seal.Argon2Params{}, nil)
	}
	path := k.kekFile(dataDir)
	kek, err := seal.OpenKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		return seal.GenerateKeyFile(path, nil)
	}
	return kek, err
}

// keyring opens the data-key keyring of dataDir under the KEK. A wrong KEK
// is refused here, before anything else is opened or modified.
func (k *kekConfig) keyring(e *Env, dataDir string, create bool) (*seal.Keyring, error) {
	kek, err := k.kek(e, dataDir, create)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	return seal.Open(seal.Config{Dir: dataDir, KEK: kek, NoCreate: !create})
}
