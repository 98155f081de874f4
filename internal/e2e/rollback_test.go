package e2e

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"moat/internal/api"
	"moat/internal/identity"
	"moat/internal/store"
)

// TestAgentRefusesRolledBackRevocations: the control plane's store goes
// back to an earlier copy (a server restored from an old backup) after a
// revocation the agent holds. Neither the change the server then streams
// nor the full snapshot a restarted server sends, nor the same after the
// agent restarts, makes the agent forget the revocation.
func TestAgentRefusesRolledBackRevocations(t *testing.T) {
	c := newCluster(t)
	c.register(api.Registration{Name: "api", Node: "n1", Port: freePort(t)})
	cfg := c.agentConfig("n1")
	a, stop := c.runAgent(cfg)
	eventually(t, "the agent's first snapshot", a.Synced)

	if err := c.call(http.MethodPost, api.PathRevoke, api.RevokeRequest{Service: "early"}, nil); err != nil {
		t.Fatal(err)
	}
	backup, err := c.st.Get(context.Background(), "revocations")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.call(http.MethodPost, api.PathRevoke, api.RevokeRequest{Service: "stolen"}, nil); err != nil {
		t.Fatal(err)
	}
	stolen, err := identity.ServiceID(c.srv.TrustDomain(), "stolen")
	if err != nil {
		t.Fatal(err)
	}
	revoked := func(a interface{ Trust() *identity.Trust }) bool {
		return slices.Contains(a.Trust().Revocations().IDs, stolen.String())
	}
	eventually(t, "the agent to hold the revocation of stolen", func() bool { return revoked(a) })
	held := a.Trust().Revocations().Version

	t.Log("the store goes back to the copy taken before stolen was revoked")
	if _, err := c.st.Txn(context.Background(), nil, []store.Op{store.Put("revocations", backup.Value)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the streamed rollback to be refused", func() bool { return a.RollbacksRefused() >= 1 || !revoked(a) })
	if !revoked(a) {
		t.Fatalf("the agent took back the revocation of %s from an older list (now version %d, held %d)", stolen, a.Trust().Revocations().Version, held)
	}

	t.Log("a server started on the rolled-back store sends it as a full snapshot")
	c.stopServer()
	c.startServer(c.addr)
	c.settle("the rolled-back snapshot to be refused", func() bool { return a.RollbacksRefused() >= 2 || !revoked(a) })
	if !revoked(a) {
		t.Fatalf("the agent took back the revocation of %s from an older snapshot", stolen)
	}

	t.Log("the agent restarts from its data directory")
	stop()
	a2, _ := c.runAgent(cfg)
	c.settle("the restarted agent to refuse the rolled-back snapshot", func() bool { return a2.RollbacksRefused() >= 1 || !revoked(a2) })
	if !revoked(a2) || a2.Trust().Revocations().Version != held {
		t.Fatalf("after a restart the agent holds revocations version %d (held %d before)", a2.Trust().Revocations().Version, held)
	}
}
