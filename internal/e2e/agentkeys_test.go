package e2e

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"moat/internal/agent"
	"moat/internal/seal"
)

// TestAgentRotatesDataKeys: an agent seals what it keeps on disk (its node
// key, its SVIDs' keys, every spooled flow record) under its own keyring's
// primary data key, and rotates that key on the servers' schedule
// (seal.DefaultRotation old, or seal.DefaultMaxEncryptions sealed under
// it): a primary past its age is replaced as the agent starts, and what
// the agent sealed under the earlier key still opens, so the agent starts
// again from its sealed identity.
func TestAgentRotatesDataKeys(t *testing.T) {
	c := newCluster(t)
	dir := filepath.Join(c.dir, "agent-n1")
	kek, err := seal.GenerateKeyFile(filepath.Join(c.dir, "n1.kek"), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// The keyring's clock: the fake clock, set back while it is made so
	// that its first key is a day past the rotation period.
	var back atomic.Int64
	back.Store(int64(seal.DefaultRotation + 24*time.Hour))
	kr, err := seal.Open(seal.Config{Dir: dir, KEK: kek, Now: func() time.Time { return c.clk.Now().Add(-time.Duration(back.Load())) }})
	if err != nil {
		t.Fatal(err)
	}
	back.Store(0)
	first := kr.Primary()

	t.Log("an agent whose keyring's primary is past the rotation period joins and rotates it")
	cfg := c.agentConfig("n1", func(cfg *agent.Config) { cfg.Keyring = kr })
	_, stop := c.runAgent(cfg)
	c.settle("the agent to rotate its data key", func() bool { return kr.Primary() != first })
	st := kr.Status(nil)
	if len(st.Keys) != 2 || st.Keys[0].ID != first || !st.Keys[1].Primary {
		t.Fatalf("the keyring after the rotation: %+v", st.Keys)
	}
	if _, err := os.Stat(filepath.Join(dir, "node", agent.SealedKeyFile)); err != nil {
		t.Fatalf("the node key is not sealed: %v", err)
	}
	stop()

	t.Log("what it sealed under the first key still opens: it starts again on its identity")
	cfg.Join = ""
	c.runAgent(cfg)
}
