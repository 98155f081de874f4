package check

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"go4.org/netipx"

	"moat/internal/check/tf"
)

// Azure's data services (SQL, PostgreSQL, MySQL, MariaDB, Redis, Synapse)
// face the internet through their own firewalls rather than a virtual
// network, and storage accounts serve containers to anonymous readers
// when both say so.

// Azure data-service rule IDs.
const (
	RuleAzFirewallOpen    = "AZ-NET-005"
	RuleAzPublicContainer = "AZ-STO-001"
	RuleAzServiceOpen     = "AZ-NET-006"
)

func azurePaaSRules() []Rule {
	return []Rule{
		{RuleAzFirewallOpen, Critical, "Database or cache firewall admits the whole internet",
			"A server-level firewall rule of an Azure SQL, PostgreSQL, MySQL, MariaDB, Redis or Synapse service or a Cosmos DB for MongoDB (vCore) cluster (azurerm_mongo_cluster_firewall_rule), or the ipv4_firewall_rule blocks of an Analysis Services server (whose endpoint is always public; one with no such block has its firewall off and is reported at high), admits the internet at large: every internet address, or public ranges wider than a /8 of IPv4 or a /13 of IPv6 (the most any one network holds), such as 0.0.0.0/1, 2600::/12 or a firewall range from 1.2.3.4 to 2.3.4.5; private ranges such as 10.0.0.0/8 hold no internet address (a server's rules are read together, ranges compared as address sets, so ranges split over several rules count together), and the server does not turn public network access off (public_network_access_enabled false, a MongoDB cluster's public_network_access Disabled; nor, a PostgreSQL or MySQL flexible server, sit in a delegated subnet, which leaves it no public endpoint): its login or protocol port faces every address. The rule from 0.0.0.0 to 0.0.0.0 (\"allow Azure services\") admits every Azure tenant's services and is reported at medium; Azure Cache for Redis gives that rule no such meaning, and there it admits no client; a rule whose addresses are not known statically is read as admitting everyone, at high, as is a rule of a server outside the scanned code or whose public network access is not known statically (that it takes public connections is assumed).",
			"Admit only the addresses that need the server, or set public_network_access_enabled = false and reach it through a private endpoint or virtual network rule."},
		{RuleAzPublicContainer, Critical, "Storage container readable by anyone",
			"A storage container's container_access_type is blob or container, so anonymous readers list or read its blobs, and its account does not forbid public access (allow_nested_items_to_be_public, allow_blob_public_access in azurerm 2.x, set to false). An account outside the scanned code, or one that leaves the flag unset, is read as allowing it. An account that turns public network access off is reached through private endpoints only and is not reported; one whose network rules default to Deny is reported at medium: its anonymous readers are those of the ranges and subnets the rules admit.",
			"Set container_access_type = \"private\" and allow_nested_items_to_be_public = false on the account; hand out SAS tokens or use Entra ID for readers."},
		{RuleAzServiceOpen, Medium, "Azure data, secrets, registry, AI, search or messaging service accepts connections from every network",
			"The service leaves public network access on (public_network_access_enabled, true unless set) and admits every address: a storage account's, key vault's, container registry's or Azure AI services (OpenAI) account's (azurerm_cognitive_account) network rules default to Allow (with no network_rules, azurerm_storage_account_network_rules, network_acls or network_rule_set block Azure admits every address; a registry below the Premium SKU takes no network rules at all; a storage account whose own network_rules block and an azurerm_storage_account_network_rules both write its rules has whichever Terraform applies last, and is read as open when either admits every address); network rules that deny by default but whose IP rules (ip_rules, a registry's ip_rule blocks) hold the internet at large (public ranges wider than a /8 of IPv4 or a /13 of IPv6, AZ-NET-005) admit every address too, and IP rules not known statically are read so; a registry that also turns anonymous_pull_enabled on serves its images to anyone, and is high; a Cosmos DB account has no ip_range_filter (a string in azurerm 3.x, a list in 4.x) and does not set is_virtual_network_filter_enabled, or its filter holds the internet at large or an entry that is neither an address nor a CIDR range, which Azure rejects (CHECK-003) and which is read as every address; a Redis cache outside a subnet (one injected into a subnet is not publicly addressable, whatever public_network_access_enabled says; a subnet_id not known statically that may be null is read as none) has no azurerm_redis_firewall_rule (a cache with rules is judged by them, AZ-NET-005); an Azure Managed Redis instance (azurerm_managed_redis), which has no IP firewall, leaves public_network_access Enabled, its default (the finding says whether its database's access keys, access_keys_authentication_enabled, off unless set, open it besides Entra ID tokens); an Azure Cache for Redis Enterprise cluster (azurerm_redis_enterprise_cluster), which has neither an IP firewall nor a public network access switch, has no private endpoint (with one, it is reached through the endpoint alone). An Event Hubs namespace's network_rulesets (ip_rule blocks' ip_mask) and a Service Bus namespace's network_rule_set (or azurerm_servicebus_namespace_network_rule_set; default_action Allow unless set) are read as a storage account's network rules, save that a default action of Deny with no IP rule and no virtual network rule admits every network, as Azure then ignores it; an Azure AI Search service (azurerm_search_service) admits every network unless allowed_ips names some, and is read by them as by IP rules. Only keys and Entra ID then stand between the internet and the data or secrets. A Cosmos DB filter of 0.0.0.0 admits every Azure service, of every tenant, and is low. A private endpoint alone does not close the public one: the finding names it. A value that is not known statically is read as open, and the finding says so.",
			"Set default_action = \"Deny\" in network_rules, network_acls, network_rule_set or network_rulesets (and leave a registry's anonymous_pull_enabled false), allowed_ips on a search service, an ip_range_filter or virtual network filter on Cosmos DB, firewall rules on Redis (public_network_access = \"Disabled\" on Managed Redis, which has none), and admit only the ranges and subnets that need the service; or set public_network_access_enabled = false and reach it through a private endpoint."},
	}
}

