package store

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"moat/internal/testkit"
)

// TestEtcd covers what only the etcd store has: prefixes that keep moat
// clusters apart, sealed values under raw etcd access, and its config.
func TestEtcd(t *testing.T) {
	url := startEtcd(t)
	t.Run("PrefixIsolation", func(t *testing.T) { testEtcdPrefixIsolation(t, url) })
	t.Run("SealedValueMoved", func(t *testing.T) { testEtcdSealedValueMoved(t, url) })
	t.Run("SealMismatch", func(t *testing.T) { testEtcdSealMismatch(t, url) })
	t.Run("Config", func(t *testing.T) { testEtcdConfig(t, url) })
	t.Run("ProbeMember", func(t *testing.T) { testEtcdProbeMember(t, url) })
}

// testEtcdProbeMember: the probe that names why etcd did not answer tells
// a member that answers from one that is gone (the connection refused)
// and from one that takes the connection but never answers: that one is
// there, slow, and not counted as gone.
func testEtcdProbeMember(t *testing.T, url string) {
	cli := rawClient(t, url)
	ctx := context.Background()
	if got := probeMember(ctx, cli, nil, url, nil); !got.answered || !got.leader || got.down != "" {
		t.Fatalf("probe of the running member = %+v, want answered with a leader", got)
	}

	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	goneURL := "http://" + gone.Addr().String()
	gone.Close()
	if got, want := probeMember(ctx, cli, nil, goneURL, nil), "connection refused"; got.down != want {
		t.Fatalf("probe of a closed port = %+v, want down %q", got, want)
	}

	// A listener that takes connections and never speaks: its status
	// cannot come, however long the probe waits. The probe is given up
	// once the listener has taken both its connections (the plain dial and
	// the status call's), so no bound of time decides the outcome.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	sctx, cancel := context.WithTimeout(ctx, testkit.WaitLimit)
	defer cancel()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			if conns = append(conns, c); len(conns) == 2 {
				cancel()
			}
		}
	}()
	if got := probeMember(sctx, cli, nil, "http://"+silent.Addr().String(), nil); got.down != "" || got.answered {
		t.Fatalf("probe of a silent member = %+v, want reachable, no answer", got)
	}
}

func TestEndpointAddr(t *testing.T) {
	for ep, want := range map[string][2]string{
		"127.0.0.1:2379":             {"tcp", "127.0.0.1:2379"},
		"http://10.0.0.1:2379":       {"tcp", "10.0.0.1:2379"},
		"https://etcd.example:2379/": {"tcp", "etcd.example:2379"},
		"unix:///run/etcd.sock":      {"unix", "/run/etcd.sock"},
		"unixs://run/etcd.sock":      {"unix", "run/etcd.sock"},
		"unix:etcd.sock":             {"unix", "etcd.sock"},
	} {
		if n, a := endpointAddr(ep); [2]string{n, a} != want {
			t.Errorf("endpointAddr(%q) = %s %s, want %s %s", ep, n, a, want[0], want[1])
		}
	}
}

func testEtcdPrefixIsolation(t *testing.T, url string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := openEtcdPrefix(t, url, "/moat/a/", nil)
	b := openEtcdPrefix(t, url, "/moat/ab/", nil)
	ch, err := a.Watch(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, b, "svc/api", "of b")
	ra := mustPut(t, a, "svc/api", "of a")
	if got, want := evString(next(t, ch)), fmt.Sprintf("put svc/api=of a @%d/%d", ra, ra); got != want {
		t.Fatalf("watch of a = %q, want %q (b's change must not show)", got, want)
	}
	for _, tc := range []struct {
		s    Store
		want string
	}{{a, "of a"}, {b, "of b"}} {
		kvs, _, err := tc.s.List(ctx, "")
		if err != nil || len(kvs) != 1 || string(kvs[0].Value) != tc.want {
			t.Fatalf("List = %s, %v; want only svc/api=%s", dump(kvs), err, tc.want)
		}
	}
}

