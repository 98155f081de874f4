package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// writeCAAndLeaf writes a CA and a leaf certificate for 127.0.0.1 signed by
// it (valid 90 days, as a real deployment's would be).
func writeCAAndLeaf(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "moat test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ = x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "leaf.pem"), filepath.Join(dir, "leaf-key.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600)
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	os.WriteFile(certFile, chain, 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return caFile, certFile, keyFile
}

type testsslFinding struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	Finding  string `json:"finding"`
}

// certOnly are findings about the test certificate itself, which comes
// from a throwaway CA with no revocation service: they say nothing about
// the gateway's TLS.
var certOnly = map[string]string{
	"cert_revocation":            "the test CA publishes no CRL or OCSP responder",
	"cert_crlDistributionPoints": "the test CA publishes no CRL",
	"cert_ocspURL":               "the test CA runs no OCSP responder",
	"OCSP_stapling":              "no OCSP responder to staple from",
}

// TestTestSSL scans the gateway with testssl.sh: no SSLv3/TLS 1.0/1.1, no
// CBC, RC4, 3DES or NULL suites, HSTS of at least a year, and no HIGH or
// CRITICAL finding.
func TestTestSSL(t *testing.T) {
	bin, err := exec.LookPath("testssl")
	if err != nil {
		if bin, err = exec.LookPath("testssl.sh"); err != nil {
			t.Fatal("testssl is not installed (Debian package testssl.sh; scripts/test installs it)")
		}
	}
	f := newFixture(t, baseYAML+noWAF)
	dir := t.TempDir()
	caFile, certFile, keyFile := writeCAAndLeaf(t, dir)
	f.write(strings.Replace(strings.Replace(baseYAML+noWAF, "cert_file: %s", "cert_file: "+certFile, 1), "key_file: %s", "key_file: "+keyFile, 1))
	if err := f.gw.Reload(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "testssl.json")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	_, port, _ := net.SplitHostPort(f.gw.Addr().String())
	cmd := exec.CommandContext(ctx, bin, "--quiet", "--color", "0", "--warnings", "off", "--openssl-timeout", "10",
		"--add-ca", caFile, "--jsonfile", out, "-p", "-s", "-S", "-h", "-U", "127.0.0.1:"+port)
	cmd.Env = append(os.Environ(), "TERM=dumb")
	t.Logf("running %s", strings.Join(cmd.Args, " "))
	output, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("testssl did not finish in time:\n%s", output)
	}
	data, rerr := os.ReadFile(out)
	if rerr != nil {
		t.Fatalf("testssl wrote no JSON (%v): %v\n%s", err, rerr, output)
	}
	var findings []testsslFinding
	if err := json.Unmarshal(data, &findings); err != nil {
		t.Fatalf("testssl JSON: %v", err)
	}
	byID := map[string]testsslFinding{}
	for _, x := range findings {
		byID[x.ID] = x
		if x.Severity == "HIGH" || x.Severity == "CRITICAL" {
			if why, ok := certOnly[x.ID]; ok {
				t.Logf("ignored %s %s: %s (%s)", x.Severity, x.ID, x.Finding, why)
				continue
			}
			t.Errorf("%s finding %s: %s", x.Severity, x.ID, x.Finding)
		}
	}
	for _, id := range []string{"SSLv2", "SSLv3", "TLS1", "TLS1_1"} {
		if x, ok := byID[id]; !ok || !strings.HasPrefix(x.Finding, "not offered") {
			t.Errorf("%s: %q, want not offered", id, x.Finding)
		}
	}
	// Every cipher category but the strong one (AEAD with forward
	// secrecy) must be absent: NULL, anonymous, export, LOW, 3DES/IDEA and
	// the obsolete CBC class (named cipherlist_AVERAGE or _OBSOLETED
	// depending on the testssl version).
	categories := 0
	for _, x := range findings {
		if !strings.HasPrefix(x.ID, "cipherlist_") {
			continue
		}
		categories++
		t.Logf("%s: %s", x.ID, x.Finding)
		if x.ID != "cipherlist_STRONG" && !strings.HasPrefix(x.Finding, "not offered") {
			t.Errorf("%s: %q, want not offered", x.ID, x.Finding)
		}
	}
	if categories < 6 {
		t.Errorf("testssl reported %d cipher categories, want at least 6", categories)
	}
	for _, x := range findings {
		if strings.HasPrefix(x.ID, "cipher") && strings.Contains(x.Finding, "CBC") {
			t.Errorf("CBC suite offered: %s %s", x.ID, x.Finding)
		}
		if x.ID == "RC4" && !strings.Contains(x.Finding, "not") {
			t.Errorf("RC4: %s", x.Finding)
		}
	}
	hsts, ok := byID["HSTS_time"]
	if !ok {
		t.Fatalf("no HSTS finding")
	}
	secs := hsts.Finding
	if i := strings.Index(secs, "(="); i >= 0 {
		secs = secs[i+2:]
	}
	n, _ := strconv.Atoi(strings.Fields(secs)[0])
	if n < 31536000 {
		t.Errorf("HSTS max-age %q, want ≥ 31536000", hsts.Finding)
	}
	t.Logf("testssl: %d findings; TLS1_2 %q, TLS1_3 %q, HSTS %q", len(findings), byID["TLS1_2"].Finding, byID["TLS1_3"].Finding, hsts.Finding)
}
