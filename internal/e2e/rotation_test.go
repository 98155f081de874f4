package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"moat/internal/agent"
	"moat/internal/api"
	"moat/internal/server"
)

func rootsAt(a *agent.Agent) int {
	b := a.Trust().Bundle()
	if b == nil {
		return 0
	}
	return len(b.X509Authorities())
}

// TestRootRotationUnderTraffic rotates the root while two agents carry
// traffic between their services: every step keeps the mesh working.
// Node certificates live as long as SVIDs here, so that retire is allowed
// after simulated minutes rather than a day.
func TestRootRotationUnderTraffic(t *testing.T) {
	c := newCluster(t, func(ic *server.InitConfig) { ic.NodeTTL = time.Hour })
	apiPort := echoApp(t, "api")
	toAPI := freePort(t)
	c.register(api.Registration{Name: "frontend", Node: "n1", Port: freePort(t), Upstreams: []api.Upstream{{Service: "api", LocalPort: toAPI}}})
	c.register(api.Registration{Name: "api", Node: "n2", Port: apiPort})
	doc := "default: deny\nrules:\n  - name: web-to-api\n    from: [frontend]\n    to: api\n    ports: [" + itoa(apiPort) + "]\n"
	if err := c.call(http.MethodPost, api.PathPolicy, api.PolicyRequest{YAML: doc}, nil); err != nil {
		t.Fatal(err)
	}
	a1, a2 := c.startAgent("n1"), c.startAgent("n2")
	works := func(step string) {
		t.Helper()
		eventually(t, "traffic "+step, func() bool { return ask(loopAddr(toAPI), step) == "api: "+step })
	}
	works("before")
	rotate := func(step string) {
		t.Helper()
		if err := c.call(http.MethodPost, api.PathCARotate, api.CARequest{Step: step}, nil); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}

	t.Log("prepare: both agents receive a bundle with both roots; so does the administrator")
	rotate("prepare")
	c.settle("two roots at both agents", func() bool { return rootsAt(a1) == 2 && rootsAt(a2) == 2 })
	works("prepared")
	admin, err := api.NewAdminClient(c.addr, c.adminDir)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.SyncTrust(context.Background(), c.clk.Now()); err != nil {
		t.Fatal(err)
	}

	t.Log("activate: renewals move SVIDs to the new root, one side at a time; the administrator renews too")
	rotate("activate")
	if due, err := admin.SyncTrust(context.Background(), c.clk.Now()); err != nil || !due {
		t.Fatalf("after activate the admin certificate is due for renewal: due %v, %v", due, err)
	}
	if _, err := admin.Renew(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	c.clk.Advance(35 * time.Minute) // past half an SVID's life: everything renews
	c.settle("SVIDs under the new root", func() bool {
		l1, l2 := svidOf(a1, "frontend"), svidOf(a2, "api")
		return l1 != nil && l2 != nil && c.clk.Now().Sub(l1.NotBefore) < 10*time.Minute && c.clk.Now().Sub(l2.NotBefore) < 10*time.Minute
	})
	works("activated")

	t.Log("retire is refused while old SVIDs may live, then succeeds")
	if err := c.call(http.MethodPost, api.PathCARotate, api.CARequest{Step: "retire"}, nil); err == nil {
		t.Fatal("retire succeeded while SVIDs of the old root were still valid")
	}
	for i := 0; i < 7; i++ { // seventy minutes, renewing as it goes
		c.clk.Advance(10 * time.Minute)
		works("aged")
	}
	c.repinAdmin() // the admin's MFA session expired meanwhile; a new connection meets the server's new root
	rotate("retire")
	c.settle("one root at both agents", func() bool { return rootsAt(a1) == 1 && rootsAt(a2) == 1 })
	works("retired")
}
