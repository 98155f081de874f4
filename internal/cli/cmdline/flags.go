package cmdline

import (
	"flag"
	"fmt"

	"moat/internal/config"
	"moat/internal/seal"
)

// WithConfigFile decodes the YAML file named by the --config flag (if any)
// into raw, then re-applies every flag given on the command line, so flags
// win over the file and the file over defaults. Flags and YAML keys share
// names (--data-dir is data_dir).
func WithConfigFile(fs *flag.FlagSet, file string, raw any) error {
	if file == "" {
		return nil
	}
	set := map[string]string{}
	fs.Visit(func(f *flag.Flag) {
		if f.Name != "config" {
			set[f.Name] = f.Value.String()
		}
	})
	if err := config.DecodeFile(file, raw); err != nil {
		return err
	}
	for name, v := range set {
		if _, repeated := fs.Lookup(name).Value.(*StringList); repeated {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			return fmt.Errorf("--%s: %w", name, err)
		}
	}
	return nil
}

// KEKFlags declares the --kek-* flags onto k.
func KEKFlags(fs *flag.FlagSet, k *seal.KEKConfig) {
	fs.StringVar(&k.Source, "kek-source", "file", "key-encryption key source: file, env or passphrase")
	fs.StringVar(&k.File, "kek-file", "", "key-encryption key file (default DATA_DIR.kek)")
	fs.StringVar(&k.Env, "kek-env", "", "variable holding the key or passphrase (default MOAT_KEK or MOAT_PASSPHRASE)")
}

// LogFlags declares --log-format and --log-level onto l.
func LogFlags(fs *flag.FlagSet, l *config.Log) {
	fs.StringVar(&l.Format, "log-format", "text", "log lines as text (key=value) or json (one object per line)")
	fs.StringVar(&l.Level, "log-level", "info", "least severe level logged: debug, info, warn or error")
}

// OpenKeyring opens dataDir's keyring under the KEK that k names.
func OpenKeyring(e *Env, k *seal.KEKConfig, dataDir string, create bool) (*seal.Keyring, seal.KEK, error) {
	return k.OpenKeyring(dataDir, e.Getenv, create)
}
