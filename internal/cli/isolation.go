package cli

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"moat/internal/agent"
	"moat/internal/firewall"
	"moat/internal/netlab"
)

// isoLab is the seed architecture on network namespaces: a control-plane
// server, an "internet" host (an external HTTPS site and its DNS), an edge
// node with the gateway (and the egress gateway), and app and db nodes
// whose agents enforce the host firewall, with a db backend bound to
// 0.0.0.0. Every moat process is the moat binary (exe) run in its host's
// namespace. "moat demo isolation" prints what it shows; the tests drive
// it further.
type isoLab struct {
	exe    string
	dir    string
	lab    *netlab.Lab
	log    io.Writer
	mode   string // the agents' firewall mode
	egress bool   // the egress gateway runs as "moat egress" on a host of its own

	control, internet, edge, egressHost, app, db *netlab.Host

	env     []string
	mu      sync.Mutex // guards procs
	procs   map[string]*isoProc
	closers []io.Closer
	roots   *x509.CertPool
	cert    tls.Certificate   // the site's and the gateway's
	tokens  map[string]string // node → its join token file
}

// isoProc is one moat process of the lab.
type isoProc struct {
	cmd  *exec.Cmd
	out  *syncBuf
	done chan struct{}
}

type syncBuf struct {
	mu sync.Mutex // guards b
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() < 1<<20 {
		s.b.Write(p)
	}
	return len(p), nil
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Addresses and ports of the lab.
const (
	isoSubnet    = "198.18.0.0/24" // RFC 2544's benchmarking range: on no real network
	isoServer    = 7400
	isoMesh      = 15443
	isoHTTPS     = 8443
	isoAPI       = 9080
	isoDB        = 5432
	isoDBLocal   = 15432 // api's upstream port for db
	isoSiteLocal = 19443 // api's upstream port for the external site
	isoProxy     = 3128
	isoEgressSvc = 15080
	isoSite      = "api.partner.test"
	isoOther     = "www.other.test"
	isoShop      = "shop.demo.test"
)

// isoIntentions is the lab's policy.
const isoIntentions = `default: deny
rules:
  - name: edge-to-api
    from: [gateway]
    to: api
    ports: [9080]
  - name: api-to-db
    from: [api]
    to: db
    ports: [5432]
egress:
  - name: partner
    from: [api]
    to: api.partner.test
    ports: [443]
`

func randomPrefix() string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return "moat-demo-" + hex.EncodeToString(b[:]) + "-"
}

// newIsoLab builds the namespaces and the external site; start runs moat.
func newIsoLab(exe, prefix, mode string, egressHost bool, log io.Writer) (_ *isoLab, err error) {
	l := &isoLab{exe: exe, log: log, mode: mode, egress: egressHost, procs: map[string]*isoProc{}, tokens: map[string]string{}}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	// Each agent's Workload API socket lives beside its data directory: a
	// long TMPDIR would make it longer than a socket path may be.
	base := ""
	if len(filepath.Join(os.TempDir(), "moat-isolation-0123456789", "egress.public", "workload.sock")) > agent.MaxSocketPath {
		base = "/tmp"
	}
	if l.dir, err = os.MkdirTemp(base, "moat-isolation-"); err != nil {
		return nil, err
	}
	if l.lab, err = netlab.New(prefix, netip.MustParsePrefix(isoSubnet)); err != nil {
		return nil, err
	}
	hosts := []struct {
		p    **netlab.Host
		name string
	}{{&l.control, "control"}, {&l.internet, "internet"}, {&l.edge, "edge"}, {&l.app, "app"}, {&l.db, "db"}}
	if egressHost {
		hosts = append(hosts, struct {
			p    **netlab.Host
			name string
		}{&l.egressHost, "egress"})
	}
	for _, h := range hosts {
		if *h.p, err = l.lab.AddHost(h.name); err != nil {
			return nil, err
		}
	}
	if !egressHost {
		l.egressHost = l.edge
	}
	l.env = append(os.Environ(), "MOAT_SERVER="+l.addr(l.control, isoServer), "MOAT_ADMIN_DIR="+filepath.Join(l.dir, "server.admin"))
	if err := l.serveSite(); err != nil {
		return nil, err
	}
	if err := l.serveBackends(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *isoLab) addr(h *netlab.Host, port int) string {
	return netip.AddrPortFrom(h.Addr, uint16(port)).String()
}

// serveSite runs the external site (HTTPS for isoSite and isoOther) and
// the DNS server that names them, on the internet host.
func (l *isoLab) serveSite() error {
	cert, pool, err := isoCert(isoSite, isoOther, isoShop)
	if err != nil {
		return err
	}
	l.roots, l.cert = pool, cert
	var ln net.Listener
	if err := l.internet.Do(func() (err error) {
		ln, err = tls.Listen("tcp", ":443", &tls.Config{Certificates: []tls.Certificate{cert}})
		return err
	}); err != nil {
		return err
	}
	l.closers = append(l.closers, ln)
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s on the internet\n", r.Host)
	}))
	var pc net.PacketConn
	if err := l.internet.Do(func() (err error) { pc, err = net.ListenPacket("udp", ":53"); return err }); err != nil {
		return err
	}
	l.closers = append(l.closers, pc)
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, qq := range q.Question {
			switch strings.ToLower(qq.Name) {
			case isoSite + ".", isoOther + ".":
				if qq.Qtype == dns.TypeA {
					m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30}, A: l.internet.Addr.AsSlice()})
				}
			default:
				m.Rcode = dns.RcodeNameError
			}
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	return nil
}

