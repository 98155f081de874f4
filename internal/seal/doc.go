// Package seal is moat's encryption at rest: envelope encryption of stored
// records, the key-encryption keys (KEKs) that protect the data keys, key
// rotation and re-encryption, and the redaction step every log, flow and
// alert writer applies.
//
// # Envelope encryption
//
// A Keyring holds AES-256-GCM data keys in one file (keyring.json in the
// data directory), wrapped by a KEK: a Tink keyset in Tink's own format,
// read and written here with protowire alone (keyset.go), so Tink's tools
// and this package's earlier versions open it. Open it once at start:
//
//	kek, err := seal.OpenKeyFile("/etc/moat/kek")
//	kr, err := seal.Open(seal.Config{Dir: dataDir, KEK: kek, Now: time.Now})
//	a := kr.AEAD() // hand this to the store, flow database, spool, audit log
//	ct, err := a.Encrypt(value, []byte(recordKey))
//	pt, err := a.Decrypt(ct, []byte(recordKey))
//
// The associated data names the record (its key, or seal.RecordAD of its
// parts), so a ciphertext copied onto another record does not open. A wrong
// KEK is refused by Open with ErrWrongKEK, and nothing on disk changes.
// Every ciphertext starts with Tink's 5-byte prefix naming its data key;
// KeyID reads it, and CountUsage turns a store into per-key usage for
// Status. WriteSealedFile and ReadSealedFile keep whole files (CA, node and
// admin private keys, cached SVID keys) sealed the same way, and
// ScanPlaintext checks a data directory or backup for secrets in the clear.
//
// One process writes a keyring at a time (an flock on keyring.lock); a
// Keyring never overwrites a file another process changed since it read it
// (ErrKeyringChanged) and picks such changes up with Reload.
//
// # Rotation
//
// Rotate adds a data key and makes it primary; old ciphertexts still open.
// Reencrypt then moves a store's records onto the primary with
// compare-and-swap writes, saving a cursor after each batch, so it can be
// killed at any instant and resumed. RewrapKEK re-wraps the data keys
// under a new KEK without touching data. Scheduler rotates when the
// primary reaches a given age. Each of these returns an Event for the
// caller to append to the audit log.
//
// # KEK providers
//
// A KEK is anything with tink.AEAD's two methods. This package provides a
// key file (GenerateKeyFile, OpenKeyFile: mode 0600, refused when group or
// others can read it), an environment variable (EnvKEK) and a passphrase
// (NewPassphraseKEK: argon2id, with salt and parameters stored in the
// clear beside the wrapped keys, inside each ciphertext header).
// KEKConfig picks one of them from configuration.
//
// A cloud KMS or Vault Transit plugs in without code here: tink-go's KMS
// clients (github.com/tink-crypto/tink-go-gcpkms, tink-go-awskms,
// tink-go-hcvault) implement registry.KMSClient, whose GetAEAD(keyURI)
// returns a tink.AEAD that encrypts remotely under a key that never leaves
// the KMS. That AEAD is a KEK:
//
//	// Vault Transit; the client's other arguments (TLS, token) per its docs.
//	client, err := hcvault.NewClient("hcvault://vault.internal:8200/", tlsCfg, ...)
//	kek, err := client.GetAEAD("hcvault://vault.internal:8200/transit/keys/moat")
//	kr, err := seal.Open(seal.Config{Dir: dataDir, KEK: kek})
//
// The KMS is called only when the keyring is opened, rotated or re-wrapped
// and when a backup is written or restored, never per record. A provider
// must fail (not return garbage) on ciphertexts of another key; every Tink
// AEAD does.
//
// # Backups
//
// Package backup writes and restores encrypted backups under the same
// KEK; it lives apart so that agents, which open a keyring but take no
// backups, do not link Tink's streaming AEAD.
//
// # Redaction
//
// RedactHeader, RedactQuery, RedactURL, RedactJSON and RedactText mask
// credentials (Authorization and Cookie headers, token and password
// parameters and JSON keys at any depth, PEM private keys, moat join
// tokens, bearer tokens, AWS key IDs); Truncate and RedactMatch bound
// attacker-supplied excerpts such as WAF matched data. They err towards
// masking too much.
package seal
