package cli

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a bytes.Buffer safe for a command writing while the test reads.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runCLI runs moat with args and returns its exit code, stdout and stderr.
func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb syncBuffer
	code := Run(context.Background(), &Env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(""),
		Getenv: func(k string) string { return env[k] }}, args)
	return code, out.String(), errb.String()
}

// Ports below the kernel's ephemeral range, split with internal/faults (which
// takes 20000-25999) so that the two packages' test binaries, run in
// parallel, never hand out the same one.
const portsFrom, portsTo = 26000, 32000

var (
	portsMu sync.Mutex // guards portsGiven
	// portsGiven are the ports freePorts has handed out in this process, so
	// that two tests never get the same one.
	portsGiven = map[int]bool{}
)

// freePorts returns n distinct ports that were free a moment ago, below
// the kernel's ephemeral range (where the 127.0.0.1:0 listeners of other
// tests never land). It is for ports a configuration must name before the
// listener exists (a registration's upstream port, a peer's mesh address);
// everything else listens on 127.0.0.1:0.
func freePorts(fatalf func(string, ...any), n int) []int {
	portsMu.Lock()
	defer portsMu.Unlock()
	var out []int
	for attempt := 0; len(out) < n; attempt++ {
		if attempt > 1000 {
			fatalf("no free port below the ephemeral range")
		}
		p := portsFrom + rand.IntN(portsTo-portsFrom)
		if portsGiven[p] {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		l.Close()
		portsGiven[p] = true
		out = append(out, p)
	}
	return out
}

// freePortRun is freePorts for n consecutive ports (moat dev --port-base).
func freePortRun(fatalf func(string, ...any), n int) int {
	portsMu.Lock()
	defer portsMu.Unlock()
	for attempt := 0; attempt < 200; attempt++ {
		base := portsFrom + rand.IntN(portsTo-portsFrom-n)
		ok := true
		for i := 0; i < n && ok; i++ {
			if portsGiven[base+i] {
				ok = false
				break
			}
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+i))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			for i := 0; i < n; i++ {
				portsGiven[base+i] = true
			}
			return base
		}
	}
	fatalf("no run of %d free ports", n)
	return 0
}