// firewallTypes are the server-level firewall rules and the attributes
// that name their server.
var firewallTypes = map[string][]string{
	"azurerm_sql_firewall_rule":                        {"server_name"},
	"azurerm_mssql_firewall_rule":                      {"server_id"},
	"azurerm_postgresql_firewall_rule":                 {"server_name"},
	"azurerm_postgresql_flexible_server_firewall_rule": {"server_id"},
	"azurerm_mysql_firewall_rule":                      {"server_name"},
	"azurerm_mysql_flexible_server_firewall_rule":      {"server_name"},
	"azurerm_mariadb_firewall_rule":                    {"server_name"},
	"azurerm_redis_firewall_rule":                      {"redis_cache_name"},
	"azurerm_synapse_firewall_rule":                    {"synapse_workspace_id"},
	"azurerm_cosmosdb_postgresql_firewall_rule":        {"cluster_id"},
	"azurerm_mongo_cluster_firewall_rule":              {"mongo_cluster_id"},
}

// firewallServerTypes are the types a firewall rule's server may be.
var firewallServerTypes = map[string]string{
	"azurerm_sql_firewall_rule":                        "azurerm_sql_server",
	"azurerm_mssql_firewall_rule":                      "azurerm_mssql_server",
	"azurerm_postgresql_firewall_rule":                 "azurerm_postgresql_server",
	"azurerm_postgresql_flexible_server_firewall_rule": "azurerm_postgresql_flexible_server",
	"azurerm_mysql_firewall_rule":                      "azurerm_mysql_server",
	"azurerm_mysql_flexible_server_firewall_rule":      "azurerm_mysql_flexible_server",
	"azurerm_mariadb_firewall_rule":                    "azurerm_mariadb_server",
	"azurerm_redis_firewall_rule":                      "azurerm_redis_cache",
	"azurerm_synapse_firewall_rule":                    "azurerm_synapse_workspace",
	"azurerm_cosmosdb_postgresql_firewall_rule":        "azurerm_cosmosdb_postgresql_cluster",
	"azurerm_mongo_cluster_firewall_rule":              "azurerm_mongo_cluster",
}

// serverPublic reads a firewall rule's server's public network access
// switch: public_network_access_enabled, or public_network_access
// ("Enabled" or "Disabled", a Cosmos DB for MongoDB cluster's), on unless
// set. It names the switch when its value is not known statically.
func serverPublic(server *tf.Resource) (off bool, unknownSwitch string) {
	for _, k := range []string{"public_network_access_enabled", "public_network_access"} {
		switch {
		case !has(server.Values, k):
		case unknown(server.Values, k):
			return false, k
		case k == "public_network_access_enabled":
			return !boolean(server.Values, k, true), ""
		default:
			return !strings.EqualFold(str(server.Values, k), "Enabled"), ""
		}
	}
	return false, ""
}

