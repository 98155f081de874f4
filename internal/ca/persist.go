package ca

import (
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"moat/internal/seal"
)

// KeySealer encrypts private keys at rest; it has the shape of tink.AEAD, so
// seal's keyring plugs in directly. Associated data binds a sealed key to its
// role ("ca/root/0", "ca/intermediate/0").
type KeySealer interface {
	Encrypt(plaintext, associatedData []byte) ([]byte, error)
	Decrypt(ciphertext, associatedData []byte) ([]byte, error)
}

type fileAuthority struct {
	Root         string    `json:"root"`               // PEM
	RootKey      []byte    `json:"root_key,omitempty"` // PKCS#8, sealed when a sealer is set
	Intermediate string    `json:"intermediate"`       // PEM
	InterKey     []byte    `json:"intermediate_key"`   // PKCS#8, sealed when a sealer is set
	LastExpiry   time.Time `json:"last_expiry"`
}

type fileState struct {
	Version     int             `json:"version"`
	Sealed      bool            `json:"sealed"`
	Active      int             `json:"active"`
	Authorities []fileAuthority `json:"authorities"`
}

// FileName is the CA state file inside a data directory.
const FileName = "ca.json"

// Save writes the CA state to dir/ca.json (mode 0600) atomically, private
// keys sealed by s when s is not nil.
func (ca *CA) Save(dir string, s KeySealer) error {
	b, err := ca.Marshal(s)
	if err != nil {
		return err
	}
	if err := seal.WriteFileAtomic(filepath.Join(dir, FileName), b, 0o600); err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	return nil
}

// Marshal encodes the CA state as JSON, private keys sealed by s when s is
// not nil.
func (ca *CA) Marshal(s KeySealer) ([]byte, error) {
	st := ca.State()
	fs := fileState{Version: 1, Sealed: s != nil, Active: st.Active}
	for i, a := range st.Authorities {
		fa := fileAuthority{Root: pemCert(a.Root), Intermediate: pemCert(a.Intermediate), LastExpiry: a.LastExpiry}
		var err error
		if a.RootKey != nil {
			if fa.RootKey, err = sealKey(a.RootKey, s, fmt.Sprintf("ca/root/%d", i)); err != nil {
				return nil, err
			}
		}
		if fa.InterKey, err = sealKey(a.InterKey, s, fmt.Sprintf("ca/intermediate/%d", i)); err != nil {
			return nil, err
		}
		fs.Authorities = append(fs.Authorities, fa)
	}
	b, err := json.MarshalIndent(fs, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("ca: encode state: %w", err)
	}
	return b, nil
}

// Load reads dir/ca.json written by Save.
func Load(c Config, dir string, s KeySealer) (*CA, error) {
	name := filepath.Join(dir, FileName)
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	return unmarshal(c, name, b, s)
}

// Unmarshal decodes CA state written by Marshal.
func Unmarshal(c Config, b []byte, s KeySealer) (*CA, error) { return unmarshal(c, "state", b, s) }

func unmarshal(c Config, name string, b []byte, s KeySealer) (*CA, error) {
	var err error
	var fs fileState
	if err := json.Unmarshal(b, &fs); err != nil {
		return nil, fmt.Errorf("ca: %s: %w", name, err)
	}
	if fs.Version != 1 {
		return nil, fmt.Errorf("ca: %s: unsupported version %d", name, fs.Version)
	}
	if fs.Sealed && s == nil {
		return nil, fmt.Errorf("ca: %s: keys are sealed and no key-encryption key was given", name)
	}
	if !fs.Sealed {
		s = nil
	}
	st := State{Active: fs.Active}
	for i, fa := range fs.Authorities {
		a := &Authority{LastExpiry: fa.LastExpiry}
		if a.Root, err = parsePEMCert(fa.Root); err != nil {
			return nil, fmt.Errorf("ca: %s: authorities[%d].root: %w", name, i, err)
		}
		if a.Intermediate, err = parsePEMCert(fa.Intermediate); err != nil {
			return nil, fmt.Errorf("ca: %s: authorities[%d].intermediate: %w", name, i, err)
		}
		if len(fa.RootKey) > 0 {
			if a.RootKey, err = openKey(fa.RootKey, s, fmt.Sprintf("ca/root/%d", i)); err != nil {
				return nil, fmt.Errorf("ca: %s: authorities[%d].root_key: %w", name, i, err)
			}
		}
		if a.InterKey, err = openKey(fa.InterKey, s, fmt.Sprintf("ca/intermediate/%d", i)); err != nil {
			return nil, fmt.Errorf("ca: %s: authorities[%d].intermediate_key: %w", name, i, err)
		}
		st.Authorities = append(st.Authorities, a)
	}
	return FromState(c, st)
}

// Import builds a CA from an operator-supplied root certificate and an
// intermediate certificate and key (PEM). The root key stays with the
// operator: such a CA cannot Prepare a rotation by itself.
func Import(c Config, rootPEM, interPEM, interKeyPEM []byte) (*CA, error) {
	root, err := parsePEMCert(string(rootPEM))
	if err != nil {
		return nil, fmt.Errorf("ca: root certificate: %w", err)
	}
	inter, err := parsePEMCert(string(interPEM))
	if err != nil {
		return nil, fmt.Errorf("ca: intermediate certificate: %w", err)
	}
	if !root.IsCA || !inter.IsCA {
		return nil, errors.New("ca: root and intermediate must both be CA certificates")
	}
	blk, _ := pem.Decode(interKeyPEM)
	if blk == nil {
		return nil, errors.New("ca: intermediate key: no PEM block")
	}
	key, err := parseKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("ca: intermediate key: %w", err)
	}
	return FromState(c, State{Authorities: []*Authority{{Root: root, Intermediate: inter, InterKey: key}}})
}

func pemCert(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

func parsePEMCert(s string) (*x509.Certificate, error) {
	blk, _ := pem.Decode([]byte(s))
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("no CERTIFICATE PEM block")
	}
	return x509.ParseCertificate(blk.Bytes)
}

func sealKey(k crypto.Signer, s KeySealer, ad string) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("ca: encode key: %w", err)
	}
	if s == nil {
		return der, nil
	}
	out, err := s.Encrypt(der, []byte(ad))
	if err != nil {
		return nil, fmt.Errorf("ca: seal key: %w", err)
	}
	return out, nil
}

func openKey(b []byte, s KeySealer, ad string) (crypto.Signer, error) {
	if s != nil {
		var err error
		if b, err = s.Decrypt(b, []byte(ad)); err != nil {
			return nil, fmt.Errorf("unseal: %w", err)
		}
	}
	return parseKey(b)
}

func parseKey(der []byte) (crypto.Signer, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		if ek, err2 := x509.ParseECPrivateKey(der); err2 == nil {
			return ek, nil
		}
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key of type %T cannot sign", k)
	}
	return s, nil
}
