package e2e

import (
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"moat/internal/agent"
	"moat/internal/api"
	"moat/internal/ca"
	"moat/internal/identity"
)

// TestJoinTokenPinsTheServer: a join token carries the pin of the
// control plane's root, so that an agent sends its token to that control
// plane alone. The agent checked only that the bundle the server sent
// held the pinned root, and then trusted every root of that bundle: a
// server in the middle (a hijacked name or route) that sent the real root,
// which anyone reads from the bundle call, beside a root of its own, and
// presented a server certificate of its own root, was trusted, and
// received the token, with which it joins as the node. The agent now
// asks the server to prove itself under the pinned root.
func TestJoinTokenPinsTheServer(t *testing.T) {
	c := newCluster(t)

	t.Log("the impostor reads the real bundle, as anyone may")
	var real api.CertResponse
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("https://" + c.addr + api.PathBundle)
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&real)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}

	t.Log("it serves that root beside its own, and a server certificate of its own root")
	td, err := identity.ParseTrustDomain("example.org")
	if err != nil {
		t.Fatal(err)
	}
	own, err := ca.New(ca.Config{TrustDomain: td})
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.ServerID(td, "s1")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := own.Issue(id, 0)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var stolen []string
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.PathBundle, func(w http.ResponseWriter, r *http.Request) {
		out := real
		out.Bundle = append(append([][]byte{}, real.Bundle...), api.DERs(own.Bundle().X509Authorities())...)
		_ = json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("POST "+api.PathJoin, func(w http.ResponseWriter, r *http.Request) {
		var req api.JoinRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		mu.Lock()
		stolen = append(stolen, req.Token)
		mu.Unlock()
		http.Error(w, `{"error":"try again"}`, http.StatusServiceUnavailable)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	impostor := &http.Server{Handler: mux, TLSConfig: &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{*cert}}}
	go impostor.ServeTLS(ln, "", "")
	defer impostor.Close()

	t.Log("an agent joins with a real token, reaching the impostor")
	cfg := c.agentConfig("n1", func(cfg *agent.Config) { cfg.Server = ln.Addr().String() })
	_, err = agent.New(t.Context(), cfg)
	mu.Lock()
	defer mu.Unlock()
	if len(stolen) > 0 {
		t.Fatalf("the agent sent its join token to a server that holds no key of the pinned root (%d calls)", len(stolen))
	}
	if err == nil || !strings.Contains(err.Error(), "pin") {
		t.Fatalf("the join through the impostor: %v, want a refusal naming the pinned root", err)
	}
	t.Logf("refused: %v", err)
}
