package agent

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/seal"
)

func testCert(t *testing.T) (*tls.Certificate, []*x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, []*x509.Certificate{leaf}
}

// TestSealedCredentials: keys are written sealed with no clear copy; keys
// an earlier run left in the clear are sealed on first read; a sealed key
// moved to another credential directory does not open.
func TestSealedCredentials(t *testing.T) {
	dir := t.TempDir()
	kek, err := seal.GenerateKeyFile(filepath.Join(t.TempDir(), "kek"), nil)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := seal.Open(seal.Config{Dir: dir, KEK: kek})
	if err != nil {
		t.Fatal(err)
	}
	a := &Agent{cfg: Config{DataDir: dir, Node: "n1"}, sealer: kr.AEAD()}
	cert, roots := testCert(t)

	node := filepath.Join(dir, nodeDir)
	if err := api.WriteCredentials(node, cert, roots); err != nil { // as an unsealed run left it
		t.Fatal(err)
	}
	got, _, err := a.loadCreds(node)
	if err != nil {
		t.Fatal(err)
	}
	if !got.PrivateKey.(*ecdsa.PrivateKey).Equal(cert.PrivateKey) {
		t.Fatal("migrated key differs")
	}
	if _, err := os.Stat(filepath.Join(node, api.KeyFile)); !os.IsNotExist(err) {
		t.Fatalf("the clear key is still there (%v)", err)
	}
	if got, _, err = a.loadCreds(node); err != nil || !got.PrivateKey.(*ecdsa.PrivateKey).Equal(cert.PrivateKey) {
		t.Fatalf("reading the sealed key: %v", err)
	}

	svc := filepath.Join(dir, svidDir, "web")
	if err := a.writeCreds(svc, cert, roots); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(svc, api.KeyFile)); !os.IsNotExist(err) {
		t.Fatal("writeCreds left a clear key")
	}
	b, err := os.ReadFile(filepath.Join(node, SealedKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(svc, SealedKeyFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.loadCreds(svc); err == nil {
		t.Fatal("a node key moved into a service's directory opened")
	}
	other := &Agent{cfg: Config{DataDir: dir, Node: "n2"}, sealer: kr.AEAD()}
	if _, _, err := other.loadCreds(node); err == nil {
		t.Fatal("node n1's key opened for node n2 sharing the keyring")
	}
}
