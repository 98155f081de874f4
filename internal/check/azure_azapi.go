package check

import (
	"encoding/json"
	"strings"

	"moat/internal/check/tf"
)

// Resources written through the AzAPI provider (azapi_resource) name an
// ARM type and carry its properties in body, in ARM's names. Those the
// model reads are read as the azurerm resources they write; the others are
// noted (azapiSignal).

// azapiNSGType is the ARM type of a network security group.
const azapiNSGType = "Microsoft.Network/networkSecurityGroups"

// armType returns an azapi_resource's ARM type without its API version.
func armType(vals map[string]any) string {
	t, _, _ := strings.Cut(str(vals, "type"), "@")
	return t
}

// azapiAsAzurerm returns the azurerm resources that the project's
// azapi_resources write, by type, each at the azapi_resource's address:
// an NSG with its inline security rules.
func azapiAsAzurerm(rs []*tf.Resource) map[string][]*tf.Resource {
	out := map[string][]*tf.Resource{}
	for _, r := range rs {
		if strings.EqualFold(armType(r.Values), azapiNSGType) {
			out["azurerm_network_security_group"] = append(out["azurerm_network_security_group"], azapiNSG(r))
		}
	}
	return out
}

// azapiNSG reads an NSG's body (a map, or the JSON text azapi before 2.0
// took) as an azurerm_network_security_group: each of
// properties.securityRules a security_rule block. What is not known
// statically stays so: the rules are then read as allowing everything.
func azapiNSG(r *tf.Resource) *tf.Resource {
	out := *r
	out.Type = "azurerm_network_security_group"
	out.Values = map[string]any{"name": r.Values["name"]}
	body := r.Values["body"]
	if text, ok := body.(string); ok {
		var v any
		if json.Unmarshal([]byte(text), &v) != nil {
			out.Values["security_rule"] = tf.Unknown{Why: "body is not JSON"}
			return &out
		}
		body = v
	}
	var rules any
	switch b := body.(type) {
	case map[string]any:
		switch p := b["properties"].(type) {
		case map[string]any:
			rules = p["securityRules"]
		case tf.Unknown:
			rules = p
		}
	case tf.Unknown:
		rules = b
	}
	switch l := rules.(type) {
	case []any:
		var blocks []any
		for _, e := range l {
			rule, ok := e.(map[string]any)
			if !ok {
				blocks = append(blocks, tf.Unknown{Why: "security rule not known statically"})
				continue
			}
			blocks = append(blocks, azapiRule(rule))
		}
		out.Values["security_rule"] = blocks
	case tf.Unknown:
		out.Values["security_rule"] = l
	}
	return &out
}

// azapiRuleNames maps an ARM security rule's properties to azurerm's.
var azapiRuleNames = map[string]string{
	"priority": "priority", "direction": "direction", "access": "access", "protocol": "protocol",
	"sourceAddressPrefix": "source_address_prefix", "sourceAddressPrefixes": "source_address_prefixes",
	"sourcePortRange": "source_port_range", "sourcePortRanges": "source_port_ranges",
	"destinationAddressPrefix": "destination_address_prefix", "destinationAddressPrefixes": "destination_address_prefixes",
	"destinationPortRange": "destination_port_range", "destinationPortRanges": "destination_port_ranges",
}

// azapiRule reads one element of securityRules ({name, properties}) as a
// security_rule block; application security groups ([{id}]) become the
// lists of IDs azurerm takes.
func azapiRule(rule map[string]any) map[string]any {
	b := map[string]any{"name": rule["name"]}
	props, ok := rule["properties"].(map[string]any)
	if !ok {
		// Not known statically: every property is.
		for _, k := range azapiRuleNames {
			b[k] = tf.Unknown{Why: "security rule properties not known statically"}
		}
		return b
	}
	for arm, k := range azapiRuleNames {
		if v, ok := props[arm]; ok {
			b[k] = v
		}
	}
	for arm, k := range map[string]string{"sourceApplicationSecurityGroups": "source_application_security_group_ids",
		"destinationApplicationSecurityGroups": "destination_application_security_group_ids"} {
		switch l := props[arm].(type) {
		case []any:
			var ids []any
			for _, e := range l {
				if g, ok := e.(map[string]any); ok {
					ids = append(ids, g["id"])
				} else {
					ids = append(ids, tf.Unknown{Why: "application security group not known statically"})
				}
			}
			b[k] = ids
		case tf.Unknown:
			b[k] = l
		}
	}
	return b
}