// firewallRange reads a firewall rule's range; ok is false when either
// end is not an IPv4 address known statically (reported as unknown).
func firewallRange(b map[string]any) (lo, hi netip.Addr, unk, ok bool) {
	ends := [2]string{"start_ip_address", "end_ip_address"}
	if _, has := b["start_ip"]; has {
		ends = [2]string{"start_ip", "end_ip"}
	}
	if unknown(b, ends[0]) || unknown(b, ends[1]) {
		return lo, hi, true, false
	}
	lo, err1 := netip.ParseAddr(strings.TrimSpace(str(b, ends[0])))
	hi, err2 := netip.ParseAddr(strings.TrimSpace(str(b, ends[1])))
	if err1 != nil || err2 != nil || !lo.Is4() || !hi.Is4() || hi.Less(lo) {
		return lo, hi, false, false
	}
	return lo, hi, false, true
}

func (m *Model) azurePaaS(byType map[string][]*tf.Resource, fs *findings) {
	inet := m.Internet()
	// A server's rules are read together: ranges split over several
	// rules that span the internet between them admit it as one would.
	type ranged struct {
		r   *tf.Resource
		set *netipx.IPSet
	}
	byServer := map[string][]ranged{}
	var servers []string
	serverSev, serverWhat := map[string]Severity{}, map[string]string{}
	for _, typ := range sortedKeys(firewallTypes) {
		for _, r := range byType[typ] {
			var server *tf.Resource
			for _, a := range firewallTypes[typ] {
				if s := m.lookup(m.addrOf(firewallServerTypes[typ], m.ref(r.Values, a))); s != nil {
					server = s
				}
			}
			var off bool
			var unknownSwitch string
			if server != nil {
				off, unknownSwitch = serverPublic(server)
			}
			if off {
				continue // the firewall applies to nothing
			}
			if server != nil && m.ref(server.Values, "delegated_subnet_id") != "" {
				continue // a flexible server in a delegated subnet has no public endpoint
			}
			lo, hi, unk, ok := firewallRange(r.Values)
			switch {
			case unk:
				// Not proven: high, as other findings that rest on an
				// assumption.
				fs.addSev(RuleAzFirewallOpen, High, r, nil, "the rule's addresses are not known statically: read as admitting every internet address")
				continue
			case !ok:
				continue
			case lo == netip.IPv4Unspecified() && hi == netip.IPv4Unspecified() && typ == "azurerm_redis_firewall_rule":
				// Azure Cache for Redis gives the rule no meaning of its
				// own: 0.0.0.0 is no client's address.
				continue
			case lo == netip.IPv4Unspecified() && hi == netip.IPv4Unspecified():
				fs.addSev(RuleAzFirewallOpen, Medium, r, nil, "0.0.0.0 to 0.0.0.0 admits every Azure service, of every tenant")
				continue
			}
			var b netipx.IPSetBuilder
			b.AddRange(netipx.IPRangeFrom(lo, hi))
			got, _ := b.IPSet()
			// That the server takes public connections is proven only
			// of one in the scanned code that leaves public access on.
			what, sev := "its server (not in the scanned code: assumed to take public connections)", High
			key := r.Address
			switch {
			case server != nil && unknownSwitch != "":
				what, sev, key = server.Address+" ("+unknownSwitch+" not known statically: assumed on)", High, server.Address
			case server != nil:
				what, sev, key = server.Address, Critical, server.Address
			}
			if wide(inet.Set, got, nil) {
				fs.addSev(RuleAzFirewallOpen, sev, r, nil, "%s to %s admits %s to %s", lo, hi, m.worldText(got), what)
				continue
			}
			if _, seen := byServer[key]; !seen {
				servers = append(servers, key)
				serverSev[key], serverWhat[key] = sev, what
			}
			byServer[key] = append(byServer[key], ranged{r, got})
		}
	}
	for _, key := range servers {
		rs := byServer[key]
		var b netipx.IPSetBuilder
		var names []string
		for _, x := range rs {
			b.AddSet(x.set)
			names = append(names, x.r.Address)
		}
		if all, _ := b.IPSet(); len(rs) > 1 && wide(inet.Set, all, nil) {
			for _, x := range rs {
				fs.addSev(RuleAzFirewallOpen, serverSev[key], x.r, nil, "the rules %s admit %s to %s between them", strings.Join(names, ", "), m.worldText(all), serverWhat[key])
			}
		}
	}
	m.analysisServices(byType, fs)
	m.azureServiceOpen(byType, fs)
	bastionLinks(byType, fs)
	m.azureApps(byType, fs)
	separate := m.separateRules(byType)
	for _, r := range byType["azurerm_storage_container"] {
		access := strings.ToLower(str(r.Values, "container_access_type"))
		if unknown(r.Values, "container_access_type") {
			access = "not known statically"
		} else if access != "blob" && access != "container" {
			continue
		}
		var acct *tf.Resource
		for _, a := range []string{"storage_account_name", "storage_account_id"} {
			if s := m.lookup(m.addrOf("azurerm_storage_account", m.ref(r.Values, a))); s != nil && s.Type == "azurerm_storage_account" {
				acct = s
			}
		}
		why := "its storage account is not in the scanned code"
		sev := fs.rules[RuleAzPublicContainer].Severity
		if acct != nil {
			if publicOff(acct) {
				continue // reached through private endpoints only
			}
			if m.networkOpen(acct, "network_rules", separate) == nil {
				// Anonymous readers, but only from the ranges and subnets
				// the account's network rules admit.
				sev = Medium
			}
			forbids := false
			why = acct.Address + " does not set allow_nested_items_to_be_public = false"
			for _, k := range []string{"allow_nested_items_to_be_public", "allow_blob_public_access"} {
				if has(acct.Values, k) && !unknown(acct.Values, k) && !boolean(acct.Values, k, true) {
					forbids = true
				}
			}
			if forbids {
				continue
			}
		}
		if sev == Medium {
			fs.addSev(RuleAzPublicContainer, sev, r, nil, "container_access_type is %s and %s: anonymous readers reach its blobs from the ranges and subnets its network rules admit (default_action Deny)", access, why)
			continue
		}
		fs.add(RuleAzPublicContainer, r, nil, "container_access_type is %s and %s: anonymous readers reach its blobs", access, why)
	}
}

