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
	bin, err := exec.LookPath("etcd")
	if err != nil {
		tb.Fatalf("etcd binary not found: install the etcd-server package (scripts/test does): %v", err)
	}
	var lastErr error
	// A port picked free may be taken before etcd binds it; try again then.
	for attempt := 1; attempt <= 3; attempt++ {
		url, err := tryStartEtcd(tb, bin)
		if err == nil {
			return url
		}
		lastErr = err
		tb.Logf("etcd start attempt %d: %v", attempt, err)
	}
	tb.Fatalf("etcd did not start: %v", lastErr)
	return ""
}

func tryStartEtcd(tb testing.TB, bin string) (string, error) {
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", FreePort(tb))
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", FreePort(tb))
	cmd := exec.Command(bin,
		"--name", "moat-test",
		"--data-dir", tb.TempDir(),
		"--listen-client-urls", clientURL,
		"--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL,
		"--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "moat-test="+peerURL,
		"--initial-cluster-state", "new",
		"--logger", "zap",
		"--log-level", "error",
	)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(WaitLimit)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return "", fmt.Errorf("etcd exited early (%v):\n%s", err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		resp, err := client.Get(clientURL + "/health")
		if err != nil {
			continue
		}
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && strings.Contains(body.String(), `"health":"true"`) {
			tb.Cleanup(stop)
			return clientURL, nil
		}
	}
	stop()
	return "", fmt.Errorf("etcd at %s not healthy after %v:\n%s", clientURL, WaitLimit, out.String())
}
