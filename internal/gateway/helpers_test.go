package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"moat/internal/flow"
	"moat/internal/testkit"
)

// writeCert writes a self-signed certificate for localhost and 127.0.0.1
// into dir and returns the file names and a pool trusting it.
func writeCert(t *testing.T, dir, name string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		DNSNames:              []string{"localhost", "app.example", "api.example"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}

// backend is a mesh service stand-in that counts and echoes requests.
type backend struct {
	srv   *httptest.Server
	count atomic.Int64
	mu    sync.Mutex
	last  *http.Request
	body  string
}

func newBackend(t *testing.T) *backend {
	b := &backend{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.count.Add(1)
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.last, b.body = r, string(body)
		b.mu.Unlock()
		fmt.Fprintf(w, "ok %s %s", r.Method, r.URL.Path)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) lastRequest() (*http.Request, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last, b.body
}

// events collects security events.
type events struct {
	mu   sync.Mutex
	recs []flow.Record
}

func (e *events) Write(r flow.Record) error {
	// Round-trip through JSON as a SIEM would read it.
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	var back flow.Record
	if err := json.Unmarshal(b, &back); err != nil {
		return err
	}
	e.mu.Lock()
	e.recs = append(e.recs, back)
	e.mu.Unlock()
	return nil
}

func (e *events) all() []flow.Record {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]flow.Record(nil), e.recs...)
}

// fixture is a running gateway in front of backends.
type fixture struct {
	t        *testing.T
	dir      string
	file     string
	gw       *Gateway
	backends map[string]*backend
	events   *events
	client   *http.Client
	base     string
	pool     *x509.CertPool
	certFile string
	keyFile  string
	now      atomic.Pointer[time.Time]
	log      testkit.Buffer // the gateway's log
	// stop ends Run's context and returns what Run returned; the test's
	// cleanup calls it too.
	stop func() error
}

// waitFor waits, bounded, for what a test expects to happen.
var waitFor = testkit.WaitFor

// baseYAML is a known-good gateway.yaml; %s are the cert and key files.
const baseYAML = `listen: 127.0.0.1:0
redirect_listen: 127.0.0.1:0
tls:
  cert_file: %s
  key_file: %s
services: [frontend, api]
routes:
  - service: frontend
    port: 8080
  - service: api
    port: 9090
    path: /api/
`

// newFixture starts a gateway with yaml (cert and key placeholders
// filled by baseYAML's %s) and backends for frontend and api.
func newFixture(t *testing.T, yaml string) *fixture {
	t.Helper()
	return newFixtureWith(t, yaml, nil)
}

// newFixtureWith is newFixture where the services named in sockets are
// reached on those Unix sockets (a real server such as nginx) instead.
func newFixtureWith(t *testing.T, yaml string, sockets map[string]string) *fixture {
	t.Helper()
	return newFixtureTuned(t, yaml, sockets, nil)
}

// newFixtureTuned is newFixtureWith with the gateway's Config changed by
// tune before New.
func newFixtureTuned(t *testing.T, yaml string, sockets map[string]string, tune func(*Config)) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir(), events: &events{}, backends: map[string]*backend{}}
	f.certFile, f.keyFile, f.pool = writeCert(t, f.dir, "gw")
	for _, s := range []string{"frontend", "api"} {
		f.backends[s] = newBackend(t)
	}
	f.file = filepath.Join(f.dir, "gateway.yaml")
	f.write(yaml)
	start := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	f.now.Store(&start)
	cfg := Config{
		File: f.file,
		Dial: func(ctx context.Context, service string, port int) (net.Conn, error) {
			var d net.Dialer
			if sock, ok := sockets[service]; ok {
				return d.DialContext(ctx, "unix", sock)
			}
			b, ok := f.backends[service]
			if !ok {
				return nil, fmt.Errorf("no service %q", service)
			}
			return d.DialContext(ctx, "tcp", b.srv.Listener.Addr().String())
		},
		Events:        f.events,
		Logger:        slog.New(slog.NewTextHandler(&f.log, nil)),
		Now:           func() time.Time { return *f.now.Load() },
		WatchInterval: 50 * time.Millisecond,
	}
	if tune != nil {
		tune(&cfg)
	}
	gw, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.gw = gw
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	f.stop = sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	t.Cleanup(func() {
		if err := f.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	f.base = "https://" + gw.Addr().String()
	f.client = f.clientFrom("")
	return f
}

// clientFrom is a client whose connections come from source, an address
// on the loopback network ("127.0.0.2"), so the gateway sees another
// client; "" means the system's choice.
func (f *fixture) clientFrom(source string) *http.Client {
	d := &net.Dialer{}
	if source != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(source)}
	}
	t := &http.Transport{
		DialContext:       d.DialContext,
		TLSClientConfig:   &tls.Config{RootCAs: f.pool, ServerName: "localhost"},
		ForceAttemptHTTP2: true,
	}
	f.t.Cleanup(t.CloseIdleConnections)
	return &http.Client{
		Transport:     t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       2 * time.Minute,
	}
}

func (f *fixture) write(yaml string) {
	f.t.Helper()
	if strings.Count(yaml, "%s") >= 2 {
		yaml = fmt.Sprintf(yaml, f.certFile, f.keyFile)
	}
	if err := os.WriteFile(f.file, []byte(yaml), 0o600); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) advance(d time.Duration) {
	n := f.now.Load().Add(d)
	f.now.Store(&n)
}

// do sends a request and returns the status, body and response.
func (f *fixture) do(req *http.Request) (int, string, *http.Response) {
	f.t.Helper()
	resp, err := f.client.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp
}

func (f *fixture) req(method, path string, body io.Reader) *http.Request {
	f.t.Helper()
	r, err := http.NewRequest(method, f.base+path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) moat-test")
	r.Header.Set("Accept", "text/html,application/json")
	return r
}

func (f *fixture) kinds() []string {
	var out []string
	for _, r := range f.events.all() {
		if r.Unmapped != nil {
			out = append(out, r.Unmapped.Kind)
		}
	}
	return out
}

// nginx is a real nginx serving on a Unix socket, logging every request it
// answers as "METHOD REQUEST_URI HOST -> URI" (URI being the path nginx
// resolved and routed on).
type nginx struct {
	sock, log string
}

// startNginx runs nginx with the given location blocks until the test ends.
func startNginx(t *testing.T, locations string) *nginx {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/nginx"); err != nil {
			t.Fatal("nginx is not installed (Debian package nginx; scripts/test installs it)")
		}
	}
	dir, err := os.MkdirTemp("", "moat-nginx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	n := &nginx{sock: filepath.Join(dir, "ngx.sock"), log: filepath.Join(dir, "access.log")}
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 64; }
http {
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  log_format moat '$request_method $request_uri $http_host -> $uri';
  access_log %[2]s moat;
  server {
    listen unix:%[3]s;
%[4]s
  }
}
`, dir, n.log, n.sock, locations)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(testkit.WaitLimit)
	for {
		if c, err := net.Dial("unix", n.sock); err == nil {
			c.Close()
			return n
		}
		select {
		case <-exited:
			t.Fatalf("nginx exited: %s", stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not listen within %s: %s", testkit.WaitLimit, stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// served returns nginx's access log lines.
func (n *nginx) served(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(n.log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}