// analysisServices reads the inline firewall of each Analysis Services
// server, whose endpoint is public (it takes no private endpoint): its
// ipv4_firewall_rule blocks, read together, are all that stands between
// the server and the internet. With none, the provider sends no firewall
// settings and Azure leaves the firewall off.
func (m *Model) analysisServices(byType map[string][]*tf.Resource, fs *findings) {
	inet := m.Internet()
	for _, r := range byType["azurerm_analysis_services_server"] {
		rules := blocks(r.Values, "ipv4_firewall_rule")
		if blocksUnknown(r.Values, "ipv4_firewall_rule") {
			fs.addSev(RuleAzFirewallOpen, High, r, nil, "its ipv4_firewall_rule blocks are not known statically: read as admitting every internet address")
			continue
		}
		if len(rules) == 0 {
			fs.addSev(RuleAzFirewallOpen, High, r, nil, "it has no ipv4_firewall_rule: the provider then sends no firewall settings, and a server without them leaves its firewall off, admitting every internet address")
			continue
		}
		var b netipx.IPSetBuilder
		var unk []string
		for _, fr := range rules {
			if unknown(fr, "range_start") || unknown(fr, "range_end") {
				unk = append(unk, str(fr, "name"))
				continue
			}
			lo, err1 := netip.ParseAddr(strings.TrimSpace(str(fr, "range_start")))
			hi, err2 := netip.ParseAddr(strings.TrimSpace(str(fr, "range_end")))
			if err1 != nil || err2 != nil || !lo.Is4() || !hi.Is4() || hi.Less(lo) {
				continue
			}
			b.AddRange(netipx.IPRangeFrom(lo, hi))
		}
		all, _ := b.IPSet()
		switch {
		case wide(inet.Set, all, nil):
			fs.add(RuleAzFirewallOpen, r, nil, "its ipv4_firewall_rule blocks admit %s to its public endpoint", m.worldText(all))
		case len(unk) > 0:
			fs.addSev(RuleAzFirewallOpen, High, r, nil, "the addresses of its ipv4_firewall_rule %s are not known statically: read as admitting every internet address", strings.Join(unk, ", "))
		}
	}
}

