package server

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"moat/internal/api"
	"moat/internal/testkit"
)

// TestAPIBoundsAnonymousConnections: a connection without a client
// certificate gave its place back once its first request began, and the
// server closed no idle connection: anyone who reaches the port could
// fetch the bundle once on each of as many connections as they liked and
// keep them all, a descriptor each, past every bound on pending ones,
// until the server could accept nothing (its agents' calls, its admins')
// nor open a file. A connection that presents no verified identity now
// keeps its place for its whole life, so one source holds at most
// maxAPIAnonymousPerSource of them, the rest closed at once, and an idle one
// is closed after apiIdleTimeout.
func TestAPIBoundsAnonymousConnections(t *testing.T) {
	f := newAuthFixture(t)
	const flood = maxAPIAnonymousPerSource + 64
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: testkit.WaitLimit}
	var held []*http.Transport
	defer func() {
		for _, tr := range held {
			tr.CloseIdleConnections()
		}
	}()
	get := func(tr *http.Transport) error {
		resp, err := (&http.Client{Transport: tr, Timeout: testkit.WaitLimit}).Get("https://" + f.srv.Addr() + api.PathBundle)
		if err != nil {
			return err
		}
		// Read whole, so that an HTTP/1.1 connection is kept for another.
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	refused := 0
	for i := range flood {
		// One connection each, kept alive after its answer, over HTTP/2
		// and HTTP/1.1 in turn.
		tr := f.transport(nil)
		tr.DialContext = d.DialContext
		if i%2 == 1 {
			tr.ForceAttemptHTTP2 = false
			tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		}
		if err := get(tr); err != nil {
			refused++
			tr.CloseIdleConnections()
			continue
		}
		held = append(held, tr)
	}
	t.Logf("of %d connections from one address that each fetched the bundle, %d held and %d closed at once", flood, len(held), refused)
	if len(held) > maxAPIAnonymousPerSource {
		t.Fatalf("the server holds %d anonymous connections from one address, more than %d", len(held), maxAPIAnonymousPerSource)
	}
	if f.srv.shedCount.Load() == 0 {
		t.Fatal("no connection was shed")
	}

	t.Log("a node's calls, from another address, are answered during the flood")
	var tok api.TokenResponse
	if code, e := f.call(t, f.accs["op"].session, http.MethodPost, api.PathTokens, api.TokenRequest{Node: "n1"}, &tok); code != http.StatusOK {
		t.Fatalf("token: %d %+v", code, e)
	}
	node := f.join(t, tok.Token, "n1")
	if code, e := f.call(t, node, http.MethodPost, api.PathNodeHealth, api.NodeHealth{}, nil); code != http.StatusOK {
		t.Fatalf("node call during the flood: %d %+v", code, e)
	}

	t.Log("a connection with a verified certificate holds no such place: the node keeps more of them from the flooding address")
	var nodes []*http.Transport
	defer func() {
		for _, tr := range nodes {
			tr.CloseIdleConnections()
		}
	}()
	for range 32 {
		tr := f.transport(node)
		tr.DialContext = d.DialContext
		if err := get(tr); err != nil {
			t.Fatalf("node connection from the flooding address: %v", err)
		}
		nodes = append(nodes, tr)
	}

	t.Log("once the flood's connections close, their places are given back")
	for _, tr := range held {
		tr.CloseIdleConnections()
	}
	held = nil
	testkit.WaitFor(t, "an anonymous call from the flood's address", func() bool {
		tr := f.transport(nil)
		tr.DialContext = d.DialContext
		defer tr.CloseIdleConnections()
		return get(tr) == nil
	})
}

// TestAPIBoundsConnectionsPerIdentity: a connection whose client presents
// a verified certificate left every bound at its first request, so a
// compromised node could open and keep as many connections as it liked,
// each a descriptor of the server's, until the server could accept no
// other node's. One identity now holds at most maxAPIPerIdentity of them;
// the rest are closed at once, and other nodes are answered.
func TestAPIBoundsConnectionsPerIdentity(t *testing.T) {
	f := newAuthFixture(t)
	node := func(name string) *tls.Certificate {
		var tok api.TokenResponse
		if code, e := f.call(t, f.accs["op"].session, http.MethodPost, api.PathTokens, api.TokenRequest{Node: name}, &tok); code != http.StatusOK {
			t.Fatalf("token: %d %+v", code, e)
		}
		return f.join(t, tok.Token, name)
	}
	evil, good := node("evil"), node("good")
	get := func(tr *http.Transport) error {
		resp, err := (&http.Client{Transport: tr, Timeout: testkit.WaitLimit}).Post("https://"+f.srv.Addr()+api.PathNodeHealth, "application/json", strings.NewReader("{}"))
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusTooManyRequests {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	const flood = maxAPIPerIdentity + 64
	var held []*http.Transport
	defer func() {
		for _, tr := range held {
			tr.CloseIdleConnections()
		}
	}()
	refused := 0
	for i := range flood {
		tr := f.transport(evil)
		if i%2 == 1 {
			tr.ForceAttemptHTTP2 = false
			tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		}
		if err := get(tr); err != nil {
			refused++
			tr.CloseIdleConnections()
			continue
		}
		held = append(held, tr)
	}
	t.Logf("of %d connections of one node that each made a call, %d held and %d closed at once", flood, len(held), refused)
	if len(held) > maxAPIPerIdentity {
		t.Fatalf("the server holds %d connections of one node, more than %d", len(held), maxAPIPerIdentity)
	}

	t.Log("another node, from the same address, is answered")
	tr := f.transport(good)
	defer tr.CloseIdleConnections()
	if err := get(tr); err != nil {
		t.Fatalf("another node during the flood: %v", err)
	}

	t.Log("once the node's connections close, their places are given back")
	for _, tr := range held {
		tr.CloseIdleConnections()
	}
	held = nil
	testkit.WaitFor(t, "a call of the node", func() bool {
		tr := f.transport(evil)
		defer tr.CloseIdleConnections()
		return get(tr) == nil
	})
}
