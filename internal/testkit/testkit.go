// Package testkit holds what the tests of several packages share: bounded
// waits for an event, an output buffer safe for a writer and a reader at
// once, and loopback ports handed out once per process. Only tests import it.
package testkit

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// WaitLimit bounds every wait: a guard against hangs, not a speed claim.
const WaitLimit = 60 * time.Second

// WaitFor polls cond until it holds, failing t after WaitLimit.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	WaitWithin(t, WaitLimit, what, cond)
}

// WaitWithin polls cond until it holds, failing t after d.
func WaitWithin(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitForDetail is WaitFor for a condition that says what it last saw, so
// that a timeout names it.
func WaitForDetail(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(WaitLimit)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last: %s", WaitLimit, what, detail)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Buffer is a bytes.Buffer safe for a command writing while the test reads.
type Buffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Ports hands out loopback ports from [from, to), each once per process.
// The range is meant to lie below the kernel's ephemeral range (32768 and
// up), where other tests' 127.0.0.1:0 listeners never land, and to differ
// between packages whose test binaries go test runs in parallel. It is for
// ports a configuration must name before the listener exists; everything
// else listens on 127.0.0.1:0. The ranges taken: bench/identity,
// bench/gateway and bench/mesh (run one after the other by the bench
// smoke test) 10000-13999, internal/e2e 14000-17999,
// internal/mesh 18000-18999, this package's own test 19000-19039,
// internal/flow/flowstore 19100-19199, internal/detect 19200-19299,
// internal/server 19300-19399, internal/faults 20000-25999, internal/cli 26000-31999.
type Ports struct {
	from, to int
	mu       sync.Mutex // guards given
	// given are the ports handed out: a port probed free is not bound
	// until its process starts, and another caller meanwhile would find it
	// free too.
	given map[int]bool
}

// NewPorts returns a Ports over [from, to).
func NewPorts(from, to int) *Ports {
	return &Ports{from: from, to: to, given: map[int]bool{}}
}

// Run returns the first of n consecutive ports that were free a moment ago
// and that this Ports never handed out.
func (p *Ports) Run(n int) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for attempt := 0; attempt < 200; attempt++ {
		base := p.from + rand.IntN(p.to-p.from-n)
		if p.free(base, n) {
			for i := 0; i < n; i++ {
				p.given[base+i] = true
			}
			return base, nil
		}
	}
	return 0, fmt.Errorf("no run of %d free ports in %d-%d", n, p.from, p.to-1)
}

// Distinct returns n ports, not necessarily consecutive, that were free a
// moment ago and that this Ports never handed out.
func (p *Ports) Distinct(n int) ([]int, error) {
	out := make([]int, 0, n)
	for len(out) < n {
		port, err := p.Run(1)
		if err != nil {
			return nil, err
		}
		out = append(out, port)
	}
	return out, nil
}

func (p *Ports) free(base, n int) bool {
	for i := 0; i < n; i++ {
		if p.given[base+i] {
			return false
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+i))
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}
