package check

import (
	"maps"
	"slices"
	"sort"
	"strings"

	"moat/internal/check/tf"
)

// azureFrontDoors publishes what an Azure Front Door (Standard or Premium)
// reaches through a private link origin (azurerm_cdn_frontdoor_origin with
// private_link to an azurerm_private_link_service of the project): the
// internet reaches the Front Door endpoint, Front Door sends each request
// through the private link service, whose connection comes from its NAT
// subnet, to the internal load balancer frontend the service fronts, and
// that balancer's rules forward on to the machines of their pools. Front
// Door connects to the origin's http_port (80 unless set) for routes that
// forward over HTTP and its https_port (443 unless set) for those that
// forward over HTTPS; the routes naming the origin's group say which
// (forwarding_protocol, supported_protocols). An origin group no route of
// the project names takes no traffic, unless a route's group is not known
// statically (a project that declares no route at all is noted: its
// routes are kept elsewhere); a value not known statically is read at its worst and said
// so. Origins reached over the internet (a public IP or hostname) are
// reached from the internet on their own and need no second path.
func (m *Model) azureFrontDoors(byType map[string][]*tf.Resource, ms []*azMachine, ilbs map[string][]ilbRule) {
	if len(byType["azurerm_cdn_frontdoor_origin"]) == 0 {
		return
	}
	// The ports each origin group is sent to, by its routes.
	const httpFwd, httpsFwd = 1, 2
	routed := map[string]int{}
	anyGroup := 0 // a route whose origin group is not known statically
	for _, r := range byType["azurerm_cdn_frontdoor_route"] {
		if has(r.Values, "enabled") && !unknown(r.Values, "enabled") && !boolean(r.Values, "enabled", true) {
			continue
		}
		fwd := httpFwd | httpsFwd
		switch p := str(r.Values, "forwarding_protocol"); {
		case unknown(r.Values, "forwarding_protocol"):
		case strings.EqualFold(p, "HttpOnly"):
			fwd = httpFwd
		case strings.EqualFold(p, "HttpsOnly"):
			fwd = httpsFwd
		default: // MatchRequest: as the client came
			if ps, unk := strs(r.Values, "supported_protocols"); !unk && len(ps) > 0 {
				fwd = 0
				for _, s := range ps {
					if strings.EqualFold(s, "Http") {
						fwd |= httpFwd
					}
					if strings.EqualFold(s, "Https") {
						fwd |= httpsFwd
					}
				}
			}
		}
		if unknown(r.Values, "cdn_frontdoor_origin_group_id") {
			anyGroup |= fwd
			continue
		}
		g := m.addr(str(r.Values, "cdn_frontdoor_origin_group_id"))
		routed[g] |= fwd
	}
	// The rules of an internal balancer by its address, each frontend's
	// address with them.
	byLB := map[string][]string{}
	for a, rs := range ilbs {
		for _, ru := range rs {
			if !slices.Contains(byLB[ru.lb], a) {
				byLB[ru.lb] = append(byLB[ru.lb], a)
			}
		}
	}
	for lb := range byLB {
		sort.Strings(byLB[lb])
	}
	for _, o := range byType["azurerm_cdn_frontdoor_origin"] {
		if has(o.Values, "enabled") && !unknown(o.Values, "enabled") && !boolean(o.Values, "enabled", true) {
			continue
		}
		pl := block(o.Values, "private_link")
		if pl == nil {
			continue
		}
		if unknown(pl, "private_link_target_id") {
			m.note(o, "private_link.private_link_target_id is not known statically: what Front Door reaches through it is not followed")
			continue
		}
		target := str(pl, "private_link_target_id")
		pls := m.lookup(target)
		switch {
		case pls != nil && pls.Type == "azurerm_application_gateway",
			pls == nil && strings.Contains(strings.ToLower(target), "/applicationgateways/"):
			m.note(o, "private_link reaches application gateway %s, whose private listeners this reader does not follow: what it routes Front Door's requests to is not evaluated", orUnknown(m.addr(target)))
			continue
		case pls == nil && strings.Contains(strings.ToLower(target), "/privatelinkservices/"):
			m.note(o, "private_link reaches private link service %s, which is not in the scanned code: what Front Door reaches through it is not followed", target)
			continue
		case pls == nil || pls.Type != "azurerm_private_link_service":
			continue // a web app, storage account or the like: read as a service
		}
		group := m.addr(str(o.Values, "cdn_frontdoor_origin_group_id"))
		fwd, assumed := routed[group]|anyGroup, []string(nil)
		switch {
		case unknown(o.Values, "cdn_frontdoor_origin_group_id"):
			fwd = httpFwd | httpsFwd
			assumed = append(assumed, o.Address+": cdn_frontdoor_origin_group_id is not known statically: assumed routed over HTTP and HTTPS")
		case routed[group] == 0 && anyGroup != 0:
			assumed = append(assumed, o.Address+": a route's origin group is not known statically: assumed to be this origin's")
		case fwd == 0 && m.lookup(group) == nil:
			fwd = httpFwd | httpsFwd
			assumed = append(assumed, o.Address+": its origin group is not in the scanned code: assumed routed over HTTP and HTTPS")
		}
		if fwd == 0 && len(byType["azurerm_cdn_frontdoor_route"]) == 0 {
			m.note(o, "no route of the scanned code sends requests to its origin group: what Front Door reaches through private link service %s is not followed", pls.Address)
		}
		if fwd == 0 {
			continue // no route sends requests to its group
		}
		var ports []int
		if fwd&httpFwd != 0 {
			ports = append(ports, portOr(o.Values, "http_port", 80))
		}
		if fwd&httpsFwd != 0 {
			ports = append(ports, portOr(o.Values, "https_port", 443))
		}
		var from Source
		for _, nc := range blocks(pls.Values, "nat_ip_configuration") {
			if ss := m.subnetsOf(strList(nc, "subnet_id")); len(ss) > 0 && from.Name == "" {
				from = m.SubnetSource(ss[0])
				from.Name = pls.Address + " (in " + ss[0].Addr + ")"
			}
		}
		var fronts []string
		for _, id := range strList(pls.Values, "load_balancer_frontend_ip_configuration_ids") {
			fronts = append(fronts, byLB[m.addr(id)]...)
		}
		// A frontend's ID (azurerm_lb.x.frontend_ip_configuration[0].id)
		// is known only when applied: it is one of the balancer's it
		// can only come from, any balancer's when that is not known.
		switch unk, lbs := unknownRefs(pls.Values, "load_balancer_frontend_ip_configuration_ids"); {
		case unk && len(lbs) > 0:
			for _, lb := range lbs {
				fronts = append(fronts, byLB[m.addr(lb)]...)
			}
		case unk:
			for _, lb := range slices.Sorted(maps.Keys(byLB)) {
				fronts = append(fronts, byLB[lb]...)
			}
			assumed = append(assumed, pls.Address+": load_balancer_frontend_ip_configuration_ids not known statically: assumed to be any internal load balancer's")
		}
		fronts = dedup(fronts)
		door := o.Address
		front := func(inet Source) Result {
			return Result{Reachable: true, From: inet.Set, Path: []Hop{{Kind: "source", Detail: inet.Name},
				{Kind: "gateway", Addr: door, Detail: "Azure Front Door origin of " + group + ", reached from the internet through its profile's endpoints"}}}
		}
		hop := Hop{Kind: "gateway", Addr: pls.Address, Detail: "private link service carries Front Door's connection to its load balancer frontend"}
		reached := false
		for _, port := range ports {
			seen := map[*azMachine]bool{}
			for _, a := range fronts {
				ts, why := resolve(ms, ilbs, a, "tcp", port)
				for _, t := range ts {
					if seen[t.mc] {
						continue
					}
					seen[t.mc], reached = true, true
					as := slices.Clip(assumed)
					if why != "" {
						as = append(as, pls.Address+": load balancer frontend "+why)
					}
					if t.assumed != "" {
						as = append(as, t.assumed)
					}
					t.mc.e.Published = append(t.mc.e.Published, Publish{Proto: "tcp", Port: t.port, front: front,
						Hops: append([]Hop{hop}, t.hops...), From: from, Gateway: o.Address, Assumed: as})
				}
			}
		}
		if !reached && len(fronts) == 0 {
			m.note(o, "its private link service %s fronts no internal load balancer of the scanned code: what Front Door reaches through it is not followed", pls.Address)
		}
	}
}

// portOr reads port k of vals, or def when it is not set; -1 when it is
// not known statically.
func portOr(vals map[string]any, k string, def int) int {
	if !has(vals, k) {
		return def
	}
	return portOf(vals, k)
}
