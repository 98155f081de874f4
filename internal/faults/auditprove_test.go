package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"moat/internal/store/storetest"
)

// TestClusterAuditProve: a cluster's audit log lives in etcd, so "moat
// audit prove" had no log to read (it took only --data-dir). Through any
// server it now proves an entry, checked before it is printed, and the
// proof holds with only the checkpoint it names and the verifier key.
func TestClusterAuditProve(t *testing.T) {
	etcd := storetest.StartEtcdCluster(t, 1)
	c := newMoatCluster(t, etcd, 2)
	mustMoat(t, c.via(c.servers[0]), "svc", "register", "--node", "n1", "--name", "db", "--port", "5432")
	key := filepath.Join(c.admin, "audit.pub")
	for i, s := range c.servers {
		cp := filepath.Join(c.dir, fmt.Sprintf("checkpoint-%d", i))
		proof, errOut, err := moat(t, c.via(s), "audit", "prove", "--checkpoint", cp, "1")
		if err != nil {
			t.Fatalf("audit prove through %s: %v: %s", s.name, err, errOut)
		}
		pf := filepath.Join(c.dir, fmt.Sprintf("proof-%d", i))
		if err := os.WriteFile(pf, []byte(proof), 0o600); err != nil {
			t.Fatal(err)
		}
		out := mustMoat(t, nil, "audit", "check-proof", "--checkpoint", cp, "--key", key, pf)
		if !strings.HasPrefix(out, "ok: entry 1 is in the signed tree of ") {
			t.Fatalf("proof through %s: %s", s.name, out)
		}
		t.Logf("through %s: %s", s.name, firstLine(out))
	}
}