// privateEndpoints maps each resource an azurerm_private_endpoint connects
// to the endpoints' addresses.
func (m *Model) privateEndpoints(byType map[string][]*tf.Resource) map[string][]string {
	out := map[string][]string{}
	for _, r := range byType["azurerm_private_endpoint"] {
		for _, c := range blocks(r.Values, "private_service_connection") {
			if t := m.addr(str(c, "private_connection_resource_id")); t != "" {
				out[t] = append(out[t], r.Address)
			}
		}
	}
	return out
}

// publicOff tells whether a resource turns public network access off
// (public_network_access_enabled = false, known statically).
func publicOff(r *tf.Resource) bool {
	return has(r.Values, "public_network_access_enabled") && !unknown(r.Values, "public_network_access_enabled") && !boolean(r.Values, "public_network_access_enabled", true)
}

// separateRules maps storage accounts and Service Bus namespaces to
// their network rules written as a resource of their own
// (azurerm_storage_account_network_rules,
// azurerm_servicebus_namespace_network_rule_set).
func (m *Model) separateRules(byType map[string][]*tf.Resource) map[string]*tf.Resource {
	separate := map[string]*tf.Resource{}
	for _, c := range []struct {
		typ, of string
		attrs   []string
	}{
		{"azurerm_storage_account_network_rules", "azurerm_storage_account", []string{"storage_account_id", "storage_account_name"}},
		{"azurerm_servicebus_namespace_network_rule_set", "azurerm_servicebus_namespace", []string{"namespace_id"}},
	} {
		for _, r := range byType[c.typ] {
			for _, a := range c.attrs {
				if s := m.lookup(m.addrOf(c.of, m.ref(r.Values, a))); s != nil {
					separate[s.Address] = r
				}
			}
		}
	}
	return separate
}

// networkOpen reads a storage account's, key vault's or container
// registry's network rules:
// why says how they admit every network, nothing when their default
// action is Deny. A service whose own block and a resource of their own
// (separate) both write its rules has whichever Terraform applies last,
// and is read as open when either admits every network.
func (m *Model) networkOpen(r *tf.Resource, blk string, separate map[string]*tf.Resource) []string {
	var why []string
	if unknown(r.Values, "public_network_access_enabled") {
		why = append(why, "public_network_access_enabled is not known statically: read as true")
	}
	rules, where := block(r.Values, blk), blk
	s := separate[r.Address]
	if rules == nil && s != nil {
		rules, where, s = s.Values, s.Address, nil
	}
	if s != nil {
		if open := m.rulesOpen(r, blk, s.Values, s.Address, why); open != nil {
			return append(open[:len(open):len(open)], "both "+blk+" and "+s.Address+" write its network rules, and whichever Terraform applies last is in force")
		}
	}
	return m.rulesOpen(r, blk, rules, where, why)
}

// rulesOpen reads one writer of a service's network rules (rules, named
// where; nil when there is none), after the reasons why already holds.
func (m *Model) rulesOpen(r *tf.Resource, blk string, rules map[string]any, where string, why []string) []string {
	switch {
	case rules == nil && unknown(r.Values, blk):
		why = append(why, blk+" is not known statically: read as admitting every network")
	case rules == nil:
		why = append(why, "no "+blk+" block: Azure admits every network")
	case unknown(rules, "default_action"):
		why = append(why, "default_action of "+where+" is not known statically: read as Allow")
	case strings.EqualFold(str(rules, "default_action"), "Deny"):
		return m.ipRulesOpen(rules, where)
	default:
		why = append(why, "default_action of "+where+" is Allow")
	}
	return why
}