func rawClient(t *testing.T, url string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// testEtcdSealedValueMoved copies one key's stored value under another key
// with a plain etcd client and expects it not to open.
func testEtcdSealedValueMoved(t *testing.T, url string) {
	ctx := context.Background()
	const prefix = "/moat/sealed/"
	s := openEtcdPrefix(t, url, prefix, newSealer(t))
	mustPut(t, s, "svc/a", "secret-of-a")
	mustPut(t, s, "svc/b", "value-of-b")

	raw := rawClient(t, url)
	resp, err := raw.Get(ctx, prefix+"kv/svc/a")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("raw get: %v", err)
	}
	stored := resp.Kvs[0].Value
	if bytes.Contains(stored, []byte("secret-of-a")) {
		t.Fatalf("etcd holds the plaintext of svc/a: %q", stored)
	}
	if _, err := raw.Put(ctx, prefix+"kv/svc/b", string(stored)); err != nil {
		t.Fatal(err)
	}
	if kv, err := s.Get(ctx, "svc/a"); err != nil || string(kv.Value) != "secret-of-a" {
		t.Fatalf("Get(svc/a) = %q, %v", kv.Value, err)
	}
	if kv, err := s.Get(ctx, "svc/b"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get of a value moved to svc/b = %q, %v; want ErrCorrupt", kv.Value, err)
	}
}

func testEtcdConfig(t *testing.T, url string) {
	good := EtcdConfig{Endpoints: []string{url}, Prefix: "/moat/cfg/", DialTimeout: 2 * time.Second}
	tests := []struct {
		name    string
		mutate  func(c *EtcdConfig)
		invalid bool
	}{
		{"no endpoints", func(c *EtcdConfig) { c.Endpoints = nil }, true},
		{"empty prefix", func(c *EtcdConfig) { c.Prefix = "" }, true},
		{"prefix without slash", func(c *EtcdConfig) { c.Prefix = "/moat/cfg" }, true},
		{"nobody listening", func(c *EtcdConfig) {
			c.Endpoints = []string{fmt.Sprintf("http://127.0.0.1:%d", freePort(t))}
			c.DialTimeout = 300 * time.Millisecond
		}, false},
	}
	for _, tt := range tests {
		c := good
		tt.mutate(&c)
		s, err := OpenEtcd(context.Background(), c)
		if err == nil {
			s.Close()
			t.Errorf("%s: OpenEtcd succeeded", tt.name)
			continue
		}
		if tt.invalid != errors.Is(err, ErrInvalid) {
			t.Errorf("%s: OpenEtcd = %v (ErrInvalid expected: %v)", tt.name, err, tt.invalid)
		}
		t.Logf("%s: %v", tt.name, err)
	}
	s, err := OpenEtcd(context.Background(), good)
	if err != nil {
		t.Fatalf("good config: %v", err)
	}
	s.Close()
}

func testEtcdSealMismatch(t *testing.T, url string) {
	sealer := newSealer(t)
	tests := []struct {
		name         string
		prefix       string
		create, open Sealer
	}{
		{"sealed prefix opened without sealer", "/moat/mismatch-a/", sealer, nil},
		{"plain prefix opened with sealer", "/moat/mismatch-b/", nil, sealer},
	}
	for _, tt := range tests {
		s := openEtcdPrefix(t, url, tt.prefix, tt.create)
		mustPut(t, s, "svc/a", "x")
		s.Close()
		again := openEtcdPrefix(t, url, tt.prefix, tt.create)
		again.Close()
		s2, err := OpenEtcd(context.Background(), EtcdConfig{Endpoints: []string{url}, Prefix: tt.prefix, Sealer: tt.open})
		if err == nil {
			s2.Close()
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: OpenEtcd = %v, want ErrInvalid", tt.name, err)
		}
	}
}

// TestEndpointTLS: which endpoints the client reaches over TLS, as
// clientv3 does: https and unixs always (the system's roots when no
// configuration was given), a bare host:port when one was given, http and
// unix never.
func TestEndpointTLS(t *testing.T) {
	given := &tls.Config{ServerName: "etcd.example"}
	for _, c := range []struct {
		ep       string
		tc       *tls.Config
		want     bool
		wantGive bool
	}{
		{"https://10.0.0.1:2379", nil, true, false},
		{"https://10.0.0.1:2379", given, true, true},
		{"unixs://etcd.sock", nil, true, false},
		{"10.0.0.1:2379", given, true, true},
		{"10.0.0.1:2379", nil, false, false},
		{"http://127.0.0.1:2379", given, false, false},
		{"unix:etcd.sock", given, false, false},
	} {
		got := endpointTLS(c.ep, c.tc)
		if (got != nil) != c.want || c.wantGive && got != given {
			t.Errorf("endpointTLS(%q, %v) = %v", c.ep, c.tc != nil, got)
		}
	}
}
