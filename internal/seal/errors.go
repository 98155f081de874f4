package seal

import "errors"

// Sentinel errors a caller may branch on with errors.Is. They come wrapped
// in an error that names the file or record concerned.
var (
	// ErrWrongKEK: the key-encryption key does not open the keyring (a wrong
	// key, a wrong passphrase, or a keyring file that was altered).
	ErrWrongKEK = errors.New("the KEK does not open it (wrong key or passphrase, or the file was altered)")
	// ErrNoKeyring: Config.NoCreate was set and the directory holds no keyring.
	ErrNoKeyring = errors.New("no keyring in the data directory")
	// ErrOpen: a ciphertext does not open under any key with the given
	// associated data (wrong record, altered bytes, or a retired key).
	ErrOpen = errors.New("seal: ciphertext does not open")
	// ErrKeyFileMode: a key file is readable or writable by group or others.
	ErrKeyFileMode = errors.New("key file must not be accessible by group or others (chmod 600)")
	// ErrKeyringChanged: the keyring file was changed by another process
	// since this one read it; Reload, then retry.
	ErrKeyringChanged = errors.New("the keyring was changed by another process or server; reload it and retry")
	// ErrKeyringDamaged: the keyring is not a well-formed keyring (a
	// flipped byte, a truncated write): its checksum or structure is wrong.
	// A wrong KEK is ErrWrongKEK instead.
	ErrKeyringDamaged = errors.New("the keyring is damaged")
	// ErrRewrapInterrupted: the keyring opens under the new key a KEK
	// rotation left beside the key file (PendingKeyFile), not under the
	// key file: the rotation stopped before replacing it. It comes with
	// ErrWrongKEK.
	ErrRewrapInterrupted = errors.New("a KEK rotation stopped before its new key replaced the key file")
)