// namespaceRulesNone tells why an Event Hubs or Service Bus namespace
// whose network rules deny by default admits every network all the same:
// with no IP rule and no virtual network rule, Azure ignores the default
// action and admits the internet (nothing for other services, and when
// some rule is given or the rules are not known statically).
func (m *Model) namespaceRulesNone(r *tf.Resource, blk string, separate map[string]*tf.Resource) []string {
	if r.Type != "azurerm_eventhub_namespace" && r.Type != "azurerm_servicebus_namespace" {
		return nil
	}
	rules, where := block(r.Values, blk), blk
	if rules == nil && separate[r.Address] != nil {
		rules, where = separate[r.Address].Values, separate[r.Address].Address
	}
	for _, k := range []string{"ip_rules", "ip_rule", "network_rules", "virtual_network_rule"} {
		if unknown(rules, k) || len(strList(rules, k)) > 0 || len(blocks(rules, k)) > 0 {
			return nil
		}
	}
	return []string{"default_action of " + where + " is Deny, but it gives no IP or virtual network rule: Azure then admits every network"}
}

// ipRulesOpen reads the IP rules of network rules that deny by default
// (ip_rules, or the ip_rule blocks of a registry, ip_range, or of an Event
// Hubs namespace, ip_mask): why they admit every internet address,
// nothing when they do not.
func (m *Model) ipRulesOpen(rules map[string]any, where string) []string {
	vals, unk := strs(rules, "ip_rules")
	attr := "ip_rules"
	for _, b := range blocks(rules, "ip_rule") {
		attr = "ip_rule blocks"
		if !strings.EqualFold(str(b, "action"), "Allow") && has(b, "action") && !unknown(b, "action") {
			continue
		}
		for _, k := range []string{"ip_range", "ip_mask"} {
			v, u := strs(b, k)
			vals, unk = append(vals, v...), unk || u
		}
	}
	if unknown(rules, "ip_rule") {
		unk = true
	}
	return m.rangesOpen(vals, unk, attr+" of "+where, "default_action of "+where+" is Deny, but its "+attr)
}

// rangesOpen tells why the address ranges an IP firewall admits (vals,
// addresses or CIDR blocks, named by what) admit every internet address,
// nothing when they do not; unk: some are not known statically, read as
// every address. said leads the reason.
func (m *Model) rangesOpen(vals []string, unk bool, what, said string) []string {
	if unk {
		return []string{what + " are not known statically: read as admitting every address"}
	}
	var b netipx.IPSetBuilder
	for _, v := range vals {
		if p, err := netip.ParsePrefix(v); err == nil {
			b.AddPrefix(p.Masked())
		} else if a, err := netip.ParseAddr(v); err == nil {
			b.Add(a)
		}
	}
	if admitted, _ := b.IPSet(); wide(m.Internet().Set, admitted, nil) {
		return []string{said + " admit " + m.worldText(admitted)}
	}
	return nil
}

