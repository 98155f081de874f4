package check

import "go4.org/netipx"

// Bound bounds the addresses a path admits through rules whose sources are
// address ranges of a known size not known statically (SGRule.Bounded):
// such a range is read as every address, so that the path is found
// wherever it is, while the addresses that arrive are among Known and
// ranges of the prefix lengths Bits, however they are placed.
type Bound struct {
	Known *netipx.IPSet
	Bits  []int
}

// naclBound is the bound of what the ordered rules admit of set on
// proto/port, when a rule of a bounded source (NACLRule.Bounded) admits
// some of it: without such rules the others decide, so what they admit and
// the bounded ranges hold all of it. nil when no such rule applies.
func naclBound(rules []NACLRule, proto string, port int, set *netipx.IPSet) *Bound {
	var rest []NACLRule
	var bits []int
	seen := map[string]bool{}
	for _, r := range rules {
		if !r.Allow || r.Bounded == nil {
			rest = append(rest, r)
			continue
		}
		// One rule of several ranges (Azure's every address) counts once.
		if portMatch(r.Proto, r.From, r.To, proto, port) && !seen[r.Where] {
			seen[r.Where] = true
			bits = append(bits, r.Bounded...)
		}
	}
	if len(bits) == 0 {
		return nil
	}
	known, _, _ := naclPass(rest, proto, port, set)
	return &Bound{Known: known, Bits: bits}
}

// sgBound is, as naclBound, the bound of what e's security groups admit;
// nil when a group of e is not known statically (it may admit anything).
func (m *Model) sgBound(e *Endpoint, proto string, port int, src Source, set *netipx.IPSet) *Bound {
	if e.SGsUnknown != "" {
		return nil
	}
	var bits []int
	rest := make([]*SG, 0, len(e.SGs))
	for _, g := range e.SGs {
		c := *g
		c.Ingress = nil
		for _, r := range g.Ingress {
			if r.Bounded != nil {
				if portMatch(r.Proto, r.From, r.To, proto, port) {
					bits = append(bits, r.Bounded...)
				}
				// What it names besides still admits.
				r.Assumed, r.Bounded = "", nil
			}
			c.Ingress = append(c.Ingress, r)
		}
		rest = append(rest, &c)
	}
	if len(bits) == 0 {
		return nil
	}
	known, _, _ := m.sgPass(rest, proto, port, src, set)
	return &Bound{Known: known, Bits: bits}
}

// within returns the result with its bound, when b is one, limited to what
// arrives.
func (r Result) within(b *Bound) Result {
	if b != nil && r.Reachable {
		r.Bound = &Bound{Known: intersect(b.Known, r.From), Bits: b.Bits}
	}
	return r
}

// describeFrom names the addresses a result admits: with a bound, the
// known ones and the ranges of known size, wherever they are.
func (m *Model) describeFrom(r Result) string {
	if r.Bound == nil {
		return m.describe(r.From)
	}
	some := boundedText(r.Bound.Bits) + " whose address is not known statically"
	if empty(r.Bound.Known) {
		return some
	}
	return m.describe(r.Bound.Known) + " and " + some
}
