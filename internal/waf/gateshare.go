package waf

import "reflect"

// A transformation step shared by chains that differ by steps between.
//
// The gate caches a value's transformations per chain (gateNode), so two
// rules whose chains begin alike compute the beginning once. Chains that
// differ by a step in the middle share nothing after it, though on most
// values that step leaves the value as it was and the steps after it get
// the same input: CRS 934100 reads t:urlDecodeUni,t:jsDecode,
// t:removeWhitespace,t:base64Decode,t:urlDecodeUni,t:jsDecode,… and
// 934160 the same without removeWhitespace, so on a value without
// spaces both base64-decode the same string and decode the result twice
// more. A step's function given the same input returns the same value
// and reports the same change (transformations are functions of the
// value alone, which the cache relies on already), so where a twin of a
// step (the same function, after a chain that is the step's own with
// steps left out or added) has been computed on the same input, its
// result is taken.

// maxTwins bounds the twins a step is compared with.
const maxTwins = 4

// planTwins fills p.twins: for each node, the nodes with the same
// function whose parent's chain is a subsequence of its parent's chain
// or the other way round.
func (p *gatePlan) planTwins() {
	fn := make([]uintptr, len(p.nodes))
	chain := make([][]uintptr, len(p.nodes))
	for i := 1; i < len(p.nodes); i++ {
		fn[i] = reflect.ValueOf(p.nodes[i].fn).Pointer()
		// Parents come before their children (gateTest appends them so).
		chain[i] = append(append([]uintptr(nil), chain[p.nodes[i].parent]...), fn[i])
	}
	p.twins = make([][]int, len(p.nodes))
	for a := 1; a < len(p.nodes); a++ {
		for b := 1; b < len(p.nodes) && len(p.twins[a]) < maxTwins; b++ {
			if a == b || fn[a] != fn[b] {
				continue
			}
			pa, pb := chain[p.nodes[a].parent], chain[p.nodes[b].parent]
			if subsequence(pa, pb) || subsequence(pb, pa) {
				p.twins[a] = append(p.twins[a], b)
			}
		}
	}
}

// subsequence reports whether a is b with elements left out.
func subsequence(a, b []uintptr) bool {
	i := 0
	for _, x := range b {
		if i < len(a) && a[i] == x {
			i++
		}
	}
	return i == len(a)
}

// twin returns where in the cache a twin of node holds its value on
// value vi, the twin's input being in, node's: ok false when no twin
// has been computed on that input.
func (s *gateState) twin(node, vi int, in string) (at int, ok bool) {
	if s.p.twins == nil {
		return 0, false
	}
	for _, m := range s.p.twins[node] {
		at := vi*len(s.p.nodes) + m
		// A computed node's parent is computed: transformed reads it
		// from the cache.
		if s.tstep[at] != 0 && s.transformed(s.p.nodes[m].parent, vi) == in {
			return at, true
		}
	}
	return 0, false
}