// azureServiceOpen reports storage accounts, key vaults, container
// registries, AI services accounts, Event Hubs and Service Bus namespaces,
// search services, Cosmos DB accounts and Redis caches that admit every
// network (AZ-NET-006).
func (m *Model) azureServiceOpen(byType map[string][]*tf.Resource, fs *findings) {
	separate := m.separateRules(byType)
	pes := m.privateEndpoints(byType)
	report := func(r *tf.Resource, sev Severity, why []string) {
		msg := "public network access is on and " + strings.Join(why, "; ")
		if p := pes[r.Address]; len(p) > 0 {
			msg += "; " + strings.Join(p, ", ") + " reaches it privately, but public access stays on until public_network_access_enabled = false"
		}
		fs.addSev(RuleAzServiceOpen, sev, r, nil, "%s", msg)
	}
	for _, c := range []struct{ typ, block string }{
		{"azurerm_storage_account", "network_rules"},
		{"azurerm_key_vault", "network_acls"},
		{"azurerm_container_registry", "network_rule_set"},
		{"azurerm_cognitive_account", "network_acls"},
		{"azurerm_eventhub_namespace", "network_rulesets"},
		{"azurerm_servicebus_namespace", "network_rule_set"},
	} {
		for _, r := range byType[c.typ] {
			sku := str(r.Values, "sku")
			belowPremium := c.typ == "azurerm_container_registry" && !unknown(r.Values, "sku") && !strings.EqualFold(sku, "Premium")
			if belowPremium && (block(r.Values, c.block) != nil || unknown(r.Values, c.block)) {
				m.reject(r, "network_rule_set on a registry of the %s SKU: the provider takes network rules on the Premium SKU alone and refuses the plan", sku)
			}
			if publicOff(r) {
				continue
			}
			why := m.networkOpen(r, c.block, separate)
			if len(why) == 0 {
				why = m.namespaceRulesNone(r, c.block, separate)
			}
			if belowPremium && len(why) > 0 {
				why = append([]string{"the " + sku + " SKU takes no network rules (the Premium SKU alone does): Azure admits every network"},
					slices.DeleteFunc(why, func(w string) bool { return strings.HasPrefix(w, "no network_rule_set") })...)
			}
			if len(why) == 0 {
				continue
			}
			sev := Medium
			switch {
			case boolean(r.Values, "anonymous_pull_enabled", false):
				sev = High
				why = append(why, "anonymous_pull_enabled = true: anyone pulls its images without credentials")
			case unknown(r.Values, "anonymous_pull_enabled"):
				sev = High
				why = append(why, "anonymous_pull_enabled is not known statically: read as true, anyone pulling its images without credentials")
			}
			report(r, sev, why)
		}
	}
	inet := m.Internet().Set
	for _, r := range byType["azurerm_cosmosdb_account"] {
		if publicOff(r) {
			continue
		}
		var why []string
		if unknown(r.Values, "public_network_access_enabled") {
			why = append(why, "public_network_access_enabled is not known statically: read as true")
		}
		// A comma-separated string in azurerm 3.x, a list in 4.x.
		raw, unk := strs(r.Values, "ip_range_filter")
		var ranges []string
		for _, v := range raw {
			for _, x := range strings.Split(v, ",") {
				if x = strings.TrimSpace(x); x != "" {
					ranges = append(ranges, x)
				}
			}
		}
		vnetOnly := boolean(r.Values, "is_virtual_network_filter_enabled", false) && !unknown(r.Values, "is_virtual_network_filter_enabled")
		var b netipx.IPSetBuilder
		azureServices := false
		var invalid []string
		for _, x := range ranges {
			if x == "0.0.0.0" {
				azureServices = true
				continue
			}
			if p, err := netip.ParsePrefix(x); err == nil {
				b.AddPrefix(p.Masked())
			} else if a, err := netip.ParseAddr(x); err == nil {
				b.Add(a)
			} else {
				// A name or a first-last range Azure refuses at apply:
				// read at its worst, as an NSG's placeholder is, so that
				// nothing is hidden should it be replaced by anything.
				m.reject(r, "ip_range_filter %q is not an address or a CIDR range: Azure rejects it, so the apply fails; the filter is read as admitting every address", x)
				invalid = append(invalid, fmt.Sprintf("%q", x))
			}
		}
		admitted, _ := b.IPSet()
		sev := Medium
		switch {
		case unk:
			why = append(why, "ip_range_filter is not known statically: read as admitting every address")
		case len(invalid) > 0:
			what := "which is not an address or a CIDR range"
			if len(invalid) > 1 {
				what = "which are not addresses or CIDR ranges"
			}
			why = append(why, "ip_range_filter holds "+strings.Join(invalid, ", ")+", "+what+" (CHECK-003): read as admitting every address")
		case len(ranges) == 0 && vnetOnly:
			continue // only the virtual network rules' subnets
		case len(ranges) == 0:
			why = append(why, "no ip_range_filter and is_virtual_network_filter_enabled is not true: Cosmos DB admits every network")
		case wide(inet, admitted, nil):
			why = append(why, "ip_range_filter admits "+m.worldText(admitted))
		case azureServices:
			// As a firewall rule from 0.0.0.0 to 0.0.0.0 (AZ-NET-005).
			sev = Low
			why = append(why, "ip_range_filter holds 0.0.0.0, which admits every Azure service, of every tenant")
		default:
			continue
		}
		report(r, sev, why)
	}
	// A Redis cache without firewall rules admits every address; one with
	// rules is judged by them (AZ-NET-005). A cache injected into a
	// subnet (subnet_id, Premium) is not publicly addressable, and
	// public_network_access_enabled has no effect on it; a subnet_id not
	// known statically that may be null (from no resource) may leave the
	// cache at its public endpoint, and is read so.
	ruled := map[string]bool{}
	unresolved := false
	for _, r := range byType["azurerm_redis_firewall_rule"] {
		if s := m.lookup(m.addrOf("azurerm_redis_cache", m.ref(r.Values, "redis_cache_name"))); s != nil {
			ruled[s.Address] = true
		} else {
			unresolved = true
		}
	}
	for _, r := range byType["azurerm_redis_cache"] {
		maybeOutside := unknown(r.Values, "subnet_id") && len(unknownFrom(r.Values, "subnet_id")) == 0
		if publicOff(r) || (has(r.Values, "subnet_id") && !maybeOutside) || ruled[r.Address] || unresolved {
			continue
		}
		var why []string
		if maybeOutside {
			why = append(why, "subnet_id is not known statically and may be null: read as injected into no subnet, at its public endpoint")
		}
		if unknown(r.Values, "public_network_access_enabled") {
			why = append(why, "public_network_access_enabled is not known statically: read as true")
		}
		why = append(why, "no azurerm_redis_firewall_rule names it: Azure admits every address, and only the access keys stand in the way")
		report(r, Medium, why)
	}
	// An Azure AI Search service admits every network unless allowed_ips
	// names some.
	for _, r := range byType["azurerm_search_service"] {
		if publicOff(r) {
			continue
		}
		var why []string
		if unknown(r.Values, "public_network_access_enabled") {
			why = append(why, "public_network_access_enabled is not known statically: read as true")
		}
		ips, unk := strs(r.Values, "allowed_ips")
		open := m.rangesOpen(ips, unk, "allowed_ips", "allowed_ips")
		if len(ips) == 0 && !unk {
			open = []string{"no allowed_ips: Azure admits every network"}
		}
		if len(open) == 0 {
			continue
		}
		report(r, Medium, append(why, open...))
	}
	m.managedRedisOpen(byType, report)
	m.redisEnterpriseOpen(byType, pes, report)
}

