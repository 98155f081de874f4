package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/ca"
	"moat/internal/identity"
	"moat/internal/testkit"
)

// garbageJoins sends joins from the local address from, each with a
// token of the right form the control plane never issued, until one is
// answered 429, and returns its Retry-After and how many were sent.
func garbageJoins(t *testing.T, c *cluster, from string) (retry time.Duration, sent int) {
	t.Helper()
	_, pin, err := api.SplitToken(c.token("pin-source"))
	if err != nil {
		t.Fatal(err)
	}
	trust := identity.NewTrust(identity.TrustConfig{TrustDomain: c.srv.CA().TrustDomain()})
	trust.Update(c.srv.CA().Bundle(), identity.Revocations{})
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: testkit.WaitLimit}
	tr := &http.Transport{TLSClientConfig: api.ClientTLS(nil, trust), DialContext: d.DialContext, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: testkit.WaitLimit}
	for sent < 100 {
		var secret [32]byte
		if _, err := rand.Read(secret[:]); err != nil {
			t.Fatal(err)
		}
		_, csr, err := ca.NewKeyCSR()
		if err != nil {
			t.Fatal(err)
		}
		body, err := json.Marshal(api.JoinRequest{Token: api.TokenPrefix + base64.RawURLEncoding.EncodeToString(secret[:]) + "." + pin,
			Node: "victim", MeshAddr: "127.0.0.1:1", CSR: csr})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Post("https://"+c.addr+api.PathJoin, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		sent++
		switch resp.StatusCode {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
			if err != nil || secs < 1 {
				t.Fatalf("429 with Retry-After %q", resp.Header.Get("Retry-After"))
			}
			return time.Duration(secs) * time.Second, sent
		default:
			t.Fatalf("garbage join %d from %s: %s", sent, from, resp.Status)
		}
	}
	t.Fatalf("%d garbage joins from %s, none throttled", sent, from)
	return 0, sent
}

// TestAgentJoinsBesideGarbageJoins: the moat agent joins as before while
// another address floods the control plane with garbage joins, which it
// soon refuses at once. From the flooding address itself a join waits
// with the flood: the agent says why and for how long, and joins with the
// same token once the address's failures have drained, without exiting.
func TestAgentJoinsBesideGarbageJoins(t *testing.T) {
	c := newCluster(t)
	retry, sent := garbageJoins(t, c, "127.0.0.2")
	t.Logf("127.0.0.2 was throttled after %d garbage joins, for %s", sent, retry)

	agentArgs := func(node, tok string) []string {
		return []string{"agent", "--data-dir", filepath.Join(c.dir, node), "--server", c.addr, "--node", node, "--join", tok, "--listen", "127.0.0.1:" + itoa(freePort(t))}
	}
	joined := func(p *proc, node string) {
		t.Helper()
		waitUntil(t, time.Minute, node+" to join", func() bool { return p.exited() || strings.Contains(p.errb.String(), "msg=joined") })
		if p.exited() {
			t.Fatalf("the agent of %s exited %d: %s", node, p.code, p.errb.String())
		}
		p.stop()
	}
	t.Log("an agent on 127.0.0.1 joins")
	n1 := moatStart(t, cmdEnv{}, nil, agentArgs("n1", c.token("n1"))...)
	joined(n1, "n1")

	t.Log("once 127.0.0.1 floods too, an agent there is told to wait, and waits")
	retry, _ = garbageJoins(t, c, "127.0.0.1")
	n2 := moatStart(t, cmdEnv{}, nil, agentArgs("n2", c.token("n2"))...)
	waitUntil(t, time.Minute, "n2 to be throttled", func() bool {
		return n2.exited() || strings.Contains(n2.errb.String(), "join throttled by the server")
	})
	if n2.exited() || !strings.Contains(n2.errb.String(), "too many failed joins") || !strings.Contains(n2.errb.String(), "try again in") {
		t.Fatalf("agent join from the throttled address: exited %v: %s", n2.exited(), n2.errb.String())
	}
	t.Logf("the agent said: %s", strings.TrimSpace(n2.errb.String()))
	t.Log("once the address's failures have drained, its join, with the same token, goes through")
	c.clk.Advance(retry)
	joined(n2, "n2")
}
