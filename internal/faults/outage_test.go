package faults

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFleetRecoversAfterOutageLongerThanNodeCertificate stops the control
// plane for longer than the agents' node certificates live (short TTLs,
// real clocks, the built binary): when it returns, every agent re-attests
// with the node key the server pinned at join, by itself, says so in its
// metrics, and its services get SVIDs again.
func TestFleetRecoversAfterOutageLongerThanNodeCertificate(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "server")
	ports := freePorts(t, 2)
	env := []string{"MOAT_SERVER=" + addr(ports[0]), "MOAT_ADMIN_DIR=" + data + ".admin"}
	const nodeTTL = 8 * time.Second
	mustMoat(t, nil, "server", "init", "--data-dir", data, "--trust-domain", "example.org", "--svid-ttl", "4s", "--node-ttl", nodeTTL.String())
	run := []string{"server", "run", "--data-dir", data, "--listen", addr(ports[0]), "--metrics", addr(ports[1])}
	srv := start(t, "server", nil, moatBin, run...)
	waitFor(t, "the server", func() bool { _, _, err := moat(t, env, "svc", "list"); return err == nil })
	c := &moatCluster{t: t, dir: dir, admin: data + ".admin", servers: []*moatServer{{name: "s1", listen: addr(ports[0])}}}
	c.mfa = enrolMFA(t, c.addrs(), c.admin)
	var agents []*moatAgent
	for i := range 2 {
		node := fmt.Sprintf("n%d", i+1)
		mustMoat(t, env, "svc", "register", "--node", node, "--name", "app"+node, "--port", fmt.Sprint(9000+i))
		agents = append(agents, c.startAgent(node))
	}
	renewals := func(a *moatAgent) float64 {
		return metric(t, a.metrics, fmt.Sprintf("moat_svid_renewals_total{node=%q}", a.node))
	}
	for _, a := range agents {
		waitFor(t, a.node+" renewing", func() bool { return renewals(a) > 0 })
	}

	t.Logf("control plane down for longer than a node certificate's %s", nodeTTL)
	srv.stop()
	down := time.Now()
	// The outage lasts until every node certificate the agents hold has
	// expired, as their files say. The files are read again at each poll:
	// a renewal answered just before the server stopped may still be
	// written after it did, and a certificate read once before that write
	// would end the outage while the agent holds a valid one.
	waitForDetail(t, "every node certificate expired", func() (bool, string) {
		for _, a := range agents {
			b, err := os.ReadFile(filepath.Join(a.data, "node", "cert.pem"))
			if err != nil {
				t.Fatal(err)
			}
			blk, _ := pem.Decode(b)
			if blk == nil {
				t.Fatalf("%s: no certificate in node/cert.pem", a.node)
			}
			leaf, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if !time.Now().After(leaf.NotAfter.Add(time.Second)) {
				return false, fmt.Sprintf("%s holds a node certificate valid until %s", a.node, leaf.NotAfter.Format(time.RFC3339))
			}
		}
		return true, ""
	})
	srv = start(t, "server (back)", nil, moatBin, run...)
	t.Logf("control plane back after %s", time.Since(down).Round(time.Second))

	for _, a := range agents {
		series := fmt.Sprintf("moat_agent_reattestations_total{method=%q,node=%q}", "node-key", a.node)
		waitForDetail(t, a.node+" re-attested with its node key", func() (bool, string) {
			v := metric(t, a.metrics, series)
			return v >= 1, fmt.Sprintf("%s = %v", series, v)
		})
		before := renewals(a)
		waitFor(t, a.node+" renewing again", func() bool { return renewals(a) > before })
		if !strings.Contains(a.p.out.String(), "node re-attested without its certificate") {
			t.Errorf("%s did not log its re-attestation", a.node)
		}
	}
	// Each is an audited call; the server counts them by result.
	if n := metric(t, addr(ports[1]), `moat_server_calls_total{action="node.reattest",result="ok"}`); n < 2 {
		t.Fatalf("the server counts %v successful re-attestations, want one per agent", n)
	}
}
