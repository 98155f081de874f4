package storetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// makeEtcdCerts writes, under dir, a CA, a member certificate for
// 127.0.0.1 and localhost, a client certificate of that CA, and a client
// certificate of another CA. It returns the client-side files and the
// member's certificate and key files.
func makeEtcdCerts(dir string) (EtcdTLSFiles, [2]string, error) {
	var files EtcdTLSFiles
	var server [2]string
	ca, caKey, err := newCA("moat test etcd CA")
	if err != nil {
		return files, server, err
	}
	other, otherKey, err := newCA("another CA")
	if err != nil {
		return files, server, err
	}
	files.CA = filepath.Join(dir, "ca.pem")
	if err := writePEM(files.CA, "CERTIFICATE", ca.Raw, 0o644); err != nil {
		return files, server, err
	}
	leaf := func(name string, signer *x509.Certificate, signerKey *ecdsa.PrivateKey, usage []x509.ExtKeyUsage, ips []net.IP, dns []string) (string, string, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return "", "", err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(time.Now().UnixNano()),
			Subject:      pkix.Name{CommonName: name},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  usage,
			IPAddresses:  ips,
			DNSNames:     dns,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
		if err != nil {
			return "", "", err
		}
		kder, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return "", "", err
		}
		cert, keyFile := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
		if err := writePEM(cert, "CERTIFICATE", der, 0o644); err != nil {
			return "", "", err
		}
		return cert, keyFile, writePEM(keyFile, "PRIVATE KEY", kder, 0o600)
	}
	// etcd's own gateway dials the member with its certificate, as a
	// client.
	if server[0], server[1], err = leaf("member", ca, caKey, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, []net.IP{net.IPv4(127, 0, 0, 1)}, []string{"localhost"}); err != nil {
		return files, server, err
	}
	if files.Cert, files.Key, err = leaf("client", ca, caKey, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil, nil); err != nil {
		return files, server, err
	}
	if files.OtherCert, files.OtherKey, err = leaf("other-client", other, otherKey, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil, nil); err != nil {
		return files, server, err
	}
	return files, server, nil
}

func newCA(name string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func writePEM(name, typ string, der []byte, mode os.FileMode) error {
	return os.WriteFile(name, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}

// clientConfig is a TLS client configuration with f's CA and client
// certificate.
func (f EtcdTLSFiles) clientConfig() (*tls.Config, error) {
	pemCA, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemCA)
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
