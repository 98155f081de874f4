//go:build unix

// Package process runs the moat binary, built from cmd/moat, as an
// operator does: a sealed control plane made by "moat server init", agents
// joined with tokens, admin commands against the running server, and
// signals sent to the processes. (internal/e2e runs whole systems in one
// process; these need separate processes to kill and to measure.)
package process

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"moat/internal/flow"
	"moat/internal/seal"
)

var (
	buildOnce sync.Once
	builtMoat string
	buildErr  error
)

// TestMain removes the built binary when the tests are done.
func TestMain(m *testing.M) {
	code := m.Run()
	if builtMoat != "" {
		_ = os.RemoveAll(filepath.Dir(builtMoat))
	}
	os.Exit(code)
}

// moatBin builds cmd/moat once for the test binary.
func moatBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "moat-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtMoat = filepath.Join(dir, "moat")
		out, err := exec.Command("go", "build", "-o", builtMoat, "moat/cmd/moat").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build moat/cmd/moat: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtMoat
}

// syncBuffer collects a process's output while the test reads it.
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

// proc is a moat process the test started.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer // stdout and stderr
	done chan struct{}
	err  error // set before done closes
}

// wait waits (boundedly) for the process to exit and returns how it ended.
func (p *proc) wait(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(within):
		t.Fatalf("%s still running %v after it was told to stop", p.name, within)
		return nil
	}
}

// waitLog waits for a line of the process's output matching re and returns
// its submatches.
func (p *proc) waitLog(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(p.out.String()); m != nil {
			return m
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited (%v) before logging %q:\n%s", p.name, p.err, re, p.out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("%s never logged %q:\n%s", p.name, re, p.out.String())
	return nil
}

// fleet is a control plane and the processes around it, in one directory.
type fleet struct {
	t      *testing.T
	bin    string
	dir    string
	srvDir string
	addr   string // the control plane's address
	env    []string
}

var listening = regexp.MustCompile(`msg="control plane listening" addr=(\S+)`)

// newFleet inits a sealed control plane and runs it on a port the kernel
// picks. Every process is stopped when the test ends.
func newFleet(t *testing.T) *fleet {
	t.Helper()
	f := &fleet{t: t, bin: moatBin(t), dir: t.TempDir()}
	f.srvDir = filepath.Join(f.dir, "server")
	f.env = append(os.Environ(), "MOAT_ADMIN_DIR="+f.srvDir+".admin")
	f.moat("server", "init", "--data-dir", f.srvDir, "--trust-domain", "example.org")
	srv := f.start("server", "server", "run", "--data-dir", f.srvDir, "--listen", "127.0.0.1:0")
	f.addr = srv.waitLog(t, listening)[1]
	f.env = append(f.env, "MOAT_SERVER="+f.addr)
	return f
}

// moat runs a command to completion and returns its stdout.
func (f *fleet) moat(args ...string) string {
	f.t.Helper()
	out, err := f.try(args...)
	if err != nil {
		f.t.Fatalf("moat %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// try runs a command to completion; the error carries its stderr.
func (f *fleet) try(args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(f.bin, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = f.env, &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, stderr.String())
	}
	return stdout.String(), nil
}

// start runs a long-lived command in the background.
func (f *fleet) start(name string, args ...string) *proc {
	f.t.Helper()
	p := &proc{name: name, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(f.bin, args...)
	p.cmd.Env, p.cmd.Stdout, p.cmd.Stderr = f.env, p.out, p.out
	if err := p.cmd.Start(); err != nil {
		f.t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	f.t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if f.t.Failed() {
			f.t.Logf("%s output:\n%s", name, p.out.String())
		}
	})
	return p
}

// agent runs "moat agent" for node, joining with a new token when its data
// directory holds no identity yet.
func (f *fleet) agent(node, meshAddr string, extra ...string) *proc {
	f.t.Helper()
	dataDir := filepath.Join(f.dir, node)
	args := []string{"agent", "--data-dir", dataDir, "--server", f.addr, "--node", node, "--listen", meshAddr}
	if _, err := os.Stat(filepath.Join(dataDir, "node")); err != nil {
		args = append(args, "--join", strings.TrimSpace(f.moat("token", "create", "--node", node)))
	}
	return f.start(node, append(args, extra...)...)
}

// freePorts returns n distinct free loopback ports below the kernel's
// ephemeral range (32768 and up here), where ports other tests get from
// ":0" are not handed out, so a port found free stays free. Registrations
// and mesh addresses must name their ports before anything listens.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var out []int
	for attempt := 0; len(out) < n && attempt < 1000; attempt++ {
		p := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		l.Close()
		dup := false
		for _, q := range out {
			dup = dup || q == p
		}
		if !dup {
			out = append(out, p)
		}
	}
	if len(out) < n {
		t.Fatal("no free ports")
	}
	return out
}

func loopback(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// app is a line-echo server on loopback that counts connections it
// accepted and connections whose request reached it.
type app struct {
	ln                net.Listener
	mu                sync.Mutex // guards accepted, requested
	accepted, request int
	hold              chan struct{} // closed to release held connections
}

func startApp(t *testing.T) *app {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &app{ln: ln, hold: make(chan struct{})}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			a.mu.Lock()
			a.accepted++
			a.mu.Unlock()
			go a.serve(c)
		}
	}()
	return a
}

// serve answers each line with "ok LINE"; the line "hold" is answered and
// then the connection is kept open until the app is released.
func (a *app) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	first := true
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if first {
			first = false
			a.mu.Lock()
			a.request++
			a.mu.Unlock()
		}
		if _, err := fmt.Fprintf(c, "ok %s", line); err != nil {
			return
		}
		if line == "hold\n" {
			<-a.hold
			return
		}
	}
}

func (a *app) port() int { return a.ln.Addr().(*net.TCPAddr).Port }

func (a *app) counts() (accepted, requested int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.accepted, a.request
}

// ask sends one line through addr and reads the answer.
func ask(addr, line string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "%s\n", line); err != nil {
		return "", err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSuffix(got, "\n"), err
}

// eventually polls cond until it holds, failing after a generous bound; it
// measures nothing.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// storedFlows reads the records the server stored, opening its flow store
// with its key-encryption key as an operator with the key can.
// ("moat flows --data-dir" reads only an unsealed store.)
func (f *fleet) storedFlows(filter flow.Filter) []flow.Record {
	f.t.Helper()
	kek, err := seal.OpenKeyFile(f.srvDir + ".kek")
	if err != nil {
		f.t.Fatal(err)
	}
	kr, err := seal.Open(seal.Config{Dir: f.srvDir, KEK: kek, NoCreate: true})
	if err != nil {
		f.t.Fatal(err)
	}
	st, err := flow.OpenStore(flow.StoreConfig{Dir: filepath.Join(f.srvDir, "flows"), ReadOnly: true, Sealer: kr.AEAD()})
	if err != nil {
		f.t.Fatal(err)
	}
	defer st.Close()
	recs, err := st.Query(context.Background(), filter)
	if err != nil {
		f.t.Fatal(err)
	}
	return recs
}

// spoolSegments lists the spool files in an agent's data directory.
func (f *fleet) spoolSegments(node string) []string {
	m, _ := filepath.Glob(filepath.Join(f.dir, node, "spool", "spool-*"))
	return m
}

func signal(t *testing.T, p *proc, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %s: %v", p.name, err)
	}
}
