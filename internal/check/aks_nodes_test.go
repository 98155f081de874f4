package check

import (
	"context"
	"strings"
	"testing"
)

// TestAKSNodePools checks that AKS node pools named in a subnet of the
// configuration are machines there, behind its NSG: a pool whose nodes
// have public addresses exposes the kubelet the NSG admits the internet
// to, and every pool is reached from the network on the kubelet's port,
// the NSG AKS puts on the nodes' interfaces being said to be assumed.
func TestAKSNodePools(t *testing.T) {
	const dir = "testdata/azure/aks-nodes"
	rep := run(t, dir)
	got := activeOn(rep, RuleAzExposedPort, "azurerm_kubernetes_cluster.main")
	if len(got) != 1 || got[0].Severity != Critical || !strings.Contains(got[0].Message, "10250") {
		t.Errorf("%s on the default pool's public nodes: %+v, want one critical naming the kubelet", RuleAzExposedPort, got)
	}
	if got := activeOn(rep, RuleAzExposedPort, "azurerm_kubernetes_cluster_node_pool.user"); len(got) != 0 {
		t.Errorf("%s on a pool without public addresses: %+v, want none", RuleAzExposedPort, got)
	}
	acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, "azurerm_kubernetes_cluster_node_pool.user")
	if err != nil {
		t.Fatal(err)
	}
	reached := false
	for _, a := range acc {
		if a.Source == "azurerm_subnet.ops" && a.Port == 10250 {
			reached = true
		}
	}
	if !reached {
		t.Errorf("the ops subnet does not reach the user pool's kubelet: %+v", acc)
	}
	wantNotes(t, rep, "NSG of its own")
}
