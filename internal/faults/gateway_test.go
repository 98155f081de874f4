package faults

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// edgeCert writes a certificate and key for 127.0.0.1 and returns a pool
// that trusts it.
func edgeCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "edge"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "edge.crt"), filepath.Join(dir, "edge.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600)
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}

// startGateway registers the gateway service on node edge, writes its
// configuration (validated with the gateway's own --validate) routing /
// to service api on appPort, and runs it given every server. It returns
// the HTTPS address, a client that trusts it and its metrics address.
func (c *moatCluster) startGateway(appPort int) (string, *http.Client, string) {
	t := c.t
	t.Helper()
	ports := freePorts(t, 5)
	https, redirect, mesh, metrics := addr(ports[0]), addr(ports[1]), addr(ports[2]), addr(ports[4])
	certFile, keyFile, pool := edgeCert(t, c.dir)
	cfg := filepath.Join(c.dir, "gateway.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("listen: %s\nredirect_listen: %s\ntls: {cert_file: %s, key_file: %s}\nservices: [api]\nroutes:\n  - path: /\n    service: api\n    port: %d\n",
		https, redirect, certFile, keyFile, appPort)), 0o600)
	mustMoat(t, nil, "gateway", "--config", cfg, "--validate")
	mustMoat(t, c.env(), "svc", "register", "--node", "edge", "--name", "gateway", "--port", fmt.Sprint(ports[3]))
	tok := mustMoat(t, c.env(), "token", "create", "--node", "edge")
	start(t, "gateway", nil, moatBin, "gateway", "--config", cfg, "--data-dir", filepath.Join(c.dir, "edge"), "--server", c.addrs(),
		"--node", "edge", "--join", tok, "--mesh-listen", mesh, "--metrics", metrics)
	return https, &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}, metrics
}
