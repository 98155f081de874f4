package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// proc is a process the harness started; everything is stopped at exit.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *lockedBuffer
}

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

type procs struct {
	mu  sync.Mutex // guards all
	all []*proc
}

func (ps *procs) start(name string, env []string, bin string, args ...string) (*proc, error) {
	p := &proc{name: name, out: &lockedBuffer{}}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	ps.mu.Lock()
	ps.all = append(ps.all, p)
	ps.mu.Unlock()
	return p, nil
}

// stopAll ends every process the harness started, by its own pid.
func (ps *procs) stopAll() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, p := range ps.all {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	}
	ps.all = nil
}

// waitOutput waits for re in the process's output and returns the
// submatches.
func (p *proc) waitOutput(re *regexp.Regexp, within time.Duration) ([]string, error) {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(p.out.String()); m != nil {
			return m, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, fmt.Errorf("%s never printed %q:\n%s", p.name, re, p.out.String())
}

// usage is what /proc says of a process: resident set and CPU time.
type usage struct {
	rssKB  int64 // VmRSS
	anonKB int64 // of rssKB, anonymous pages (heap, stacks): RssAnon
	fileKB int64 // of rssKB, file-backed pages (the executable, libraries): RssFile
	cpu    time.Duration
}

func usageOf(pid int) usage {
	var u usage
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 2 {
				continue
			}
			switch f[0] {
			case "VmRSS:":
				u.rssKB, _ = strconv.ParseInt(f[1], 10, 64)
			case "RssAnon:":
				u.anonKB, _ = strconv.ParseInt(f[1], 10, 64)
			case "RssFile:":
				u.fileKB, _ = strconv.ParseInt(f[1], 10, 64)
			}
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// Fields after the command name, which is in parentheses.
		if i := bytes.LastIndexByte(b, ')'); i > 0 {
			f := strings.Fields(string(b[i+2:]))
			if len(f) > 12 {
				ut, _ := strconv.ParseInt(f[11], 10, 64)
				st, _ := strconv.ParseInt(f[12], 10, 64)
				u.cpu = time.Duration(ut+st) * time.Second / 100 // USER_HZ
			}
		}
	}
	return u
}

// waited is how long the processes' threads, runnable, waited for a core
// since they started: the second figure of each /proc/PID/task/TID/schedstat
// (nanoseconds), summed. Threads that ended are not counted, which the
// proxies' and the backends' (started before any load) are not.
func waited(pids ...int) time.Duration {
	var t time.Duration
	for _, pid := range pids {
		stats, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
		for _, s := range stats {
			b, err := os.ReadFile(s)
			if err != nil {
				continue
			}
			if f := strings.Fields(string(b)); len(f) >= 2 {
				ns, _ := strconv.ParseInt(f[1], 10, 64)
				t += time.Duration(ns)
			}
		}
	}
	return t
}

// hostTicks reads the whole host's CPU time from /proc/stat, in USER_HZ
// ticks summed over its cores: busy (every state but idle and iowait) and
// idle.
func hostTicks() (busy, idle int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0
	}
	for i, v := range f[1:9] { // user nice system idle iowait irq softirq steal
		n, _ := strconv.ParseInt(v, 10, 64)
		if i == 3 || i == 4 {
			idle += n
		} else {
			busy += n
		}
	}
	return busy, idle
}

// freePorts returns n distinct free loopback ports below the kernel's
// ephemeral range, where ports that other programs get from ":0" are not
// handed out: registrations and proxy configs must name ports before
// anything listens on them. They come from 10000-13999, which no test
// package's ports overlap (internal/testkit's Ports lists theirs): the
// bench smoke run (bench/smoke_test.go) runs this harness while go test
// runs those packages' tests in parallel.
func freePorts(n int) ([]int, error) {
	var out []int
	for attempt := 0; len(out) < n && attempt < 2000; attempt++ {
		p := 10000 + mrand.IntN(4000)
		if slicesContains(out, p) {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		l.Close()
		out = append(out, p)
	}
	if len(out) < n {
		return nil, fmt.Errorf("found only %d free ports", len(out))
	}
	return out, nil
}

func slicesContains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// waitEcho waits until a byte sent to addr comes back.
func waitEcho(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	var err error
	for time.Now().Before(deadline) {
		var c net.Conn
		if c, err = net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			if _, err = c.Write([]byte{'x'}); err == nil {
				var b [1]byte
				_, err = io.ReadFull(c, b[:])
			}
			c.Close()
			if err == nil {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s never echoed: %v", addr, err)
}

// pki is a CA and two leaf certificates for the HAProxy pair, written as
// PEM files (certificate and key together, as HAProxy takes them).
type pki struct{ ca, client, server string }

func makePKI(dir string) (pki, error) {
	key := func() *ecdsa.PrivateKey { k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader); return k }
	caKey := key()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return pki{}, err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	p := pki{ca: filepath.Join(dir, "ca.pem"), client: filepath.Join(dir, "client.pem"), server: filepath.Join(dir, "server.pem")}
	if err := os.WriteFile(p.ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		return pki{}, err
	}
	for i, leaf := range []struct {
		file string
		eku  x509.ExtKeyUsage
	}{{p.client, x509.ExtKeyUsageClientAuth}, {p.server, x509.ExtKeyUsageServerAuth}} {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: "bench"},
			DNSNames: []string{"bench"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{leaf.eku}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, k.Public(), caKey)
		if err != nil {
			return pki{}, err
		}
		kd, _ := x509.MarshalECPrivateKey(k)
		b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})...)
		if err := os.WriteFile(leaf.file, b, 0o600); err != nil {
			return pki{}, err
		}
	}
	return p, nil
}