// serveBackends runs the api app on app's loopback and the db backend on
// every address of db (the mistake the firewall makes harmless).
func (l *isoLab) serveBackends() error {
	var api, db net.Listener
	if err := l.app.Do(func() (err error) { api, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", isoAPI)); return err }); err != nil {
		return err
	}
	l.closers = append(l.closers, api)
	go http.Serve(api, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello from api") }))
	if err := l.db.Do(func() (err error) { db, err = net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", isoDB)); return err }); err != nil {
		return err
	}
	l.closers = append(l.closers, db)
	go func() {
		for {
			c, err := db.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "db says hi\n")
			_ = c.Close()
		}
	}()
	return nil
}

// moat runs a moat command to completion in h's namespace (nil: here).
func (l *isoLab) moat(ctx context.Context, h *netlab.Host, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, l.exe, args...)
	if h != nil {
		cmd = h.Command(ctx, l.exe, args...)
	}
	cmd.Env = l.env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("moat %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// spawn starts a long-lived moat process named name in h's namespace.
func (l *isoLab) spawn(name string, h *netlab.Host, args ...string) error {
	cmd := exec.Command("ip", append([]string{"netns", "exec", h.NS, l.exe}, args...)...)
	cmd.Env = l.env
	out := &syncBuf{}
	cmd.Stdout, cmd.Stderr = out, out
	// The process dies with the lab's owner, whatever ends it.
	cmd.SysProcAttr = dieWithParent()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &isoProc{cmd: cmd, out: out, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	l.mu.Lock()
	l.procs[name] = p
	l.mu.Unlock()
	return nil
}

// stop ends a process: SIGTERM, or SIGKILL when kill (a crash).
func (l *isoLab) stop(name string, kill bool) {
	l.mu.Lock()
	p := l.procs[name]
	delete(l.procs, name)
	l.mu.Unlock()
	if p == nil {
		return
	}
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// output is what a process printed so far.
func (l *isoLab) output(name string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p := l.procs[name]; p != nil {
		return p.out.String()
	}
	return ""
}

// start runs the control plane, registers the services, applies the
// intentions and starts the gateway and the agents.
func (l *isoLab) start(ctx context.Context) error {
	data := filepath.Join(l.dir, "server")
	if _, err := l.moat(ctx, nil, "server", "init", "--data-dir", data, "--trust-domain", "demo.test"); err != nil {
		return err
	}
	if err := l.spawn("server", l.control, "server", "run", "--data-dir", data, "--listen", l.addr(l.control, isoServer)); err != nil {
		return err
	}
	if err := waitUntil(ctx, 30*time.Second, func() bool { return l.dial(l.control, l.addr(l.control, isoServer)) == nil }); err != nil {
		return fmt.Errorf("the control plane did not start: %s", l.output("server"))
	}
	// The demo's administrator enrols an authenticator (the demo holds
	// its secret) and logs in, as an operator does after init: the
	// sensitive calls below need a fresh second factor.
	if _, err := enrolTOTP(func(args ...string) (string, error) { return l.moat(ctx, l.control, args...) }); err != nil {
		return err
	}
	regs := [][]string{
		{"--node", "edge", "--name", "gateway", "--port", fmt.Sprint(isoHTTPS)},
		{"--node", l.egressHost.Name, "--name", "egress", "--port", fmt.Sprint(isoEgressSvc)},
		{"--node", "app", "--name", "api", "--port", fmt.Sprint(isoAPI), "--upstream", fmt.Sprintf("db:%d", isoDBLocal),
			"--upstream", fmt.Sprintf("%s:443=%d", isoSite, isoSiteLocal)},
		{"--node", "db", "--name", "db", "--port", fmt.Sprint(isoDB)},
	}
	for _, r := range regs {
		if _, err := l.moat(ctx, l.control, append([]string{"svc", "register"}, r...)...); err != nil {
			return err
		}
	}
	if err := l.applyPolicy(ctx, isoIntentions); err != nil {
		return err
	}
	nodes := []string{"edge", "app", "db"}
	if l.egress {
		nodes = append(nodes, "egress")
	}
	for _, n := range nodes {
		tok, err := l.moat(ctx, l.control, "token", "create", "--node", n)
		if err != nil {
			return err
		}
		// Each node reads its token from a file of its own, kept off the
		// command line that every local user sees.
		f := filepath.Join(l.dir, n+".join")
		if err := os.WriteFile(f, []byte(tok), 0o600); err != nil {
			return err
		}
		l.tokens[n] = f
	}
	key, crt, err := isoGatewayCert(l.dir, l.cert)
	if err != nil {
		return err
	}
	gw := filepath.Join(l.dir, "gateway.yaml")
	if err := os.WriteFile(gw, []byte(fmt.Sprintf("listen: 0.0.0.0:%d\nredirect_listen: \"off\"\ntls: {cert_file: %s, key_file: %s}\nroutes:\n  - host: %s\n    path: /\n    service: api\n    port: %d\n",
		isoHTTPS, crt, key, isoShop, isoAPI)), 0o600); err != nil {
		return err
	}
	gwArgs := []string{"gateway", "--config", gw, "--data-dir", filepath.Join(l.dir, "edge"), "--server", l.addr(l.control, isoServer),
		"--node", "edge", "--join-file", l.tokens["edge"], "--mesh-listen", l.addr(l.edge, isoMesh), "--firewall", l.mode}
	if !l.egress {
		gwArgs = append(gwArgs, "--serve-egress", "egress", "--egress-resolver", l.addr(l.internet, 53))
	}
	if err := l.spawn("gateway", l.edge, gwArgs...); err != nil {
		return err
	}
	if l.egress {
		if err := l.startEgress(); err != nil {
			return err
		}
	}
	for _, n := range []string{"app", "db"} {
		if err := l.startAgent(n, l.tokens[n], l.mode); err != nil {
			return err
		}
	}
	return nil
}

// startEgress runs "moat egress" on the egress host.
func (l *isoLab) startEgress() error {
	return l.spawn("egress", l.egressHost, "egress", "--data-dir", filepath.Join(l.dir, "egress"), "--server", l.addr(l.control, isoServer),
		"--node", "egress", "--join-file", l.tokens["egress"], "--listen", l.addr(l.egressHost, isoMesh), "--firewall", l.mode,
		"--resolver", l.addr(l.internet, 53))
}

// startAgent runs the agent of node n (its token file is needed on first
// start only).
func (l *isoLab) startAgent(n, tokenFile, mode string) error {
	h := map[string]*netlab.Host{"app": l.app, "db": l.db}[n]
	args := []string{"agent", "--data-dir", filepath.Join(l.dir, n), "--server", l.addr(l.control, isoServer), "--node", n,
		"--listen", l.addr(h, isoMesh), "--firewall", mode}
	if tokenFile != "" {
		args = append(args, "--join-file", tokenFile)
	}
	if n == "app" {
		args = append(args, "--egress-proxy", fmt.Sprintf("127.0.0.1:%d", isoProxy))
	}
	return l.spawn(n, h, args...)
}

func (l *isoLab) applyPolicy(ctx context.Context, doc string) error {
	f := filepath.Join(l.dir, "intentions.yaml")
	if err := os.WriteFile(f, []byte(doc), 0o600); err != nil {
		return err
	}
	_, err := l.moat(ctx, l.control, "policy", "apply", "-f", f)
	return err
}

// Close stops every process and deletes every namespace and file.
func (l *isoLab) Close() error {
	l.mu.Lock()
	var names []string
	for n := range l.procs {
		names = append(names, n)
	}
	l.mu.Unlock()
	for _, n := range names {
		l.stop(n, false)
	}
	for _, c := range l.closers {
		_ = c.Close()
	}
	var errs []error
	if l.lab != nil {
		errs = append(errs, l.lab.Close())
	}
	if l.dir != "" {
		errs = append(errs, os.RemoveAll(l.dir))
		_ = os.RemoveAll(l.dir + ".admin")
	}
	return errors.Join(errs...)
}

// dial opens a TCP connection from h to addr (one second at most) and
// reads what the server says first, if anything, within a second.
func (l *isoLab) dial(h *netlab.Host, addr string) error {
	return h.Do(func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// read connects from h to addr and returns its greeting.
func (l *isoLab) read(h *netlab.Host, addr string) (string, error) {
	var c net.Conn
	if err := h.Do(func() (err error) { c, err = net.DialTimeout("tcp", addr, time.Second); return err }); err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if line == "" && err != nil {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

// get fetches https://host/ from h: through the egress proxy when
// proxy is set, else straight to addr (the gateway's address).
func (l *isoLab) get(h *netlab.Host, host, addr string, proxy bool) (string, error) {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: l.roots}, DisableKeepAlives: true}
	dial := func(ctx context.Context, network, a string) (c net.Conn, err error) {
		err = h.Do(func() error {
			d := net.Dialer{Timeout: time.Second}
			c, err = d.DialContext(ctx, network, a)
			return err
		})
		return c, err
	}
	tr.DialContext = dial
	if proxy {
		tr.Proxy = http.ProxyURL(&url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", isoProxy)})
	} else {
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) { return dial(ctx, network, addr) }
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: tr}
	resp, err := c.Get("https://" + host + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return strings.TrimSpace(string(b)), nil
}

// isoCheck is one line of the demo: a path, whether it should work, and
// the probe.
type isoCheck struct {
	what  string
	want  bool
	probe func() (string, error)
}

func (l *isoLab) checks() []isoCheck {
	db, site := l.addr(l.db, isoDB), l.addr(l.internet, 443)
	return []isoCheck{
		{"internet → gateway (edge, HTTPS) → mesh → api", true, func() (string, error) {
			return l.get(l.internet, isoShop, l.addr(l.edge, isoHTTPS), false)
		}},
		{"internet → db backend bound to 0.0.0.0 (" + db + ")", false, func() (string, error) { return l.read(l.internet, db) }},
		{"app → db backend directly (" + db + ")", false, func() (string, error) { return l.read(l.app, db) }},
		{"app → db through the mesh (api's upstream, allowed port)", true, func() (string, error) {
			return l.read(l.app, fmt.Sprintf("127.0.0.1:%d", isoDBLocal))
		}},
		{"db → internet (" + site + ")", false, func() (string, error) { return l.read(l.db, site) }},
		{"app → internet directly (" + site + ")", false, func() (string, error) { return l.read(l.app, site) }},
		{"api → " + isoSite + " via the egress gateway (allowed)", true, func() (string, error) { return l.get(l.app, isoSite, "", true) }},
		{"api → " + isoSite + " through its external upstream (127.0.0.1:" + fmt.Sprint(isoSiteLocal) + ")", true, func() (string, error) {
			return l.get(l.app, isoSite, fmt.Sprintf("127.0.0.1:%d", isoSiteLocal), false)
		}},
		{"api → " + isoOther + " via the egress gateway (no rule)", false, func() (string, error) { return l.get(l.app, isoOther, "", true) }},
		{"api → " + site + " via the egress gateway (the name's address)", false, func() (string, error) {
			return l.get(l.app, site, "", true)
		}},
	}
}

// ready waits until every node's host firewall is in force in the lab's
// mode and the paths that should work do. A node's agent serves the mesh
// and installs its firewall side by side: a working path through a node
// says nothing of its firewall, and a path that must be dropped, probed
// before the table is in, would pass.
func (l *isoLab) ready(ctx context.Context) error {
	hosts := []*netlab.Host{l.edge, l.app, l.db}
	if l.egress {
		hosts = append(hosts, l.egressHost)
	}
	for _, h := range hosts {
		var last string
		if err := waitUntil(ctx, 90*time.Second, func() bool {
			var ok bool
			ok, last = firewallIn(h.Path(), firewall.Mode(l.mode))
			return ok
		}); err != nil {
			return fmt.Errorf("the host firewall of %s never went to %s (last: %s)", h.Name, l.mode, last)
		}
	}
	for _, c := range l.checks() {
		if !c.want {
			continue
		}
		var last error
		if err := waitUntil(ctx, 90*time.Second, func() bool { _, last = c.probe(); return last == nil }); err != nil {
			return fmt.Errorf("%s never worked (last: %v)", c.what, last)
		}
	}
	return nil
}

// waitUntil polls ok every 100ms until it holds, ctx ends or d passes.
func waitUntil(ctx context.Context, d time.Duration, ok func() bool) error {
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

func isoCert(names ...string) (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}

// isoGatewayCert writes the gateway's certificate and key (the site's
// own, so that the lab's one pool trusts both).
func isoGatewayCert(dir string, cert tls.Certificate) (keyFile, certFile string, err error) {
	kd, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return "", "", err
	}
	keyFile, certFile = filepath.Join(dir, "edge.key"), filepath.Join(dir, "edge.crt")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		return "", "", err
	}
	return keyFile, certFile, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600)
}
