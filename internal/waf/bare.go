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
	// Of the bare tree's literal sets, required's and the words whole
	// (wordsOf), the one whose shortest literal is longest; a word set
	// is given the larger automaton it needs.
	set, _ := required(t)
	cells := maxNeedCells
	if w, fold, _, ok := wordsOf(t); ok {
		words := make([]lit, len(w))
		for i, s := range w {
			words[i] = lit{s: s, fold: fold}
		}
		if score(words) > score(set) {
			set, cells = words, maxWordCells
		}
	}
	b := necessityCells(minBytes(t), set, cells)
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
	return n.bare != nil && !b.meets(bareSet) && (len(t) < n.bare.minLen || !n.bare.litsMayMatch(t, b))
}

// A pattern's words and what follows them.
//
// CRS's command patterns (932250, 932260) match a command word followed
// by one of a few characters (space, comma, ...), the words factored into
// a tree of common prefixes ("c(?:o(?:mm[\s,]|proc)|h...)"). required
// splits that tree into the prefixes' fragments and keeps the set whose
// shortest literal is longest: the followers, one of which nearly every
// value with a space or a comma holds. wordsOf multiplies the prefixes
// out instead, with the few characters that must follow each word, into
// one set of whole literals ("comm ", "comm,", "diff"): the bare test's,
// when it is the stronger (bareNecessity).

// maxWords bounds a word set: past it the products are dropped.
const maxWords = 4096

// maxWordCells bounds a word set's automaton (four bytes a cell).
const maxWordCells = 1 << 20

// exactOf is the finite language of re when it is made of literals and
// classes of a few ASCII characters alone (with zero-width assertions,
// x?, alternations and concatenations of them) and has at most maxWords
// strings; fold: one of them is
// case-insensitive (the set is then lower-cased and tested in any case).
func exactOf(re *syntax.Regexp) (set []string, fold, ok bool) {
	switch re.Op {
	case syntax.OpLiteral:
		l, ok := literalOf(re)
		if !ok {
			return nil, false, false
		}
		return []string{l.s}, l.fold, true
	case syntax.OpCharClass:
		// A class of a few characters joins the words ("[ls]trace",
		// "comm[\s,]").
		set, ok := classBytes(re)
		if !ok {
			return nil, false, false
		}
		out := make([]string, len(set))
		for i, l := range set {
			out[i] = l.s
		}
		return out, false, true
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpBeginText, syntax.OpEndLine, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return []string{""}, false, true
	case syntax.OpCapture:
		return exactOf(re.Sub[0])
	case syntax.OpQuest:
		s, f, ok := exactOf(re.Sub[0])
		if !ok {
			return nil, false, false
		}
		return append([]string{""}, s...), f, true
	case syntax.OpAlternate:
		for _, sub := range re.Sub {
			s, f, ok := exactOf(sub)
			if !ok || len(set)+len(s) > maxWords {
				return nil, false, false
			}
			set = append(set, s...)
			fold = fold || f
		}
		return set, fold, true
	case syntax.OpConcat:
		set = []string{""}
		for _, sub := range re.Sub {
			s, f, ok := exactOf(sub)
			if !ok {
				return nil, false, false
			}
			if set, ok = product(set, s); !ok {
				return nil, false, false
			}
			fold = fold || f
		}
		return set, fold, true
	}
	return nil, false, false
}

// product is every a followed by every b, or false past maxWords.
func product(a, b []string) ([]string, bool) {
	if len(a)*len(b) > maxWords {
		return nil, false
	}
	out := make([]string, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			out = append(out, x+y)
		}
	}
	return out, true
}

// wordsOf is a set of strings one of which every match of re holds;
// prefix: every match starts with one. A concatenation's children that
// exactOf reads (literals, small classes) are multiplied out, and so is
// what precedes a child whose every match starts with one of its set.
func wordsOf(re *syntax.Regexp) (set []string, fold, prefix, ok bool) {
	if s, f, ok := exactOf(re); ok {
		return s, f, true, !slicesHasEmpty(s)
	}
	switch re.Op {
	case syntax.OpCapture, syntax.OpPlus:
		return wordsOf(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min < 1 {
			return nil, false, false, false
		}
		return wordsOf(re.Sub[0])
	case syntax.OpAlternate:
		prefix = true
		for _, sub := range re.Sub {
			s, f, p, ok := wordsOf(sub)
			if !ok || len(set)+len(s) > maxWords {
				return nil, false, false, false
			}
			set = append(set, s...)
			fold, prefix = fold || f, prefix && p
		}
		return set, fold, prefix, true
	case syntax.OpConcat:
		// run: the strings the children since start match exactly.
		var best []string
		var bestFold, bestPrefix bool
		consider := func(s []string, f, p bool) {
			if slicesHasEmpty(s) {
				return
			}
			if best == nil || wordScore(s) > wordScore(best) {
				best, bestFold, bestPrefix = s, f, p
			}
		}
		run, runFold, start := []string{""}, false, 0
		for i, sub := range re.Sub {
			if s, f, ok := exactOf(sub); ok {
				if r, ok := product(run, s); ok {
					run, runFold = r, runFold || f
					continue
				}
				consider(run, runFold, start == 0)
				run, runFold, start = s, f, i
				continue
			}
			consider(run, runFold, start == 0)
			if s, f, p, ok := wordsOf(sub); ok {
				consider(s, f, p && i == 0)
				if p {
					if r, ok := product(run, s); ok {
						consider(r, runFold || f, start == 0)
					}
				}
			}
			run, runFold, start = []string{""}, false, i+1
		}
		consider(run, runFold, start == 0)
		return best, bestFold, bestPrefix, best != nil
	}
	return nil, false, false, false
}

func slicesHasEmpty(s []string) bool {
	for _, x := range s {
		if x == "" {
			return true
		}
	}
	return false
}

// wordScore ranks word sets as score does literal sets.
func wordScore(s []string) int {
	short := len(s[0])
	for _, x := range s {
		short = min(short, len(x))
	}
	return short*1024 - len(s)
}
