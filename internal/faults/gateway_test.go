package faults

import (
	"bufio"
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
	"syscall"
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
// to service api on appPort, and runs it given every server (c.gateway is
// its process). It returns
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
	c.gateway = start(t, "gateway", nil, moatBin, "gateway", "--config", cfg, "--data-dir", filepath.Join(c.dir, "edge"), "--server", c.addrs(),
		"--node", "edge", "--join", tok, "--mesh-listen", mesh, "--metrics", metrics)
	return https, &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}, metrics
}

// TestGatewayStopKeepsItsMeshForTheGrace stops a running `moat gateway`
// (SIGTERM) while a response streams through it from a service behind the
// mesh: the gateway's shutdown grace lets requests in flight finish, and
// the node agent the gateway runs must carry them until it has, not stop
// with the signal and cut them.
func TestGatewayStopKeepsItsMeshForTheGrace(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "server")
	port := freePorts(t, 1)[0]
	mustMoat(t, nil, "server", "init", "--data-dir", data, "--trust-domain", "example.org")
	start(t, "server", nil, moatBin, "server", "run", "--data-dir", data, "--listen", addr(port))
	c := &moatCluster{t: t, dir: dir, admin: data + ".admin", servers: []*moatServer{{name: "s1", listen: addr(port)}}}
	env := c.env()
	waitFor(t, "the server", func() bool { _, _, err := moat(t, env, "svc", "list"); return err == nil })
	c.mfa = enrolMFA(t, c.addrs(), c.admin)

	// The app streams a line every 50 ms until released, then ends its
	// response with "done".
	release := make(chan struct{})
	app, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	go http.Serve(app, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/stream" {
			io.WriteString(w, "ok")
			return
		}
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-release:
				io.WriteString(w, "done\n")
				return
			case <-r.Context().Done():
				return
			case <-tick.C:
				io.WriteString(w, "tick\n")
				w.(http.Flusher).Flush()
			}
		}
	}))
	appPort := app.Addr().(*net.TCPAddr).Port
	mustMoat(t, env, "svc", "register", "--node", "app", "--name", "api", "--port", fmt.Sprint(appPort))
	pol := filepath.Join(dir, "intentions.yaml")
	if err := os.WriteFile(pol, []byte(fmt.Sprintf("default: deny\nrules:\n  - name: edge\n    from: [gateway]\n    to: api\n    ports: [%d]\n", appPort)), 0o600); err != nil {
		t.Fatal(err)
	}
	mustMoat(t, env, "policy", "apply", "-f", pol)
	c.startAgent("app")
	edge, client, _ := c.startGateway(appPort)
	waitFor(t, "a request through the gateway", func() bool {
		resp, err := client.Get("https://" + edge + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	gw := c.gateway

	resp, err := client.Get("https://" + edge + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewReader(resp.Body)
	next := func() string {
		t.Helper()
		l, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("the streamed response ended: %q, %v\ngateway output:\n%s", l, err, gw.out.String())
		}
		return l
	}
	next()

	_ = gw.cmd.Process.Signal(syscall.SIGTERM)
	waitFor(t, "the gateway to stop taking connections", func() bool {
		conn, err := net.DialTimeout("tcp", edge, time.Second)
		if err == nil {
			conn.Close()
		}
		return err != nil
	})
	// Before, the gateway's agent stopped with the signal: the stream
	// ended here.
	for range 10 {
		next()
	}
	close(release)
	for {
		if l := next(); l == "done\n" {
			break
		}
	}
	select {
	case <-gw.done:
	case <-time.After(waitLimit):
		t.Fatalf("gateway still running %v after SIGTERM", waitLimit)
	}
	if st := gw.cmd.ProcessState; !st.Success() {
		t.Fatalf("gateway exited with %v\n%s", st, gw.out.String())
	}
}
