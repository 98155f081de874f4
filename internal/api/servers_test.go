package api

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"moat/internal/ca"
	"moat/internal/identity"
)

// testServer serves /v1/admin/whoami over TLS with a moat server SVID,
// answering with its name, or 503 when unavailable is set.
func testServer(t *testing.T, authority *ca.CA, name string, unavailable bool) string {
	t.Helper()
	ln := serverListener(t, authority, name, tls.NoClientCert)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if unavailable {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":"control-plane store unavailable: no etcd quorum"}`)
			return
		}
		io.WriteString(w, `{"id":"`+name+`"}`)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// serverListener is a TLS listener on loopback with a moat server SVID
// named name, taking client certificates as auth says.
func serverListener(t *testing.T, authority *ca.CA, name string, auth tls.ClientAuthType) net.Listener {
	t.Helper()
	id, err := identity.ServerID(authority.TrustDomain(), name)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := authority.Issue(id, 0)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{*cert}, NextProtos: []string{"h2", "http/1.1"}, ClientAuth: auth})
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// deadAddr is a loopback address nobody listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestClientFailsOver: a call goes past a server that is down and one
// that answers 503 to one that answers, and the next call starts there.
func TestClientFailsOver(t *testing.T) {
	authority := testCA(t)
	trust := identity.NewTrust(identity.TrustConfig{TrustDomain: authority.TrustDomain()})
	trust.Update(authority.Bundle(), identity.Revocations{})
	busy := testServer(t, authority, "busy", true)
	good := testServer(t, authority, "good", false)
	c := NewClient(strings.Join([]string{deadAddr(t), busy, good}, ","), ClientTLS(nil, trust))
	defer c.Close()
	var who Whoami
	if err := c.Call(context.Background(), http.MethodGet, PathWhoami, nil, &who); err != nil || who.ID != "good" {
		t.Fatalf("call = %+v, %v; want the answer of the good server", who, err)
	}
	if c.Current() != good {
		t.Fatalf("current server %q, want %q", c.Current(), good)
	}
	if order := c.srv.order(context.Background()); order[0] != good {
		t.Fatalf("next call tries %v first, want %s", order, good)
	}

	t.Log("when every server is down or unavailable, the last answer says why")
	c2 := NewClient(deadAddr(t)+","+busy, ClientTLS(nil, trust))
	defer c2.Close()
	err := c2.Call(context.Background(), http.MethodGet, PathWhoami, nil, nil)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no etcd quorum") {
		t.Fatalf("all down = %v, want 503 with the cause", err)
	}
	c3 := NewClient(deadAddr(t)+","+deadAddr(t), ClientTLS(nil, trust))
	defer c3.Close()
	if err := c3.Call(context.Background(), http.MethodGet, PathWhoami, nil, nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("none reachable = %v, want ErrUnavailable", err)
	}
}

func TestParseServers(t *testing.T) {
	got, err := ParseServers(" a:7400, b:7400 ,c:7400")
	if err != nil || strings.Join(got, ",") != "a:7400,b:7400,c:7400" {
		t.Fatalf("ParseServers = %v, %v", got, err)
	}
	for _, bad := range []string{"", ",", "a", "a:7400,b", ":7400", "a:"} {
		if _, err := ParseServers(bad); err == nil {
			t.Errorf("ParseServers(%q) accepted", bad)
		}
	}
}

// TestReconnectedClientsShareNoTLSConfig: a client and the one Reconnect
// made of it call at once. A transport writes its TLS config's NextProtos
// on first use, so the two must not hold one config: the race detector
// sees the first dialling while the second writes, and without it the
// configs are compared.
func TestReconnectedClientsShareNoTLSConfig(t *testing.T) {
	authority := testCA(t)
	trust := identity.NewTrust(identity.TrustConfig{TrustDomain: authority.TrustDomain()})
	trust.Update(authority.Bundle(), identity.Revocations{})
	good := testServer(t, authority, "good", false)
	conf := ClientTLS(nil, trust)
	first := NewClient(good, conf)
	defer first.Close()
	second := first.Reconnect()
	defer second.Close()
	confOf := func(c *Client) *tls.Config { return c.tlsConfig() }
	if confOf(first) == conf || confOf(second) == conf || confOf(first) == confOf(second) {
		t.Fatal("the clients' transports share a TLS config")
	}
	errs := make(chan error, 2)
	for _, c := range []*Client{first, second} {
		go func() {
			var who Whoami
			errs <- c.Call(context.Background(), http.MethodGet, PathWhoami, nil, &who)
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
