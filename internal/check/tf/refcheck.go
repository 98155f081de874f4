package tf

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// checkRefs rejects the references of m's resources and data sources that
// Terraform refuses before it plans: a resource type not followed by a
// resource's name (aws_security_group.*.id), each outside a block with
// for_each or with an attribute other than key and value, and resources
// that refer to each other in a cycle. Each is a Rejected note; the
// values are read as they are.
func (l *loader) checkRefs(m *module) {
	types := map[string]bool{}
	for _, r := range m.resources {
		types[r.typ] = true
	}
	edges := map[string][]string{}
	pos := map[string]Pos{}
	blocks := append(append([]*resBlock(nil), m.resources...), m.datas...)
	for i, r := range blocks {
		addr := r.typ + "." + r.name
		if i >= len(m.resources) {
			addr = "data." + addr
		}
		pos[addr] = r.pos
		_, forEach := r.body.attrs["for_each"]
		seen := map[string]bool{}
		bad := false
		for _, e := range bodyExprs(r.body) {
			for _, t := range e.Variables() {
				root := t.RootName()
				switch {
				case root == "each" && !forEach && !bad:
					bad = true
					l.notes = append(l.notes, Note{Pos: rangePos(t.SourceRange()), Address: m.qualify(addr), Rejected: true, kind: kindError,
						Msg: fmt.Sprintf("%s refers to each, which only a block with for_each has: Terraform rejects it (Reference to \"each\" in context without for_each), so the plan fails", traversalString(t))})
				case root == "each" && !bad && !eachAttr(t):
					bad = true
					l.notes = append(l.notes, Note{Pos: rangePos(t.SourceRange()), Address: m.qualify(addr), Rejected: true, kind: kindError,
						Msg: fmt.Sprintf("%s: each has only key and value, so Terraform rejects it (Unsupported attribute), and the plan fails", traversalString(t))})
				case types[root] && !bad && !attrStep(t, 1):
					bad = true
					l.notes = append(l.notes, Note{Pos: rangePos(t.SourceRange()), Address: m.qualify(addr), Rejected: true, kind: kindError,
						Msg: fmt.Sprintf("%s names the resource type %s without a resource's name: Terraform rejects it (Invalid reference: a resource type must be followed by the resource name), so the plan fails", traversalString(t), root)})
				}
				if to := refAddr(t, types); to != "" && !seen[to] {
					if _, ok := m.defined[to]; ok {
						seen[to] = true
						edges[addr] = append(edges[addr], to)
					}
				}
			}
		}
	}
	for _, c := range cycles(edges) {
		msg := fmt.Sprintf("%s refers to itself: Terraform rejects it (Self-referential block), so the plan fails", c[0])
		if len(c) > 1 {
			msg = fmt.Sprintf("%s refer to each other in a cycle (%s → %s): Terraform rejects the configuration (Cycle), so the plan fails", strings.Join(c, ", "), strings.Join(c, " → "), c[0])
		}
		l.notes = append(l.notes, Note{Pos: pos[c[0]], Address: m.qualify(c[0]), Rejected: true, kind: kindError, Msg: msg})
	}
}

// bodyExprs returns the expressions of bd at any depth, but for its
// lifecycle, provisioner and connection blocks, whose references Terraform
// reads apart.
func bodyExprs(bd *body) []hcl.Expression {
	var out []hcl.Expression
	names := make([]string, 0, len(bd.attrs))
	for n := range bd.attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		out = append(out, bd.attrs[n])
	}
	for _, b := range bd.blocks {
		if b.typ == "lifecycle" || b.typ == "provisioner" || b.typ == "connection" {
			continue
		}
		out = append(out, bodyExprs(b.body)...)
	}
	return out
}

// attrStep reports whether step i of t names an attribute.
func attrStep(t hcl.Traversal, i int) bool {
	if len(t) <= i {
		return false
	}
	_, ok := t[i].(hcl.TraverseAttr)
	return ok
}

// eachAttr reports whether t reads each.key or each.value.
func eachAttr(t hcl.Traversal) bool {
	if !attrStep(t, 1) {
		return false
	}
	n := t[1].(hcl.TraverseAttr).Name
	return n == "key" || n == "value"
}

// refAddr returns the resource or data source t refers to ("T.N" or
// "data.T.N"), "" when it names none.
func refAddr(t hcl.Traversal, types map[string]bool) string {
	root := t.RootName()
	switch {
	case root == "data" && attrStep(t, 1) && attrStep(t, 2):
		return "data." + t[1].(hcl.TraverseAttr).Name + "." + t[2].(hcl.TraverseAttr).Name
	case types[root] && attrStep(t, 1):
		return root + "." + t[1].(hcl.TraverseAttr).Name
	}
	return ""
}

// cycles returns the cycles of the graph edges, each once, as the nodes of
// a strongly connected component of more than one node, or of one that
// refers to itself, sorted.
func cycles(edges map[string][]string) [][]string {
	nodes := make([]string, 0, len(edges))
	for n := range edges {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	index, low, on := map[string]int{}, map[string]int{}, map[string]bool{}
	var stack []string
	var out [][]string
	var visit func(n string)
	visit = func(n string) {
		index[n], low[n] = len(index), len(index)
		stack = append(stack, n)
		on[n] = true
		for _, to := range edges[n] {
			if _, ok := index[to]; !ok {
				visit(to)
				low[n] = min(low[n], low[to])
			} else if on[to] {
				low[n] = min(low[n], index[to])
			}
		}
		if low[n] != index[n] {
			return
		}
		var scc []string
		for {
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			on[top] = false
			scc = append(scc, top)
			if top == n {
				break
			}
		}
		self := false
		for _, to := range edges[n] {
			self = self || to == n
		}
		if len(scc) > 1 || self {
			sort.Strings(scc)
			out = append(out, scc)
		}
	}
	for _, n := range nodes {
		if _, ok := index[n]; !ok {
			visit(n)
		}
	}
	return out
}
