// Package storetest starts the real backends the store talks to, for tests
// of any package that needs one.
package storetest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// WaitLimit bounds every wait on a backend so that a broken one fails the
// test instead of hanging it. It is a guard, not a speed requirement.
const WaitLimit = 20 * time.Second

// lockedBuffer collects a child process's output from two pipes at once.
type lockedBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

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
	cmd       *exec.Cmd
	out       *lockedBuffer
	exited    chan struct{} // closed once the process has exited
	err       error         // how it exited, once exited is closed
}

// Stop kills the member, as a crash would, and returns once the process
// is gone: from then on its client port refuses connections.
func (m *EtcdMember) Stop() {
	_ = m.cmd.Process.Kill()
	<-m.exited
}

// Output is what the member has written so far.
func (m *EtcdMember) Output() string { return m.out.String() }

// StartEtcdCluster runs a real etcd cluster of n members for the test, as
// StartEtcd runs one, and returns once every member reports healthy (a
// leader elected). The members stop when the test ends.
func StartEtcdCluster(tb testing.TB, n int) []*EtcdMember {
	tb.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		tb.Fatalf("etcd binary not found: install the etcd-server package (scripts/test does): %v", err)
	}
	var lastErr error
	// A port picked free may be taken before etcd binds it; try again then.
	for attempt := 1; attempt <= 3; attempt++ {
		ms, err := tryStartEtcd(tb, bin, n, attempt)
		if err == nil {
			return ms
		}
		lastErr = err
		tb.Logf("etcd start attempt %d: %v", attempt, err)
	}
	tb.Fatalf("etcd did not start: %v", lastErr)
	return nil
}

func tryStartEtcd(tb testing.TB, bin string, n, attempt int) ([]*EtcdMember, error) {
	ms := make([]*EtcdMember, n)
	peers := make([]string, n)
	var initial []string
	for i := range ms {
		ms[i] = &EtcdMember{Name: fmt.Sprintf("moat-test-%d", i+1), URL: fmt.Sprintf("http://127.0.0.1:%d", FreePort(tb)),
			out: &lockedBuffer{}, exited: make(chan struct{})}
		peers[i] = fmt.Sprintf("http://127.0.0.1:%d", FreePort(tb))
		initial = append(initial, ms[i].Name+"="+peers[i])
	}
	stopAll := func() {
		for _, m := range ms {
			if m.cmd != nil {
				m.Stop()
			}
		}
	}
	for i, m := range ms {
		m.cmd = exec.Command(bin,
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
		)
		m.cmd.Stdout, m.cmd.Stderr = m.out, m.out
		if err := m.cmd.Start(); err != nil {
			m.cmd = nil
			stopAll()
			return nil, fmt.Errorf("start %s: %w", bin, err)
		}
		go func() {
			m.err = m.cmd.Wait()
			close(m.exited)
		}()
	}
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(WaitLimit)
	for _, m := range ms {
		for {
			if time.Now().After(deadline) {
				stopAll()
				return nil, fmt.Errorf("etcd member %s at %s not healthy after %v:\n%s", m.Name, m.URL, WaitLimit, m.Output())
			}
			select {
			case <-m.exited:
				stopAll()
				return nil, fmt.Errorf("etcd member %s exited early (%v):\n%s", m.Name, m.err, m.Output())
			case <-time.After(50 * time.Millisecond):
			}
			if healthy(client, m.URL) {
				break
			}
		}
	}
	tb.Cleanup(stopAll)
	return ms, nil
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