// redisEnterpriseOpen reports each Azure Cache for Redis Enterprise
// cluster no private endpoint reaches: the Enterprise tiers have no IP
// firewall and take no public network access switch, so a cluster
// without a private endpoint answers every address on its databases'
// port, with only their access keys in the way; one with a private
// endpoint is reached through it alone.
func (m *Model) redisEnterpriseOpen(byType map[string][]*tf.Resource, pes map[string][]string, report func(*tf.Resource, Severity, []string)) {
	for _, r := range byType["azurerm_redis_enterprise_cluster"] {
		if len(pes[r.Address]) > 0 {
			continue
		}
		report(r, Medium, []string{"Redis Enterprise has no IP firewall and no public network access switch: without a private endpoint every address reaches its databases, and only their access keys stand in the way"})
	}
}

// managedRedisOpen reports each Azure Managed Redis instance whose public
// network access is on (public_network_access, Enabled unless set, read
// so when not known statically): Managed Redis has no IP firewall, so
// every address reaches its database's port, and what authenticates it is
// all that stands in the way: Entra ID tokens, and the database's access
// keys where access_keys_authentication_enabled is true (false unless
// set; read as true when not known statically).
func (m *Model) managedRedisOpen(byType map[string][]*tf.Resource, report func(*tf.Resource, Severity, []string)) {
	for _, r := range byType["azurerm_managed_redis"] {
		var why []string
		switch {
		case unknown(r.Values, "public_network_access"):
			why = append(why, "public_network_access is not known statically: read as Enabled")
		case has(r.Values, "public_network_access") && !strings.EqualFold(str(r.Values, "public_network_access"), "Enabled"):
			continue
		case !has(r.Values, "public_network_access"):
			why = append(why, "public_network_access is not set (Enabled unless set)")
		}
		why = append(why, "Managed Redis has no IP firewall: every address reaches it")
		db := block(r.Values, "default_database")
		switch {
		case db == nil:
			why = append(why, "it has no default_database yet: one added later is reached so")
		case unknown(db, "access_keys_authentication_enabled"):
			why = append(why, "default_database.access_keys_authentication_enabled is not known statically: read as true, so its access keys, static secrets, open it besides Entra ID tokens")
		case boolean(db, "access_keys_authentication_enabled", false):
			why = append(why, "default_database.access_keys_authentication_enabled = true: its access keys, static secrets, open it besides Entra ID tokens")
		default:
			why = append(why, "only Entra ID tokens stand in the way (access keys are off)")
		}
		report(r, Medium, why)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
