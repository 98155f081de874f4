package gateway

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
)

const (
	tlsVersion12 = tls.VersionTLS12
	tlsVersion13 = tls.VersionTLS13
)

// cipherSuites are the TLS 1.2 suites offered: ECDHE key exchange with an
// AEAD only. Go's defaults on 1.2 still include CBC suites; these do not.
// TLS 1.3 suites are all AEAD and not configurable.
var cipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// loadKeyPair reads a PEM certificate chain and key. On error it also says
// which file ("cert_file" or "key_file") is at fault.
func loadKeyPair(certFile, keyFile string) (*tls.Certificate, string, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, "cert_file", fmt.Errorf("read certificate: %w", err)
	}
	if !bytes.Contains(certPEM, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, "cert_file", fmt.Errorf("%q holds no PEM certificate", certFile)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, "key_file", fmt.Errorf("read key: %w", err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, "key_file", fmt.Errorf("certificate %q and key %q: %w", certFile, keyFile, err)
	}
	return &c, "", nil
}

// certStore holds the PEM certificate and reloads it when its files change;
// a reload that fails keeps the certificate already served. Connections
// already open keep theirs: only new handshakes see the new one.
type certStore struct {
	log *slog.Logger

	mu       sync.RWMutex // guards the fields below
	certFile string
	keyFile  string
	stamp    string
	cert     *tls.Certificate
}

func fileStamp(names ...string) string {
	var b bytes.Buffer
	for _, n := range names {
		fi, err := os.Stat(n)
		if err != nil {
			b.WriteString("missing;")
			continue
		}
		fmt.Fprintf(&b, "%d/%d;", fi.ModTime().UnixNano(), fi.Size())
	}
	return b.String()
}

// set points the store at files, loading them now.
func (s *certStore) set(certFile, keyFile string) error {
	stamp := fileStamp(certFile, keyFile)
	c, _, err := loadKeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.certFile, s.keyFile, s.stamp, s.cert = certFile, keyFile, stamp, c
	return nil
}

// check reloads the files when they changed since the last load.
func (s *certStore) check() {
	s.mu.RLock()
	certFile, keyFile, old := s.certFile, s.keyFile, s.stamp
	s.mu.RUnlock()
	if certFile == "" {
		return
	}
	stamp := fileStamp(certFile, keyFile)
	if stamp == old {
		return
	}
	c, _, err := loadKeyPair(certFile, keyFile)
	if err != nil {
		// Files are often replaced one at a time: try again next tick.
		s.log.Warn("gateway: certificate reload failed, keeping the old one", "err", err)
		return
	}
	s.mu.Lock()
	s.stamp, s.cert = stamp, c
	s.mu.Unlock()
	s.log.Info("gateway: certificate reloaded", "cert_file", certFile)
}

func (s *certStore) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.cert == nil {
		return nil, errors.New("gateway: no certificate")
	}
	return s.cert, nil
}

// tlsConfig is the server's TLS configuration: 1.2 or 1.3 minimum,
// AEAD-only suites, HTTP/2 then HTTP/1.1.
func tlsConfig(min uint16, get func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		MinVersion:     min,
		CipherSuites:   cipherSuites,
		GetCertificate: get,
		NextProtos:     []string{"h2", "http/1.1"},
	}
}
