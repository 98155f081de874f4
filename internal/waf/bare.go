package waf

import (
	"regexp/syntax"
	"strings"
)

// A pattern's test for values without punctuation.
//
// Many CRS patterns let an attacker's evasions sit between the letters
// of what they look for: 932235 reads a command with quotes,
// backslashes and "$x" allowed between any two of its letters, and so
// requires no literal a benign word lacks. On a value that holds none of
// those bytes, every such part can only match nothing, and the pattern
// is the commands themselves. bareOf works that pattern out: the tree
// with every literal and class character of bareBytes taken out, a
// part that can then match nothing dropped from its alternation and its
// repetition (x* and x? match the empty string instead), and a
// concatenation that holds such a part gone whole. A match of the
// pattern in a value without those bytes reads none of them, so it is a
// match of the bare tree too, whose necessity test (the shortest match,
// the required literals) is then the pattern's for such values.

// bareBytes are the bytes taken out: punctuation that evasions use and
// benign words, names, e-mail addresses and sentences mostly lack.
const bareBytes = "\"'`()[]{}<>\\$|&;"

// bareSet is bareBytes as a byteSet.
var bareSet = func() byteSet {
	var b byteSet
	for i := 0; i < len(bareBytes); i++ {
		b.add(bareBytes[i])
	}
	return b
}()

// bareOf is re without bareBytes (nil: it cannot match such a value at
// all, which the caller reads as a refusal).
func bareOf(re *syntax.Regexp) *syntax.Regexp {
	none := &syntax.Regexp{Op: syntax.OpNoMatch}
	empty := &syntax.Regexp{Op: syntax.OpEmptyMatch}
	var walk func(re *syntax.Regexp) *syntax.Regexp
	walk = func(re *syntax.Regexp) *syntax.Regexp {
		switch re.Op {
		case syntax.OpLiteral:
			for _, r := range re.Rune {
				if r < 0x80 && strings.ContainsRune(bareBytes, r) {
					return none
				}
			}
			return re
		case syntax.OpCharClass:
			out := bareClass(re.Rune)
			if len(out) == 0 {
				return none
			}
			c := *re
			c.Rune = out
			return &c
		case syntax.OpCapture, syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat:
			sub := walk(re.Sub[0])
			if sub.Op == syntax.OpNoMatch {
				if re.Op == syntax.OpStar || re.Op == syntax.OpQuest || re.Op == syntax.OpRepeat && re.Min == 0 {
					return empty
				}
				return none
			}
			c := *re
			c.Sub = []*syntax.Regexp{sub}
			return &c
		case syntax.OpConcat:
			var subs []*syntax.Regexp
			for _, s := range re.Sub {
				switch t := walk(s); t.Op {
				case syntax.OpNoMatch:
					return none
				case syntax.OpEmptyMatch:
				case syntax.OpConcat:
					subs = append(subs, t.Sub...)
				default:
					subs = append(subs, t)
				}
			}
			if len(subs) == 0 {
				return empty
			}
			c := *re
			c.Sub = subs
			return &c
		case syntax.OpAlternate:
			var subs []*syntax.Regexp
			for _, s := range re.Sub {
				if t := walk(s); t.Op != syntax.OpNoMatch {
					subs = append(subs, t)
				}
			}
			switch len(subs) {
			case 0:
				return none
			case 1:
				return subs[0]
			}
			c := *re
			c.Sub = subs
			return &c
		}
		// Anchors, any character, the empty string: as they are (a
		// dot that may match a bare byte matches a superset).
		return re
	}
	if t := walk(re); t.Op != syntax.OpNoMatch {
		return t
	}
	return nil
}

// bareClass is the ranges of a class (lo, hi pairs, in order) without
// bareBytes.
func bareClass(ranges []rune) []rune {
	var out []rune
	for i := 0; i+1 < len(ranges); i += 2 {
		lo, hi := ranges[i], ranges[i+1]
		for lo <= hi {
			// The next bare byte in [lo, hi], if any.
			cut := rune(-1)
			for r := lo; r <= hi && r < 0x80; r++ {
				if strings.ContainsRune(bareBytes, r) {
					cut = r
					break
				}
			}
			if cut < 0 {
				out = append(out, lo, hi)
				break
			}
			if cut > lo {
				out = append(out, lo, cut-1)
			}
			lo = cut + 1
		}
	}
	return out
}

// neverLen is a shortest match no value reaches: the bare test of a
// pattern that cannot match a value without bareBytes.
const neverLen = 1 << 40

// bareNecessity is the necessity test of re on values without bareBytes
// when it refuses more than n, re's own, does: a longer shortest match,
// or literals where n has none or shorter ones; nil otherwise.
func bareNecessity(re *syntax.Regexp, n *necessity) *necessity {
	t := bareOf(re)
	if t == nil {
		return &necessity{minLen: neverLen}
	}
	set, _ := required(t)
	b := necessityOf(minBytes(t), set)
	old := make([]lit, len(n.lits))
	for i, l := range n.lits {
		old[i] = lit{s: l}
	}
	if b.minLen <= n.minLen && score(set) <= score(old) {
		return nil
	}
	return b
}

// bareRefuses reports whether value t, whose bytes are b, fails the bare
// test of n: it holds none of bareBytes and is too short for the bare
// pattern or lacks all its literals.
func (n *necessity) bareRefuses(t string, b byteSet) bool {
	return n.bare != nil && !b.meets(bareSet) && (len(t) < n.bare.minLen || !n.bare.litsMayMatch(t))
}
