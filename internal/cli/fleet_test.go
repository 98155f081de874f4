package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"moat/internal/testkit"
)

// selfSigned writes a certificate and key for 127.0.0.1 and returns a pool
// that trusts it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "edge"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
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

// TestFleetCommands runs a fleet the way an operator would, command by
// command: server init and run, tokens, registrations, intentions, an agent
// and the gateway, then a request from the internet side.
func TestFleetCommands(t *testing.T) {
	base := freePortBase(t, 8)
	port := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", base+i) }
	serverAddr, meshN1, meshEdge, https, redirect := port(0), port(1), port(2), port(3), port(4)
	dir := t.TempDir()
	data := filepath.Join(dir, "server")
	env := map[string]string{"MOAT_SERVER": serverAddr, "MOAT_ADMIN_DIR": data + ".admin"}
	must := func(args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(t, env, args...)
		if code != 0 {
			t.Fatalf("moat %s: exit %d: %s", strings.Join(args, " "), code, errOut)
		}
		return strings.TrimSpace(out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	background := func(name string, args ...string) chan int {
		done := make(chan int, 1)
		var out, errb syncBuffer
		go func() {
			done <- Run(ctx, &Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }}, args)
		}()
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("%s stderr:\n%s", name, errb.String())
			}
		})
		return done
	}

	must("server", "init", "--data-dir", data, "--trust-domain", "example.org")
	if _, err := os.Stat(filepath.Join(data+".admin", "key.pem")); err != nil {
		t.Fatalf("admin credentials not beside the data directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(data, "admin")); !os.IsNotExist(err) {
		t.Fatal("admin credentials inside the data directory")
	}
	srvDone := background("server", "server", "run", "--data-dir", data, "--listen", serverAddr)
	waitFor(t, "the server", func() bool {
		c, err := net.Dial("tcp", serverAddr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	app, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	appPort := app.Addr().(*net.TCPAddr).Port
	hits := make(chan struct{}, 100)
	go http.Serve(app, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits <- struct{}{}
		io.WriteString(w, "hello from web")
	}))
	defer app.Close()

	mfaLogin(t, env, serverAddr, data+".admin")
	must("svc", "register", "--node", "n1", "--name", "web", "--port", fmt.Sprint(appPort))
	must("svc", "register", "--node", "edge", "--name", "gateway", "--port", fmt.Sprint(base+3))
	policyFile := filepath.Join(dir, "intentions.yaml")
	os.WriteFile(policyFile, []byte(fmt.Sprintf("default: deny\nrules:\n  - name: edge-to-web\n    from: [gateway]\n    to: web\n    ports: [%d]\n", appPort)), 0o600)
	must("policy", "apply", "-f", policyFile)
	if out := must("policy", "explain", "--from", "gateway", "--to", "web", "--port", fmt.Sprint(appPort)); !strings.Contains(out, "ALLOW") {
		t.Fatalf("explain: %s", out)
	}
	tokN1 := must("token", "create", "--node", "n1")
	tokEdge := must("token", "create", "--node", "edge")
	background("agent", "agent", "--data-dir", filepath.Join(dir, "n1"), "--server", serverAddr, "--node", "n1", "--join", tokN1, "--listen", meshN1)

	certFile, keyFile, pool := selfSigned(t, dir)
	gwFile := filepath.Join(dir, "gateway.yaml")
	os.WriteFile(gwFile, []byte(fmt.Sprintf(`listen: %s
redirect_listen: %s
tls: {cert_file: %s, key_file: %s}
routes:
  - path: /
    service: web
    port: %d
`, https, redirect, certFile, keyFile, appPort)), 0o600)
	background("gateway", "gateway", "--config", gwFile, "--data-dir", filepath.Join(dir, "edge"), "--server", serverAddr,
		"--node", "edge", "--join", tokEdge, "--mesh-listen", meshEdge)

	client := &http.Client{Timeout: testkit.WaitLimit, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	var body string
	waitFor(t, "a page through gateway → mesh → web", func() bool {
		resp, err := client.Get("https://" + https + "/")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		return resp.StatusCode == 200
	})
	if body != "hello from web" {
		t.Fatalf("body %q", body)
	}
	before := len(hits)
	resp, err := client.Get("https://" + https + "/?q=%3Cscript%3Ealert(1)%3C/script%3E")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("XSS answered %s", resp.Status)
	}
	if len(hits) != before {
		t.Fatal("a blocked request reached the app")
	}
	if out := must("svc", "list"); !strings.Contains(out, "gateway") || !strings.Contains(out, "web") {
		t.Fatalf("svc list: %s", out)
	}
	cancel()
	select {
	case <-srvDone:
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not stop")
	}
}
