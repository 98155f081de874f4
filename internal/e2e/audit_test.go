package e2e

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"moat/internal/api"
	"moat/internal/audit"
)

// TestAuditOverTheAPI: every admin call lands in the log; the published
// checkpoint and an inclusion proof fetched over the API check out with
// only the verifier key; the log verifies.
func TestAuditOverTheAPI(t *testing.T) {
	c := newCluster(t)
	c.token("n1")
	c.register(api.Registration{Name: "api", Node: "n1", Port: 8080})
	if err := c.call(http.MethodPost, api.PathPolicy, api.PolicyRequest{YAML: "default: deny\nrules:\n  - name: any\n    from: [\"*\"]\n    to: api\n    ports: [8080]\n"}, nil); err != nil {
		t.Fatal(err)
	}
	var page api.AuditEntries
	if err := c.call(http.MethodGet, api.PathAudit, nil, &page); err != nil {
		t.Fatal(err)
	}
	actions := map[string]audit.Entry{}
	for _, e := range page.Entries {
		actions[e.Entry.Action] = e.Entry
	}
	for _, want := range []string{"token.create", "svc.register", "policy.apply"} {
		if _, ok := actions[want]; !ok {
			t.Errorf("no %s entry in %v", want, page.Entries)
		}
	}
	if e := actions["policy.apply"]; e.Detail["wildcard"] != "true" || !strings.HasPrefix(e.Actor, "spiffe://example.org/admin/") {
		t.Errorf("policy.apply entry %+v: want the admin as actor and the wildcard noted", e)
	}

	var proof api.AuditProof
	if err := c.call(http.MethodGet, api.PathAuditProof+"?n=1", nil, &proof); err != nil {
		t.Fatal(err)
	}
	vkey, err := os.ReadFile(filepath.Join(c.dir, "audit", audit.VerifierKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	p, err := audit.CheckProof([]byte(proof.Checkpoint), string(bytes.TrimSpace(vkey)), []byte(proof.Proof))
	if err != nil {
		t.Fatalf("proof from the API does not check: %v", err)
	}
	if p.Index != 1 {
		t.Fatalf("proof for index %d", p.Index)
	}
	tampered := strings.Replace(proof.Proof, "index 1", "index 0", 1)
	if _, err := audit.CheckProof([]byte(proof.Checkpoint), string(bytes.TrimSpace(vkey)), []byte(tampered)); err == nil {
		t.Fatal("a proof moved to another index checked out")
	}
	if err := c.alog.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
}
