package server

import (
	"testing"

	"moat/internal/flow"
)

// An egress gateway records flows whose source is a service of another
// node and whose destination is outside the mesh: they are about its node
// through the proxy endpoint, its own service, and about no other.
func TestAboutNodeThroughProxy(t *testing.T) {
	s := fuzzServer(t)
	nodes := map[string]string{"egress": "n1", "api": "n2", "billing": "n3"}
	rec := func(proxy *flow.Endpoint) *flow.Record {
		return &flow.Record{SrcEndpoint: &flow.Endpoint{UID: "spiffe://example.org/svc/api", SvcName: "api"},
			DstEndpoint: &flow.Endpoint{Hostname: "api.stripe.com", Port: 443}, ProxyEndpoint: proxy}
	}
	cases := []struct {
		name  string
		proxy *flow.Endpoint
		want  bool
	}{
		{"through this node's gateway", &flow.Endpoint{UID: "spiffe://example.org/svc/egress", SvcName: "egress"}, true},
		{"no proxy: about api, not here", nil, false},
		{"another node's service as proxy", &flow.Endpoint{UID: "spiffe://example.org/svc/billing", SvcName: "billing"}, false},
		{"proxy ID and name disagree", &flow.Endpoint{UID: "spiffe://example.org/svc/billing", SvcName: "egress"}, false},
		{"this node's gateway by its name alone", &flow.Endpoint{Name: "egress"}, true},
		{"another node's service by its name alone", &flow.Endpoint{Name: "billing"}, false},
	}
	for _, c := range cases {
		if got := s.aboutNode(rec(c.proxy), "n1", nodes); got != c.want {
			t.Errorf("%s: aboutNode = %v, want %v", c.name, got, c.want)
		}
	}
}
