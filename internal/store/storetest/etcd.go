// Package storetest starts the real backends the store talks to, for tests
// of any package that needs one.
package storetest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"moat/internal/testkit"
)

// WaitLimit bounds every wait on a backend so that a broken one fails the
// test instead of hanging it. It is a guard, not a speed requirement.
const WaitLimit = 20 * time.Second

// FreePort returns a loopback port that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// StartEtcd runs a real single-member etcd server for the test on loopback
// ports with its data in a temporary directory, waits until it reports
// healthy, and returns its client URL. The server stops when the test ends.
// The etcd binary comes from the Debian package etcd-server, which
// scripts/test installs; without it the test fails.
func StartEtcd(tb testing.TB) string {
	tb.Helper()
	return StartEtcdCluster(tb, 1)[0].URL
}

// EtcdMember is one member of a cluster StartEtcdCluster started.
type EtcdMember struct {
	// Name is the member's name in the cluster, URL its client URL.
	Name, URL string
	bin       string
	args      []string     // the command line, kept for Restart
	client    *http.Client // for the health check
	cmd       *exec.Cmd
	out       *testkit.Buffer // every run's output
	exited    chan struct{}   // closed once the current run has exited
	err       error           // how it exited, once exited is closed
}

// run starts the member's process; exited closes when it ends.
func (m *EtcdMember) run() error {
	m.exited = make(chan struct{})
	m.cmd = exec.Command(m.bin, m.args...)
	m.cmd.Stdout, m.cmd.Stderr = m.out, m.out
	if err := m.cmd.Start(); err != nil {
		m.cmd = nil
		close(m.exited)
		return fmt.Errorf("start %s: %w", m.bin, err)
	}
	cmd, exited := m.cmd, m.exited
	go func() {
		m.err = cmd.Wait()
		close(exited)
	}()
	return nil
}

// Stop kills the member, as a crash would, and returns once the process
// is gone: from then on its client port refuses connections.
func (m *EtcdMember) Stop() {
	if m.cmd != nil {
		_ = m.cmd.Process.Kill()
	}
	<-m.exited
}

// Exited reports whether the member's process has ended.
func (m *EtcdMember) Exited() bool {
	select {
	case <-m.exited:
		return true
	default:
		return false
	}
}

// Restart starts a stopped member again on its data directory, with the
// flags it was first started with, and returns once it reports healthy.
func (m *EtcdMember) Restart(tb testing.TB) {
	tb.Helper()
	m.Stop()
	if err := m.run(); err != nil {
		tb.Fatalf("restart etcd member %s: %v", m.Name, err)
	}
	if err := m.waitHealthy(time.Now().Add(WaitLimit)); err != nil {
		tb.Fatal(err)
	}
}

// Pause freezes the member's process (SIGSTOP): it takes connections and
// answers nothing, and the others go on without it. Continue lets it run
// again; a member paused while the others wrote, and continued once they
// are gone, answers reads of its own copy from before their writes, as a
// member cut off from its cluster does.
func (m *EtcdMember) Pause(tb testing.TB) {
	tb.Helper()
	if err := m.cmd.Process.Signal(sigStop); err != nil {
		tb.Fatalf("pause etcd member %s: %v", m.Name, err)
	}
}

// Continue lets a paused member run again (SIGCONT).
func (m *EtcdMember) Continue(tb testing.TB) {
	tb.Helper()
	if err := m.cmd.Process.Signal(sigCont); err != nil {
		tb.Fatalf("continue etcd member %s: %v", m.Name, err)
	}
}

// waitHealthy waits until the member reports healthy, it exits, or the
// deadline passes.
func (m *EtcdMember) waitHealthy(deadline time.Time) error {
	client := m.client
	for {
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd member %s at %s not healthy in time:\n%s", m.Name, m.URL, m.Output())
		}
		select {
		case <-m.exited:
			return fmt.Errorf("etcd member %s exited early (%v):\n%s", m.Name, m.err, m.Output())
		case <-time.After(50 * time.Millisecond):
		}
		if healthy(client, m.URL) {
			return nil
		}
	}
}

// Output is what the member has written so far.
func (m *EtcdMember) Output() string { return m.out.String() }

// StartEtcdCluster runs a real etcd cluster of n members for the test, as
// StartEtcd runs one, and returns once every member reports healthy (a
// leader elected). extra flags follow the defaults on every member's
// command line (etcd takes the last of a flag given twice). The members
// stop when the test ends, and their output is logged if it failed.
func StartEtcdCluster(tb testing.TB, n int, extra ...string) []*EtcdMember {
	tb.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		tb.Fatalf("etcd binary not found: install the etcd-server package (scripts/test does): %v", err)
	}
	return startEtcdCluster(tb, bin, n, nil, extra)
}

// EtcdTLSFiles are the PEM files of an etcd cluster that takes clients
// over TLS only, and only with a certificate its CA signed.
type EtcdTLSFiles struct {
	// CA signed the members' and the client's certificates.
	CA string
	// Cert and Key are a client certificate and key the members accept.
	Cert, Key string
	// OtherCert and OtherKey are a client certificate and key of another
	// CA, which the members refuse.
	OtherCert, OtherKey string
}

