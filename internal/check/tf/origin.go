package tf

import (
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// origins returns, for each attribute of b whose value in v is not known,
// the resources that the value can only have come from (see sources);
// attributes whose value may come from elsewhere are left out. An
// attribute of a nested block is keyed by its path, "origin/0/domain_name"
// (the block's index among those of its type), for the blocks written
// before any dynamic block of their type, whose index is then known.
func origins(b *body, v cty.Value, ctx *hcl.EvalContext, in *instance) map[string][]string {
	if !v.IsKnown() || v.IsNull() || !v.Type().IsObjectType() {
		return nil
	}
	var out map[string][]string
	put := func(k string, from []string) {
		if out == nil {
			out = map[string][]string{}
		}
		out[k] = from
	}
	for name, e := range b.attrs {
		if metaArgs[name] || !v.Type().HasAttribute(name) || v.GetAttr(name).IsWhollyKnown() {
			continue
		}
		if from := sources(e, ctx, in); len(from) > 0 {
			put(name, from)
		}
	}
	index, dynamic := map[string]int{}, map[string]bool{}
	for _, nb := range b.blocks {
		if nb.typ == "dynamic" {
			if len(nb.labels) == 1 {
				dynamic[nb.labels[0]] = true
			}
			continue
		}
		i := index[nb.typ]
		index[nb.typ]++
		if dynamic[nb.typ] || !v.Type().HasAttribute(nb.typ) {
			continue
		}
		list := v.GetAttr(nb.typ)
		if !list.IsKnown() || list.IsNull() || !list.Type().IsTupleType() || list.LengthInt() <= i {
			continue
		}
		for k, from := range origins(nb.body, list.Index(cty.NumberIntVal(int64(i))), ctx, in) {
			put(nb.typ+"/"+strconv.Itoa(i)+"/"+k, from)
		}
	}
	return out
}

// setFrom records from on the unknown value at path (origins' keys) of
// vals, or on each unknown element of the list there ([aws_subnet.a[
// count.index].id] when count.index is not known).
func setFrom(vals map[string]any, path string, from []string) {
	k, rest, nested := strings.Cut(path, "/")
	if !nested {
		switch v := vals[k].(type) {
		case Unknown:
			v.From = from
			vals[k] = v
		case []any:
			for i, x := range v {
				if u, ok := x.(Unknown); ok && len(u.From) == 0 {
					u.From = from
					v[i] = u
				}
			}
		}
		return
	}
	is, rest, _ := strings.Cut(rest, "/")
	i, err := strconv.Atoi(is)
	list, _ := vals[k].([]any)
	if err != nil || i >= len(list) {
		return
	}
	if m, ok := list[i].(map[string]any); ok {
		setFrom(m, rest, from)
	}
}

// sources returns the managed resources (addresses without instance keys,
// qualified by module, as Resource.Address is) whose IDs the unknown
// strings of e's value can only be. Every reference in e must be one of:
// the ID of a resource of module instance in (or the resource as a whole,
// as a splat or a function argument); count.index or another value that
// holds no string (a condition or an index that picks among them); a
// variable, local or module output whose known part holds no string and
// whose unknown strings have such sources themselves; each.key or
// each.value of a for_each not known statically whose elements have such
// sources; the IDs a lookup of the default VPC's subnets finds
// (DefaultSubnetsOf). It returns nil when some reference may bring a
// value of its own (another data source, a value given as a string, which
// may be a resource's address standing for its ID), so that a caller
// reads the value as anything at all. A
// string written in e itself is no resource of the project (their IDs are
// not known until apply): it names something outside what is scanned.
func sources(e hcl.Expression, ctx *hcl.EvalContext, in *instance) []string {
	if t, ok := e.(*hclsyntax.TemplateExpr); ok && !t.IsStringLiteral() {
		// "${aws_vpc.main.name}-peer" is a string of its own, not the
		// name it is made from.
		for _, p := range t.Parts {
			if l, ok := p.(*hclsyntax.LiteralValueExpr); ok && l.Val.Type() == cty.String && l.Val.AsString() != "" {
				return nil
			}
		}
	}
	prefix := ""
	if in.addr != "" {
		prefix = in.addr + "."
	}
	seen := map[string]bool{}
	for _, t := range e.Variables() {
		root := t.RootName()
		switch root {
		case "count":
			continue
		case "var", "local", "module", "data", "path", "terraform", "each", "self":
			v, diags := t.TraverseAbs(ctx)
			if diags.HasErrors() {
				return nil
			}
			v, _ = v.UnmarkDeep()
			if stringless(v.Type()) {
				continue
			}
			from := in.refFrom(t)
			if len(from) == 0 || knownStrings(v) {
				return nil
			}
			for _, a := range from {
				seen[a] = true
			}
			continue
		}
		if len(t) < 2 {
			return nil
		}
		name, ok := t[1].(hcl.TraverseAttr)
		if !ok || !idOnly(t[2:]) && !firewallEndpoint(root, t[2:]) && !lbFrontend(root, t[2:]) && !nameRef(root, t[2:]) {
			return nil
		}
		if !inScope(ctx, root) {
			return nil // not a resource: an iterator of a for expression
		}
		seen[prefix+root+"."+name.Name] = true
	}
	out := make([]string, 0, len(seen))
	for a := range seen {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// firewallEndpoint reports whether rest, read of a Network Firewall,
// reaches into its firewall_status, whose endpoints are the firewall's
// (NetworkFirewallEndpoint) whichever zone's is picked.
func firewallEndpoint(root string, rest hcl.Traversal) bool {
	if root != "aws_networkfirewall_firewall" {
		return false
	}
	for _, s := range rest {
		if a, ok := s.(hcl.TraverseAttr); ok {
			return a.Name == "firewall_status"
		}
	}
	return false
}

// lbFrontend reports whether rest, read of an Azure load balancer, is the
// ID of one of its frontends (azurerm_lb.ilb.frontend_ip_configuration[0].id,
// as a private link service names the frontend it fronts): a frontend of
// that balancer, whichever is picked.
func lbFrontend(root string, rest hcl.Traversal) bool {
	if root != "azurerm_lb" {
		return false
	}
	if len(rest) > 0 {
		if _, ok := rest[0].(hcl.TraverseIndex); ok {
			rest = rest[1:] // an instance of the balancer
		}
	}
	if len(rest) != 3 {
		return false
	}
	fe, ok1 := rest[0].(hcl.TraverseAttr)
	_, ok2 := rest[1].(hcl.TraverseIndex)
	id, ok3 := rest[2].(hcl.TraverseAttr)
	return ok1 && ok2 && ok3 && fe.Name == "frontend_ip_configuration" && id.Name == "id"
}

// nameRef reports whether rest, read of a resource of type typ, is the
// name it gives itself (ownName), of one instance or another: a domain
// policy's domain_name = aws_opensearch_domain.logs.domain_name names
// that domain.
func nameRef(typ string, rest hcl.Traversal) bool {
	if len(rest) > 0 {
		if _, ok := rest[0].(hcl.TraverseIndex); ok {
			rest = rest[1:]
		}
	}
	if len(rest) != 1 {
		return false
	}
	a, ok := rest[0].(hcl.TraverseAttr)
	return ok && ownName(typ, a.Name)
}

// refFrom returns the sources recorded for the variable, local or output
// of a single module call that t reads; nil for anything else.
func (in *instance) refFrom(t hcl.Traversal) []string {
	if len(t) < 2 {
		return nil
	}
	name, ok := t[1].(hcl.TraverseAttr)
	if !ok {
		return nil
	}
	switch t.RootName() {
	case "each":
		if len(t) != 2 {
			return nil
		}
		return in.eachFrom
	case "data":
		// A lookup of the default VPC's subnets, by the IDs it finds.
		if len(t) < 4 {
			return nil
		}
		lookup, ok1 := t[2].(hcl.TraverseAttr)
		attr, ok2 := t[3].(hcl.TraverseAttr)
		if !ok1 || !ok2 || !in.defaultSubnets[name.Name+"."+lookup.Name] || len(t) > 5 {
			return nil
		}
		one := name.Name == "aws_subnet"
		if one && (attr.Name != "id" || len(t) > 4) || !one && attr.Name != "ids" {
			return nil
		}
		if len(t) == 5 {
			if _, ok := t[4].(hcl.TraverseIndex); !ok {
				return nil
			}
		}
		return []string{DefaultSubnetsOf(dataAddr(in, name.Name, lookup.Name))}
	case "var":
		return in.varFrom[name.Name]
	case "local":
		return in.localFrom[name.Name]
	case "module":
		if len(t) < 3 {
			return nil
		}
		out, ok := t[2].(hcl.TraverseAttr)
		if !ok {
			return nil // module.x[0].out: an instance of a repeated call
		}
		for _, cs := range in.calls {
			if cs.cb.name == name.Name && cs.mode == modeSingle && len(cs.insts) == 1 {
				return cs.insts[0].outFrom[out.Name]
			}
		}
	}
	return nil
}

// idOnly reports whether what follows a resource's name in a reference
// reads what identifies it: nothing (the resource as a whole, as in a splat
// aws_route_table.private[*].id, whose .id is not part of the reference),
// an instance key, then at most .id, .arn, .name, .alias (a private link
// service's, which a private endpoint may name it by) or .service_name (a
// VPC endpoint service's, which an interface endpoint names it by), or an address or host
// name it answers on (addressAttrs: a CloudFront origin's domain_name =
// aws_lb.web.dns_name names that balancer). A name not known statically
// (name = "${var.prefix}-vnet") still names that resource where another
// refers to it by name, as Azure's virtual_network_name and
// network_security_group_name do. An address may be that of one of its
// nested blocks (azurerm_firewall.hub.ip_configuration[0].private_ip_address
// names that firewall). Another attribute may hold any value.
func idOnly(rest hcl.Traversal) bool {
	if len(rest) > 0 {
		if _, ok := rest[0].(hcl.TraverseIndex); ok {
			rest = rest[1:]
		}
	}
	switch len(rest) {
	case 0:
		return true
	case 1:
		a, ok := rest[0].(hcl.TraverseAttr)
		return ok && (a.Name == "id" || a.Name == "arn" || a.Name == "name" || a.Name == "alias" || a.Name == "service_name" || addressAttrs[a.Name])
	case 3:
		_, block := rest[0].(hcl.TraverseAttr)
		_, index := rest[1].(hcl.TraverseIndex)
		a, ok := rest[2].(hcl.TraverseAttr)
		return block && index && ok && addressAttrs[a.Name]
	}
	return false
}

// addressAttrs are the attributes that hold an address or host name of the
// resource itself, which the provider computes.
var addressAttrs = map[string]bool{
	"dns_name": true, "public_dns": true, "private_dns": true, "public_ip": true, "private_ip": true, "private_ip_address": true,
	"bucket_regional_domain_name": true, "bucket_domain_name": true, "website_endpoint": true,
}

func inScope(ctx *hcl.EvalContext, name string) bool {
	for c := ctx; c != nil; c = c.Parent() {
		if _, ok := c.Variables[name]; ok {
			return true
		}
	}
	return false
}

// stringless reports whether no value of type t holds a string: numbers,
// bools and collections of them. The dynamic type may hold anything.
func stringless(t cty.Type) bool {
	switch {
	case t == cty.Number || t == cty.Bool:
		return true
	case t.IsListType() || t.IsSetType() || t.IsMapType():
		return stringless(t.ElementType())
	case t.IsTupleType():
		for _, e := range t.TupleElementTypes() {
			if !stringless(e) {
				return false
			}
		}
		return true
	case t.IsObjectType():
		for _, e := range t.AttributeTypes() {
			if !stringless(e) {
				return false
			}
		}
		return true
	}
	return false
}

// knownStrings reports whether v holds a known string anywhere.
func knownStrings(v cty.Value) bool {
	switch {
	case !v.IsKnown() || v.IsNull():
		return false
	case v.Type() == cty.String:
		return true
	case v.CanIterateElements():
		for it := v.ElementIterator(); it.Next(); {
			if _, e := it.Element(); knownStrings(e) {
				return true
			}
		}
	}
	return false
}

// planSources is sources for a plan's configuration expression, which
// lists only its references: every one must be to the ID of a resource of
// the module (or the resource as a whole) or be count.index; the types of
// other values are not in the plan, so any other reference may bring a
// value of its own.
func planSources(e any, sc *scope) []string {
	em, _ := e.(map[string]any)
	refs, _ := em["references"].([]any)
	seen := map[string]bool{}
	for _, x := range refs {
		n, _ := x.(string)
		m := refRe.FindStringSubmatch(n)
		if m == nil || len(m[0]) != len(n) {
			return nil
		}
		switch head, attr := m[1], m[4]; {
		case head == "count":
		case head == "var" || head == "local" || head == "module" || head == "data" || head == "each" ||
			head == "path" || head == "terraform" || head == "self":
			return nil
		case attr != "" && attr != "id" && attr != "arn" && attr != "name":
			return nil
		default:
			seen[sc.prefix+head+"."+m[2]] = true
		}
	}
	out := make([]string, 0, len(seen))
	for a := range seen {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}
