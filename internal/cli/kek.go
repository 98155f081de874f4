package cli

import (
	"flag"

	"moat/internal/config"
	"moat/internal/seal"
)

// kekFlags declares the --kek-* flags onto k.
func kekFlags(fs *flag.FlagSet, k *seal.KEKConfig) {
	fs.StringVar(&k.Source, "kek-source", "file", "key-encryption key source: file, env or passphrase")
	fs.StringVar(&k.File, "kek-file", "", "key-encryption key file (default DATA_DIR.kek)")
	fs.StringVar(&k.Env, "kek-env", "", "variable holding the key or passphrase (default MOAT_KEK or MOAT_PASSPHRASE)")
}

// logFlags declares --log-format and --log-level onto l.
func logFlags(fs *flag.FlagSet, l *config.Log) {
	fs.StringVar(&l.Format, "log-format", "text", "log lines as text (key=value) or json (one object per line)")
	fs.StringVar(&l.Level, "log-level", "info", "least severe level logged: debug, info, warn or error")
}

// openKeyring opens dataDir's keyring under the KEK that k names.
func openKeyring(e *Env, k *seal.KEKConfig, dataDir string, create bool) (*seal.Keyring, seal.KEK, error) {
	return k.OpenKeyring(dataDir, e.Getenv, create)
}
