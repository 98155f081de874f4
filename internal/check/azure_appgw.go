package check

import (
	"fmt"
	"sort"
	"strings"

	"moat/internal/check/tf"
)

// appGatewayPlainHTTP reports the HTTP listeners of Application Gateways
// that a public frontend (one with a public IP) takes traffic on and that
// a routing rule serves rather than redirects to HTTPS (AZ-TLS-001), as
// AWS-LB-001 does for an AWS load balancer's. A listener no rule names
// serves nothing. What is not known statically is read at its worst: a
// listener list as an HTTP listener on a public frontend, a protocol as
// Http, a frontend as a public one, a rule list as serving every listener,
// a redirect's target as not HTTPS; the finding says so.
func appGatewayPlainHTTP(byType map[string][]*tf.Resource, fs *findings) {
	for _, r := range byType["azurerm_application_gateway"] {
		public := map[string]bool{}
		anyPublic := unknown(r.Values, "frontend_ip_configuration")
		for _, b := range blocks(r.Values, "frontend_ip_configuration") {
			if str(b, "public_ip_address_id") != "" || unknown(b, "public_ip_address_id") {
				public[str(b, "name")], anyPublic = true, true
			}
		}
		if !anyPublic {
			continue
		}
		ports := map[string]string{}
		for _, b := range blocks(r.Values, "frontend_port") {
			ports[str(b, "name")] = fmt.Sprint(num(b, "port", 0))
			if unknown(b, "port") {
				ports[str(b, "name")] = notKnown
			}
		}
		https := map[string]bool{}
		listeners := blocksOr(r.Values, "http_listener", map[string]any{"name": notKnown, "protocol": tf.Unknown{}, "frontend_ip_configuration_name": tf.Unknown{}})
		for _, l := range listeners {
			if strings.EqualFold(str(l, "protocol"), "Https") {
				https[str(l, "name")] = true
			}
		}
		// toHTTPS: each redirect configuration's, and why not when not
		// known statically.
		toHTTPS := map[string]bool{}
		redirectUnk := map[string]string{}
		for _, b := range blocks(r.Values, "redirect_configuration") {
			n := str(b, "name")
			switch {
			case unknown(b, "target_listener_name") || unknown(b, "target_url"):
				redirectUnk[n] = "redirect_configuration " + n + "'s target is not known statically: read as not HTTPS"
			case str(b, "target_listener_name") != "":
				toHTTPS[n] = https[str(b, "target_listener_name")]
			default:
				toHTTPS[n] = strings.HasPrefix(strings.ToLower(str(b, "target_url")), "https://")
			}
		}
		// A path map redirects only when its default and every path rule
		// redirect to HTTPS.
		mapHTTPS := map[string]bool{}
		for _, b := range blocks(r.Values, "url_path_map") {
			ok := toHTTPS[str(b, "default_redirect_configuration_name")]
			for _, pr := range blocks(b, "path_rule") {
				ok = ok && toHTTPS[str(pr, "redirect_configuration_name")]
			}
			mapHTTPS[str(b, "name")] = ok && !blocksUnknown(b, "path_rule")
		}
		served := map[string][]string{} // listener → why it is read as served, "" when proven
		rules := blocks(r.Values, "request_routing_rule")
		if unknown(r.Values, "request_routing_rule") {
			rules = nil
			for _, l := range listeners {
				rules = append(rules, map[string]any{"http_listener_name": str(l, "name"), "name": notKnown})
			}
		}
		for _, rr := range rules {
			why := ""
			switch rd, pm := str(rr, "redirect_configuration_name"), str(rr, "url_path_map_name"); {
			case str(rr, "name") == notKnown:
				why = "request_routing_rule not known statically: read as serving every listener"
			case unknown(rr, "redirect_configuration_name") || unknown(rr, "url_path_map_name"):
				why = "request_routing_rule " + str(rr, "name") + "'s redirect or path map is not known statically: read as serving"
			case rd != "" && toHTTPS[rd], pm != "" && mapHTTPS[pm]:
				continue
			case rd != "" && redirectUnk[rd] != "":
				why = redirectUnk[rd]
			}
			if unknown(rr, "http_listener_name") {
				why = strings.TrimPrefix(why+"; request_routing_rule "+str(rr, "name")+"'s listener is not known statically: read as any", "; ")
				for _, l := range listeners {
					served[str(l, "name")] = append(served[str(l, "name")], why)
				}
				continue
			}
			l := str(rr, "http_listener_name")
			served[l] = append(served[l], why)
		}
		// A listener whose name is not known statically (the stand-in for
		// a list, or a dynamic block's) is whichever the rules serve that
		// name no known listener.
		known := map[string]bool{}
		for _, l := range listeners {
			if !unknown(l, "name") && str(l, "name") != notKnown {
				known[str(l, "name")] = true
			}
		}
		var others []string
		for l, whys := range served {
			if !known[l] {
				others = append(others, whys...)
			}
		}
		var msgs []string
		for _, l := range listeners {
			name := str(l, "name")
			whys, ok := served[name]
			if unknown(l, "name") || name == notKnown {
				name, whys, ok = notKnown, others, len(others) > 0
			}
			if !ok || strings.EqualFold(str(l, "protocol"), "Https") {
				continue
			}
			var assumed []string
			switch fe := str(l, "frontend_ip_configuration_name"); {
			case unknown(l, "frontend_ip_configuration_name") || unknown(r.Values, "frontend_ip_configuration"):
				assumed = append(assumed, "its frontend is not known statically: read as public")
			case !public[fe]:
				continue // a private frontend's
			}
			if unknown(l, "protocol") {
				assumed = append(assumed, "its protocol is not known statically: read as Http")
			}
			if name == notKnown {
				assumed = append(assumed, "its name is not known statically: read as one a routing rule names")
			}
			// One rule that serves it for certain makes the others'
			// assumptions moot.
			var ruleWhys []string
			for _, w := range whys {
				if w == "" {
					ruleWhys = nil
					break
				}
				ruleWhys = append(ruleWhys, w)
			}
			assumed = append(assumed, ruleWhys...)
			port, ok := ports[str(l, "frontend_port_name")]
			if !ok {
				port = notKnown
			}
			msg := fmt.Sprintf("listener %s on port %s of a public frontend serves HTTP without redirecting to HTTPS", name, port)
			if len(assumed) > 0 {
				msg = fmt.Sprintf("listener %s on port %s of a public frontend may serve HTTP without redirecting to HTTPS (%s)", name, port, strings.Join(dedup(assumed), "; "))
			}
			msgs = append(msgs, msg)
		}
		if len(msgs) == 0 {
			continue
		}
		sort.Strings(msgs)
		if len(https) == 0 && len(known) == len(listeners) {
			msgs = append(msgs, "it has no HTTPS listener")
		}
		fs.add(RuleAzWeakTLS, r, nil, "%s", strings.Join(msgs, "; "))
	}
}
