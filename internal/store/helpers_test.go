package store

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
)

// waitLimit bounds every wait in these tests so a broken store fails the
// test instead of hanging it. It is a guard, not a speed requirement.
const waitLimit = 20 * time.Second

// newSealer returns a real tink AES-256-GCM AEAD with a fresh key.
func newSealer(tb testing.TB) Sealer {
	tb.Helper()
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		tb.Fatalf("tink keyset: %v", err)
	}
	a, err := aead.New(h)
	if err != nil {
		tb.Fatalf("tink aead: %v", err)
	}
	return a
}

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

// freePort returns a loopback port that was free a moment ago.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startEtcd runs a real single-member etcd server for the test on loopback
// ports with its data in a temporary directory, waits until it reports
// healthy, and returns its client URL. The server stops when the test ends.
// The etcd binary comes from the Debian package etcd-server, which
// scripts/test installs; without it the test fails.
func startEtcd(tb testing.TB) string {
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
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", freePort(tb))
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", freePort(tb))
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
	deadline := time.Now().Add(waitLimit)
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
	return "", fmt.Errorf("etcd at %s not healthy after %v:\n%s", clientURL, waitLimit, out.String())
}

// openEtcdPrefix opens an Etcd store on url under prefix, closed with the test.
func openEtcdPrefix(tb testing.TB, url, prefix string, sealer Sealer) *Etcd {
	tb.Helper()
	s, err := OpenEtcd(context.Background(), EtcdConfig{Endpoints: []string{url}, Prefix: prefix, Sealer: sealer})
	if err != nil {
		tb.Fatalf("OpenEtcd: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// openBolt opens a Bolt store in dir, closed with the test.
func openBolt(tb testing.TB, cfg BoltConfig) *Bolt {
	tb.Helper()
	s, err := OpenBolt(cfg)
	if err != nil {
		tb.Fatalf("OpenBolt: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// next receives one event or fails the test.
func next(t *testing.T, ch <-chan Event) Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatalf("watch channel closed, want an event")
		}
		return ev
	case <-time.After(waitLimit):
		t.Fatalf("no watch event within %v", waitLimit)
	}
	return Event{}
}

// closed waits for ch to close, discarding what comes before, or fails.
func waitClosed(t *testing.T, ch <-chan Event) []Event {
	t.Helper()
	var got []Event
	timeout := time.After(waitLimit)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return got
			}
			got = append(got, ev)
		case <-timeout:
			t.Fatalf("watch channel still open after %v", waitLimit)
		}
	}
}
