package check

import "moat/internal/check/tf"

// aksNodePools places the node pools of AKS clusters that name their
// subnet (vnet_subnet_id) in it as machines, every port theirs (the
// kubelet, NodePorts, SSH), behind the subnet's NSG. AKS gives the nodes'
// interfaces an NSG of its own, in the node resource group the scanned
// code does not hold: it is read as admitting what reaches the subnet,
// and said so. A pool that names no subnet is in a network AKS makes,
// outside the scanned code, and is not placed (noteUnmodelled says so
// when its nodes have public addresses). The default pool is known as
// CLUSTER.default_node_pool.
func (m *Model) aksNodePools(byType map[string][]*tf.Resource) {
	type pool struct {
		r    *tf.Resource
		addr string
		vals map[string]any
	}
	var pools []pool
	for _, r := range byType["azurerm_kubernetes_cluster"] {
		if p := block(r.Values, "default_node_pool"); p != nil {
			pools = append(pools, pool{r, r.Address + ".default_node_pool", p})
		}
	}
	for _, r := range byType["azurerm_kubernetes_cluster_node_pool"] {
		pools = append(pools, pool{r, r.Address, r.Values})
	}
	for _, p := range pools {
		if !has(p.vals, "vnet_subnet_id") {
			continue
		}
		e := &Endpoint{Addr: p.addr, Kind: "node pool", Res: p.r, Azure: true}
		e.Subnets = m.subnetsIn(e, p.vals, "vnet_subnet_id")
		if len(e.Subnets) == 0 && len(e.SubnetsMaybe) == 0 && !e.SubnetsAny {
			continue
		}
		for _, k := range []string{"node_public_ip_enabled", "enable_node_public_ip"} {
			switch {
			case unknown(p.vals, k):
				e.Public, e.PublicAssumed, e.Why = true, true, k+" is not known statically: assumed true, each node having a public address"
			case boolean(p.vals, k, false):
				e.Public, e.Why = true, k+" = true: each node has a public address"
			}
		}
		if e.Public {
			e.Families = allInternet[:1] // AKS gives nodes IPv4 addresses
		}
		m.note(p.r, "%s: AKS gives the nodes' interfaces an NSG of its own, in the node resource group and not in the scanned code: assumed to admit what reaches the subnet", p.addr)
		m.Endpoints = append(m.Endpoints, e)
	}
}
