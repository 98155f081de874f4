package agent

import (
	"encoding/json"
	"testing"

	"moat/internal/api"
	"moat/internal/identity"
)

// FuzzDecodeCache: whatever is on disk, the decoder never panics, and what
// it accepts holds only names, ports and certificates the agent can act on
// and encodes back to a cache that decodes the same.
func FuzzDecodeCache(f *testing.F) {
	uid := 1000
	good, _ := json.Marshal(cached{
		Revision: 7,
		Services: []api.Registration{{Name: "api", Node: "n1", Port: 8080, UID: &uid, PlaintextPort: 18080,
			Upstreams: []api.Upstream{{Service: "db", LocalPort: 15432}}}},
		Nodes:       []api.Node{{Name: "n1", MeshAddr: "127.0.0.1:15443"}},
		Policy:      api.Policy{Version: 3, YAML: "default: deny\n"},
		Revocations: identity.Revocations{Version: 2, Serials: []string{"0a"}, IDs: []string{"spiffe://example.org/svc/old"}},
	})
	f.Add(good)
	f.Add([]byte(`{"services":[{"name":"A/..","node":"n","port":1}]}`))
	f.Add([]byte(`{"bundle":["AAAA"]}`))
	f.Add([]byte(`{} {}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := decodeCache(data)
		if err != nil {
			return
		}
		for _, r := range u.Services {
			if identity.ValidName(r.Name) != nil || identity.ValidName(r.Node) != nil || r.Port < 1 || r.Port > 65535 {
				t.Fatalf("accepted a registration the agent cannot act on: %+v", r)
			}
		}
		again, err := json.Marshal(cached{Revision: u.Revision, Services: u.Services, Nodes: u.Nodes, Policy: *u.Policy, Revocations: *u.Revocations, Bundle: u.Bundle})
		if err != nil {
			t.Fatal(err)
		}
		u2, err := decodeCache(again)
		if err != nil {
			t.Fatalf("re-encoded cache refused: %v", err)
		}
		if len(u2.Services) != len(u.Services) || len(u2.Nodes) != len(u.Nodes) || u2.Revision != u.Revision {
			t.Fatalf("round trip changed the state: %+v → %+v", u, u2)
		}
	})
}
