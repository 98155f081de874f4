package check

import (
	"net/netip"
	"strings"

	"moat/internal/check/tf"
)

// aksAPIServers makes each AKS cluster's API server an endpoint on 443,
// public unless the cluster is private (private_cluster_enabled, read as
// false, and said so, when not known statically). Authorized ranges
// (api_server_access_profile.authorized_ip_ranges, or azurerm 3.x's
// top-level api_server_authorized_ip_ranges) narrow it; none admits every
// address. The Kubernetes API authenticates every request, so what it
// admits is at most high (Endpoint.Gate, aksGate), unless Kubernetes RBAC is
// off.
func (m *Model) aksAPIServers(byType map[string][]*tf.Resource) {
	for _, r := range byType["azurerm_kubernetes_cluster"] {
		if boolean(r.Values, "private_cluster_enabled", false) {
			continue
		}
		e := &Endpoint{Addr: r.Address, Kind: "aks", Res: r, Azure: true, Ports: []int{443}, Managed: true, Public: true,
			Why: "private_cluster_enabled is not true", Fix: aksFix}
		pre3, _ := m.providerBefore("azurerm", "3.0.0")
		e.Gate, e.GateSev = aksGate(r.Values, pre3)
		if unknown(r.Values, "private_cluster_enabled") {
			e.PublicAssumed, e.Why = true, "private_cluster_enabled not known statically: assumed false"
		}
		ranges, unk := strs(r.Values, "api_server_authorized_ip_ranges")
		bits, sized := unknownBits(r.Values, "api_server_authorized_ip_ranges")
		if p := block(r.Values, "api_server_access_profile"); p != nil {
			more, u := strs(p, "authorized_ip_ranges")
			b, ok := unknownBits(p, "authorized_ip_ranges")
			ranges, unk, bits, sized = append(ranges, more...), unk || u, append(bits, b...), sized && ok
		}
		if !sized {
			bits = nil
		}
		for i, c := range ranges {
			// Azure takes an address alone for a range of one.
			if a, err := netip.ParseAddr(strings.TrimSpace(c)); err == nil {
				ranges[i] = netip.PrefixFrom(a, a.BitLen()).String()
			}
		}
		if len(ranges) == 0 && !unk {
			e.Allowed = append(e.Allowed, allInternet...)
			e.Why += " and no authorized IP ranges are set"
		}
		m.allowFrom(e, "authorized_ip_ranges", ranges, unk, bits)
		m.Endpoints = append(m.Endpoints, e)
	}
}

// aksGate says what authenticates the requests an AKS cluster's public API
// server takes (kubeGate), and what of the cluster's settings (v) leaves
// more to stolen credentials, with the severity that is then the most its
// exposure is: local accounts, on unless local_account_disabled, whose
// client certificates are static and pass by Azure AD; Azure AD tokens only
// where Azure AD integration is on
// (azure_active_directory_role_based_access_control), which needs
// Kubernetes RBAC. With Kubernetes RBAC off every request the API server
// authenticates is authorized for everything, and whether it takes
// anonymous requests then is AKS's choice, written nowhere in the
// cluster's settings: read at its worst, an anonymous request is too, so
// credentials are not known to stand in the way and nothing caps the
// exposure. A setting not known statically is read at its worst, and said
// so. Before azurerm 3.0 (pre3 names the version that says so) RBAC was a
// role_based_access_control block, off where the cluster has none; 3.0
// made role_based_access_control_enabled, true by default.
func aksGate(v map[string]any, pre3 string) (string, Severity) {
	rbacOff, aad := "", has(v, "azure_active_directory_role_based_access_control") || unknown(v, "azure_active_directory_role_based_access_control")
	legacy := block(v, "role_based_access_control")
	switch {
	case unknown(v, "role_based_access_control_enabled"):
		rbacOff = "role_based_access_control_enabled is not known statically: read as false, Kubernetes RBAC off"
	case !boolean(v, "role_based_access_control_enabled", true):
		rbacOff = "Kubernetes RBAC is off (role_based_access_control_enabled = false)"
	case unknown(v, "role_based_access_control") || unknown(legacy, "enabled"):
		rbacOff = "role_based_access_control is not known statically: read as off, Kubernetes RBAC off"
	case legacy != nil:
		if !boolean(legacy, "enabled", false) {
			rbacOff = "Kubernetes RBAC is off (role_based_access_control.enabled = false)"
		}
		aad = aad || has(legacy, "azure_active_directory") || unknown(legacy, "azure_active_directory")
	case pre3 != "" && !has(v, "role_based_access_control_enabled"):
		rbacOff = "Kubernetes RBAC is off: the cluster sets neither role_based_access_control nor role_based_access_control_enabled, and the azurerm provider before 3.0 (" + pre3 + ") then creates it without RBAC"
	}
	local := ""
	switch {
	case unknown(v, "local_account_disabled"):
		local = "local_account_disabled is not known statically: read as false"
	case !has(v, "local_account_disabled"):
		local = "local_account_disabled is not set"
	case !boolean(v, "local_account_disabled", false):
		local = "local_account_disabled = false"
	}
	var creds []string
	if rbacOff == "" && aad {
		creds = append(creds, "Azure AD tokens")
	}
	if local != "" {
		creds = append(creds, "local accounts' client certificates")
	}
	creds = append(creds, "service account tokens")
	var more []string
	if local != "" {
		more = append(more, "local accounts are on ("+local+"): their client certificates, which az aks get-credentials --admin hands out, are static credentials that pass by Azure AD and its audit and stay valid until the cluster's certificates are rotated, so one leaked kubeconfig opens the cluster from every address the endpoint admits")
	}
	if rbacOff != "" {
		return strings.Join(append([]string{rbacOff + ": the API server authorizes every request it authenticates (" + strings.Join(creds, ", ") +
			") for everything, and whether it takes anonymous requests then is AKS's choice, written nowhere in the cluster's settings: read at its worst, an anonymous request is authorized for everything too, so every address the endpoint admits may administer the cluster without credentials"}, more...), "; "), Critical
	}
	return kubeGate(strings.Join(creds, ", "), rbacAnonymous, more...), High
}

// aksFix is the remedy for an AKS public API server, naming its settings.
const aksFix = "Set private_cluster_enabled = true (Terraform replaces the cluster), reaching the API server from its virtual network or networks joined to it; while it must stay public, set api_server_access_profile.authorized_ip_ranges to the ranges that administer the cluster alone. Set local_account_disabled = true, with Azure AD integration, so that no static credential opens it."

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
