package waf

import (
	"regexp"
	"regexp/syntax"
	"slices"

	"github.com/corazawaf/coraza/v3/collection"
	"github.com/corazawaf/coraza/v3/types"
)

// A rule that reads ARGS:/re/ reads the arguments whose names re matches,
// which Coraza's FindRegex finds by running re on every name. The gate
// asks first whether any name can match: a name must pass re's necessity
// test (literals.go), which is much cheaper than re, and most requests
// have no name that does, so re is not run at all.
//
// Coraza runs re on the name as its collection keys it: lower-cased
// when the collection's keys are case-insensitive (ARGS by default),
// as sent otherwise. The test is asked of the name as sent, so it must
// pass both. An ASCII name lower-cased differs from itself only in the
// case of its ASCII letters, and a test that reads literals in any ASCII
// case and counts bytes answers the same for both; a name past ASCII
// (whose lower case may be ASCII, "K" for U+212A, or another length)
// always passes.

// newKeyNecessity is the test a name must pass for keyRx to match it,
// or nil when keyRx cannot be analysed (then every name may match).
func newKeyNecessity(keyRx *regexp.Regexp) *necessity {
	re, err := syntax.Parse(keyRx.String(), syntax.Perl)
	if err != nil {
		return nil
	}
	set, _ := required(re)
	if alt := keyLiterals(re); score(alt) > score(set) {
		set = alt
	}
	for i := range set {
		set[i].fold = true
	}
	return necessityOf(minBytes(re), set)
}

// keyLiterals is a set of literals one of which every match of re holds,
// made of the finite languages re is a concatenation of (an alternation
// of names, each written out), where required's, which a parse that
// factors alternations ("f(?:unc|n)|c(?:allback|b)") leaves with the
// common prefixes alone, is weaker; nil when re has no such part.
func keyLiterals(re *syntax.Regexp) []lit {
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	subs := []*syntax.Regexp{re}
	if re.Op == syntax.OpConcat {
		subs = re.Sub
	}
	var best []lit
	for _, sub := range subs {
		if set, ok := finiteLang(sub); ok && !slices.ContainsFunc(set, func(l lit) bool { return l.s == "" }) && score(set) > score(best) {
			best = set
		}
	}
	return best
}

// finiteLang is every string re matches, when they are few and re holds
// no assertion and no repetition but x?; ok is false otherwise.
// Letters under (?i) are ASCII (literalOf), and the strings are lower
// case then, marked fold.
func finiteLang(re *syntax.Regexp) (set []lit, ok bool) {
	switch re.Op {
	case syntax.OpLiteral:
		l, ok := literalOf(re)
		if !ok || l.s == "" {
			return nil, false
		}
		if l.fold {
			l.s = lowerASCII(l.s)
		}
		return []lit{l}, true
	case syntax.OpCharClass:
		return classBytes(re)
	case syntax.OpCapture:
		return finiteLang(re.Sub[0])
	case syntax.OpAlternate:
		for _, sub := range re.Sub {
			s, ok := finiteLang(sub)
			if !ok || len(set)+len(s) > maxLits {
				return nil, false
			}
			set = append(set, s...)
		}
		return set, true
	case syntax.OpEmptyMatch:
		return []lit{{}}, true
	case syntax.OpQuest:
		// x? is "" or x.
		s, ok := finiteLang(re.Sub[0])
		if !ok || len(s)+1 > maxLits {
			return nil, false
		}
		return append([]lit{{}}, s...), true
	case syntax.OpConcat:
		set = []lit{{}}
		for _, sub := range re.Sub {
			s, ok := finiteLang(sub)
			if !ok || len(set)*len(s) > maxLits {
				return nil, false
			}
			next := make([]lit, 0, len(set)*len(s))
			for _, a := range set {
				for _, b := range s {
					next = append(next, lit{s: a.s + b.s, fold: a.fold || b.fold})
				}
			}
			set = next
		}
		return set, true
	}
	return nil, false
}

// mayMatchKey reports whether the expression n was made from (by
// newKeyNecessity) can match name, or its lower case.
func (n *necessity) mayMatchKey(name string) bool {
	return hasNonASCII(name) || n.mayMatch(name)
}

// keyedValues is what keyed.FindRegex(keyRx) returns, skipping it when
// none of the names in all (the collection's every value, as FindAll
// returns it) passes need.
func keyedValues(keyed collection.Keyed, keyRx *regexp.Regexp, need *necessity, all []types.MatchData) []types.MatchData {
	if need != nil {
		may := false
		for _, md := range all {
			if need.mayMatchKey(md.Key()) {
				may = true
				break
			}
		}
		if !may {
			return nil
		}
	}
	return keyed.FindRegex(keyRx)
}
