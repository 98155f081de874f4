// Command meshbench stands up the pieces of the mesh benchmark (see
// README.md and run.sh): a CA and SVID files, a mesh agent per process, TCP
// backends, and the bulk and new-connection clients. fortio drives the
// HTTP load.
//
//	meshbench setup DIR
//	meshbench agent -dir DIR -role src|dst
//	meshbench backends -echo ADDR -sink ADDR
//	meshbench bulk -addr ADDR -mb N
//	meshbench connlat -addr ADDR -n N
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/ca"
	"moat/internal/identity"
	"moat/internal/mesh"
	"moat/internal/policy"
)

var td = spiffeid.RequireTrustDomainFromString("bench.moat")

// Fixed ports, all on loopback (see run.sh, which uses the same numbers).
const (
	meshPort = "127.0.0.1:15443"
)

// services the destination agent fronts: name, mesh port, backend.
var services = []struct {
	name    string
	port    int
	backend string
	local   string
}{
	{"api", 8080, "127.0.0.1:18080", "127.0.0.1:16080"},
	{"echo", 7, "127.0.0.1:18081", "127.0.0.1:16081"},
	{"sink", 9, "127.0.0.1:18082", "127.0.0.1:16082"},
}

const benchPolicy = `rules:
  - name: bench
    from: [frontend]
    to: api
    ports: [8080]
  - name: bench-echo
    from: [frontend]
    to: echo
    ports: [7]
  - name: bench-sink
    from: [frontend]
    to: sink
    ports: [9]
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: meshbench setup|agent|backends|bulk|connlat ...")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "setup":
		err = setup(os.Args[2:])
	case "agent":
		err = agent(ctx, os.Args[2:])
	case "backends":
		err = backends(ctx, os.Args[2:])
	case "bulk":
		err = bulk(os.Args[2:])
	case "connlat":
		err = connlat(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "meshbench:", err)
		os.Exit(1)
	}
}

// setup writes the root (ca.pem) and, for frontend and every service, the
// SVID chain and key (NAME.crt, NAME.key) plus a combined NAME.pem for HAProxy.
func setup(args []string) error {
	if len(args) != 1 {
		return errors.New("setup DIR")
	}
	dir := args[0]
	c, err := ca.New(ca.Config{TrustDomain: td})
	if err != nil {
		return err
	}
	var roots []byte
	for _, r := range c.Bundle().X509Authorities() {
		roots = append(roots, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.Raw})...)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), roots, 0o600); err != nil {
		return err
	}
	names := []string{"frontend"}
	for _, s := range services {
		names = append(names, s.name)
	}
	for _, n := range names {
		id, err := identity.ServiceID(td, n)
		if err != nil {
			return err
		}
		cert, err := c.Issue(id, 24*time.Hour)
		if err != nil {
			return err
		}
		var chain []byte
		for _, der := range cert.Certificate {
			chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
		}
		kder, err := x509.MarshalECPrivateKey(cert.PrivateKey.(*ecdsa.PrivateKey))
		if err != nil {
			return err
		}
		key := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
		for name, b := range map[string][]byte{n + ".crt": chain, n + ".key": key, n + ".pem": append(append([]byte{}, chain...), key...)} {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				return err
			}
		}
	}
	return nil
}

type fileIDs map[string]*tls.Certificate

func (f fileIDs) Certificate(s string) (*tls.Certificate, error) {
	c, ok := f[s]
	if !ok {
		return nil, fmt.Errorf("no SVID for %q", s)
	}
	return c, nil
}

func agent(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	dir := fs.String("dir", "", "directory written by setup")
	role := fs.String("role", "", "src (frontend's agent) or dst (the services' agent)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rootsPEM, err := os.ReadFile(filepath.Join(*dir, "ca.pem"))
	if err != nil {
		return err
	}
	var roots []*x509.Certificate
	for rest := rootsPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return err
		}
		roots = append(roots, c)
	}
	trust := identity.NewTrust(identity.TrustConfig{TrustDomain: td})
	trust.Update(x509bundle.FromX509Authorities(td, roots), identity.Revocations{})
	ids := fileIDs{}
	load := func(n string) error {
		c, err := tls.LoadX509KeyPair(filepath.Join(*dir, n+".crt"), filepath.Join(*dir, n+".key"))
		if err != nil {
			return err
		}
		ids[n] = &c
		return nil
	}
	pol, err := policy.Parse([]byte(benchPolicy))
	if err != nil {
		return err
	}
	var svcs []mesh.Service
	listen := "127.0.0.1:0"
	switch *role {
	case "src":
		if err := load("frontend"); err != nil {
			return err
		}
		fe := mesh.Service{Name: "frontend", Port: 1, AppAddr: "127.0.0.1:1"}
		for _, s := range services {
			fe.Upstreams = append(fe.Upstreams, mesh.Upstream{Service: s.name, Port: s.port, LocalAddr: s.local})
		}
		svcs = append(svcs, fe)
	case "dst":
		listen = meshPort
		for _, s := range services {
			if err := load(s.name); err != nil {
				return err
			}
			svcs = append(svcs, mesh.Service{Name: s.name, Port: s.port, AppAddr: s.backend})
		}
	default:
		return fmt.Errorf("role %q (want src or dst)", *role)
	}
	m, err := mesh.New(mesh.Config{
		Node: *role, Listen: listen, TrustDomain: td, Trust: trust, Identities: ids, Policy: pol,
		Resolve: func(string) (string, error) { return meshPort, nil },
		Logger:  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	if err := m.SetServices(svcs); err != nil {
		_ = m.Close()
		return err
	}
	err = m.Run(ctx)
	fmt.Fprintf(os.Stderr, "%s agent stats: %+v\n", *role, m.Stats())
	return err
}

// backends runs a TCP echo server and a sink that counts what it gets and
// answers the count (8 bytes) when the client half-closes.
func backends(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("backends", flag.ContinueOnError)
	echoAddr := fs.String("echo", "127.0.0.1:18081", "echo listen address")
	sinkAddr := fs.String("sink", "127.0.0.1:18082", "sink listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	serve := func(addr string, h func(net.Conn)) (net.Listener, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, err
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { defer c.Close(); h(c) }()
			}
		}()
		return ln, nil
	}
	e, err := serve(*echoAddr, func(c net.Conn) { _, _ = io.Copy(c, c) })
	if err != nil {
		return err
	}
	defer e.Close()
	s, err := serve(*sinkAddr, func(c net.Conn) {
		n, _ := io.Copy(io.Discard, c)
		_ = binary.Write(c, binary.BigEndian, n)
	})
	if err != nil {
		return err
	}
	defer s.Close()
	<-ctx.Done()
	return nil
}

// bulk sends MB megabytes to a sink and prints MB/s once the sink confirms.
func bulk(args []string) error {
	fs := flag.NewFlagSet("bulk", flag.ContinueOnError)
	addr := fs.String("addr", "", "sink address")
	mb := fs.Int("mb", 1024, "megabytes to send")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := net.Dial("tcp", *addr)
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 256<<10)
	start := time.Now()
	total := int64(*mb) << 20
	for sent := int64(0); sent < total; sent += int64(len(buf)) {
		if _, err := c.Write(buf); err != nil {
			return err
		}
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	var got int64
	if err := binary.Read(c, binary.BigEndian, &got); err != nil {
		return err
	}
	el := time.Since(start)
	if got != total {
		return fmt.Errorf("sink got %d of %d bytes", got, total)
	}
	fmt.Printf("%.1f\n", float64(total)/(1<<20)/el.Seconds())
	return nil
}

// connlat opens N sequential connections, each carrying one byte there and
// back, and prints p50 and p99 in microseconds.
func connlat(args []string) error {
	fs := flag.NewFlagSet("connlat", flag.ContinueOnError)
	addr := fs.String("addr", "", "echo address")
	n := fs.Int("n", 1000, "connections")
	if err := fs.Parse(args); err != nil {
		return err
	}
	lat := make([]time.Duration, 0, *n)
	b := []byte{42}
	for i := 0; i < *n; i++ {
		start := time.Now()
		c, err := net.Dial("tcp", *addr)
		if err != nil {
			return err
		}
		if _, err := c.Write(b); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		lat = append(lat, time.Since(start))
		_ = c.Close()
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	fmt.Printf("%d %d\n", lat[len(lat)/2].Microseconds(), lat[len(lat)*99/100].Microseconds())
	return nil
}