// StartEtcdClusterTLS runs a real etcd cluster of n members as
// StartEtcdCluster does, whose client URLs are https:// on 127.0.0.1 and
// which require a client certificate of its own CA (--client-cert-auth),
// as a production cluster does. The certificates are made here, in a
// temporary directory.
func StartEtcdClusterTLS(tb testing.TB, n int, extra ...string) ([]*EtcdMember, EtcdTLSFiles) {
	tb.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		tb.Fatalf("etcd binary not found: install the etcd-server package (scripts/test does): %v", err)
	}
	files, server, err := makeEtcdCerts(tb.TempDir())
	if err != nil {
		tb.Fatalf("etcd certificates: %v", err)
	}
	return startEtcdCluster(tb, bin, n, &etcdTLS{files: files, serverCert: server[0], serverKey: server[1]}, extra), files
}

type etcdTLS struct {
	files                 EtcdTLSFiles
	serverCert, serverKey string
}

func startEtcdCluster(tb testing.TB, bin string, n int, tlsOn *etcdTLS, extra []string) []*EtcdMember {
	tb.Helper()
	var lastErr error
	// A port picked free may be taken before etcd binds it; try again then.
	for attempt := 1; attempt <= 3; attempt++ {
		ms, err := tryStartEtcd(tb, bin, n, attempt, tlsOn, extra)
		if err == nil {
			return ms
		}
		lastErr = err
		tb.Logf("etcd start attempt %d: %v", attempt, err)
	}
	tb.Fatalf("etcd did not start: %v", lastErr)
	return nil
}

func tryStartEtcd(tb testing.TB, bin string, n, attempt int, tlsOn *etcdTLS, extra []string) ([]*EtcdMember, error) {
	ms := make([]*EtcdMember, n)
	peers := make([]string, n)
	var initial []string
	scheme, client := "http", &http.Client{Timeout: time.Second}
	if tlsOn != nil {
		scheme = "https"
		tc, err := tlsOn.files.clientConfig()
		if err != nil {
			return nil, err
		}
		client.Transport = &http.Transport{TLSClientConfig: tc}
		extra = append([]string{"--cert-file", tlsOn.serverCert, "--key-file", tlsOn.serverKey,
			"--trusted-ca-file", tlsOn.files.CA, "--client-cert-auth"}, extra...)
	}
	for i := range ms {
		ms[i] = &EtcdMember{Name: fmt.Sprintf("moat-test-%d", i+1), URL: fmt.Sprintf("%s://127.0.0.1:%d", scheme, FreePort(tb)),
			bin: bin, out: &testkit.Buffer{}, client: client}
		peers[i] = fmt.Sprintf("http://127.0.0.1:%d", FreePort(tb))
		initial = append(initial, ms[i].Name+"="+peers[i])
	}
	stopAll := func() {
		for _, m := range ms {
			if m.exited != nil {
				m.Stop()
			}
		}
	}
	for i, m := range ms {
		m.args = append([]string{
			"--name", m.Name,
			"--data-dir", tb.TempDir(),
			"--listen-client-urls", m.URL,
			"--advertise-client-urls", m.URL,
			"--listen-peer-urls", peers[i],
			"--initial-advertise-peer-urls", peers[i],
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new",
			"--initial-cluster-token", fmt.Sprintf("moat-test-%p-%d", tb, attempt),
			"--heartbeat-interval", "100",
			"--election-timeout", "1000",
			"--logger", "zap",
			"--log-level", "error",
		}, extra...)
		if err := m.run(); err != nil {
			stopAll()
			return nil, err
		}
	}
	deadline := time.Now().Add(startLimit(extra))
	for _, m := range ms {
		if err := m.waitHealthy(deadline); err != nil {
			stopAll()
			return nil, err
		}
	}
	tb.Cleanup(func() {
		stopAll()
		if tb.Failed() {
			for _, m := range ms {
				out := m.Output()
				if len(out) > 6000 {
					out = "…" + out[len(out)-6000:]
				}
				tb.Logf("--- etcd member %s output:\n%s", m.Name, out)
			}
		}
	})
	return ms, nil
}

// startLimit bounds the wait for a new cluster's first leader: WaitLimit,
// plus two election timeouts when extra sets a long one (a member's first
// campaign may wait for a whole randomised timeout).
func startLimit(extra []string) time.Duration {
	limit := WaitLimit
	for i := 0; i+1 < len(extra); i++ {
		if extra[i] == "--election-timeout" {
			if ms, err := strconv.Atoi(extra[i+1]); err == nil && ms > 0 {
				limit += 2 * time.Duration(ms) * time.Millisecond
			}
		}
	}
	return limit
}

// healthy reports whether the etcd member at url says it is healthy.
func healthy(client *http.Client, url string) bool {
	resp, err := client.Get(url + "/health")
	if err != nil {
		return false
	}
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK && strings.Contains(body.String(), `"health":"true"`)
}
