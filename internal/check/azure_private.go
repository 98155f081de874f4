package check

import (
	"strings"

	"moat/internal/check/tf"
)

// azurePrivatePorts are the ports of the Azure data services a delegated
// subnet or a private endpoint puts in a network.
var azurePrivatePorts = map[string][]int{
	"azurerm_postgresql_flexible_server":  {5432},
	"azurerm_mysql_flexible_server":       {3306},
	"azurerm_postgresql_server":           {5432},
	"azurerm_mysql_server":                {3306},
	"azurerm_mariadb_server":              {3306},
	"azurerm_mssql_server":                {1433},
	"azurerm_sql_server":                  {1433},
	"azurerm_redis_cache":                 {6379, 6380},
	"azurerm_managed_redis":               {10000},
	"azurerm_redis_enterprise_cluster":    {10000},
	"azurerm_cosmosdb_postgresql_cluster": {5432},
}

// azurePrivateData adds the Azure data services reached inside a virtual
// network as endpoints in their subnets, on their service's ports, behind
// the subnets' NSGs: a PostgreSQL or MySQL flexible server in its delegated
// subnet, and each private endpoint of a server, in the endpoint's subnet
// and reaching that server (Endpoint.For). A private endpoint of a service
// not listed in azurePrivatePorts is not read.
func (m *Model) azurePrivateData(byType map[string][]*tf.Resource) {
	for _, typ := range []string{"azurerm_postgresql_flexible_server", "azurerm_mysql_flexible_server"} {
		for _, r := range byType[typ] {
			if !has(r.Values, "delegated_subnet_id") {
				continue // public access: its firewall rules decide (AZ-NET-005)
			}
			e := &Endpoint{Addr: r.Address, Kind: "database", Res: r, Azure: true, DataTier: true, Ports: azurePrivatePorts[typ]}
			e.Listens = listensOn(e.Ports)
			e.Subnets = m.subnetsIn(e, r.Values, "delegated_subnet_id")
			m.Endpoints = append(m.Endpoints, e)
		}
	}
	// A Premium cache injected into a subnet (subnet_id) answers there,
	// behind the subnet's NSG, on its TLS port 6380 and, with its non-TLS
	// port on (or not known statically), 6379; one with shards answers on
	// their ports too (13000-13999, 15000-15999), so it is read as
	// answering on any port.
	for _, r := range byType["azurerm_redis_cache"] {
		if !has(r.Values, "subnet_id") {
			continue // reached at its public endpoint, by its firewall rules (AZ-NET-006)
		}
		e := &Endpoint{Addr: r.Address, Kind: "cache", Res: r, Azure: true, DataTier: true, Ports: []int{6380}}
		for _, k := range []string{"enable_non_ssl_port", "non_ssl_port_enabled"} {
			if unknown(r.Values, k) || boolean(r.Values, k, false) {
				e.Ports = []int{6379, 6380}
			}
		}
		if num(r.Values, "shard_count", 0) == 0 && !unknown(r.Values, "shard_count") {
			e.Listens = listensOn(e.Ports)
		}
		e.Subnets = m.subnetsIn(e, r.Values, "subnet_id")
		m.Endpoints = append(m.Endpoints, e)
	}
	// A SQL managed instance is in its subnet, behind its NSG, on 1433;
	// its public data endpoint (public_data_endpoint_enabled) answers on
	// 3342 at a public address Azure gives it, behind that NSG too.
	for _, r := range byType["azurerm_mssql_managed_instance"] {
		e := &Endpoint{Addr: r.Address, Kind: "SQL managed instance", Res: r, Azure: true, DataTier: true, Ports: []int{1433},
			Interior: "a SQL managed instance's 1433 takes no connection from the internet"}
		e.Listens = listensOn(e.Ports)
		e.Subnets = m.subnetsIn(e, r.Values, "subnet_id")
		m.Endpoints = append(m.Endpoints, e)
		why := ""
		switch {
		case unknown(r.Values, "public_data_endpoint_enabled"):
			why = "public_data_endpoint_enabled is not known statically: read as true, its public data endpoint answering on 3342"
		case boolean(r.Values, "public_data_endpoint_enabled", false):
			why = "public_data_endpoint_enabled = true: its public data endpoint answers on 3342 at a public address"
		default:
			continue
		}
		// A database's port, not a machine's: the NSG admitting the
		// internet there is graded as on a data store's, the instance is
		// not internet-facing as a virtual machine is (AZ-NET-003), and
		// the fix turns the endpoint off rather than removing a public IP.
		p := &Endpoint{Addr: r.Address, Kind: "SQL managed instance public data endpoint", Res: r, Azure: true, DataTier: true, PublicOnly: true, Ports: []int{3342},
			Public: true, PublicAssumed: unknown(r.Values, "public_data_endpoint_enabled"), Why: why, Subnets: e.Subnets,
			Fix: "Set public_data_endpoint_enabled = false and reach the instance from its virtual network (peering, a VPN, a private endpoint); or allow 3342 in its subnet's NSG only from the ranges of the clients that need it."}
		p.Listens = listensOn(p.Ports)
		m.Endpoints = append(m.Endpoints, p)
	}
	for _, r := range byType["azurerm_private_endpoint"] {
		for _, c := range blocks(r.Values, "private_service_connection") {
			if alias := "private_connection_resource_alias"; str(c, alias) != "" || unknown(c, alias) {
				// An alias names a private link service alone, the
				// project's or another subscription's.
				pls := m.ref(c, alias)
				if pls == "" {
					pls = str(c, alias)
				}
				m.note(r, "connects its subnet's network to private link service %s: what the load balancer behind it forwards to is reached from there, which is not evaluated", orUnknown(pls))
				continue
			}
			id := str(c, "private_connection_resource_id")
			target := m.lookup(m.addr(id))
			if target != nil && target.Type == "azurerm_private_link_service" || target == nil && strings.Contains(strings.ToLower(id), "/privatelinkservices/") {
				// The endpoint's network reaches what the service's load
				// balancer forwards to, from the service's NAT subnet.
				m.note(r, "connects its subnet's network to private link service %s: what the load balancer behind it forwards to is reached from there, which is not evaluated", orUnknown(m.addr(id)))
				continue
			}
			if target == nil || azurePrivatePorts[target.Type] == nil {
				continue
			}
			e := &Endpoint{Addr: r.Address, Kind: "private endpoint of " + target.Address, For: target.Address, Res: r, Azure: true, DataTier: true,
				Ports: azurePrivatePorts[target.Type]}
			e.Listens = listensOn(e.Ports)
			e.Subnets = m.subnetsIn(e, r.Values, "subnet_id")
			m.Endpoints = append(m.Endpoints, e)
		}
	}
}
