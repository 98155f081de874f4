package waf

import (
	"regexp/syntax"
	"strings"
	"unicode/utf8"

	ahocorasick "github.com/petar-dambovaliev/aho-corasick"
)

// A necessity is a cheap test that must pass for a regular expression to
// match: the shortest input it can match, and a set of literals of which
// every match contains at least one. It never says no to an input the
// expression matches (a wrong "maybe" only costs the full match), so it
// may skip the expression but never change its answer.
type necessity struct {
	minLen int
	// lits is empty when the expression requires no literal.
	lits []string
	// fold: the literals are lower-case ASCII and match case-insensitively.
	// Go's case folding maps "k" and "s" to non-ASCII runes too (U+212A,
	// U+017F), so a folded test says "maybe" to any input holding one of
	// those (foldsIntoASCII).
	fold    bool
	dfa     *litDFA                  // for more than a few literals
	matcher *ahocorasick.AhoCorasick // for sets too large for dfa
	// pick is the gate's quick test before this one (nil: none).
	pick *pickTest
	// class: bytes one of which every match holds, asked before the
	// literals (reqbytes.go; nil: none).
	class *byteSet
	// bare: the test for a value that holds none of bareBytes, stronger
	// than this one (bare.go; nil: none is).
	bare *necessity
}

// maxLits bounds the literal set: past it the test costs more than it saves.
const maxLits = 256

// newNecessity analyses re, parsed as the operator compiles it.
func newNecessity(re *syntax.Regexp) *necessity {
	set, _ := required(re)
	n := necessityOf(minBytes(re), set)
	n.class = newClassTest(re)
	n.bare = bareNecessity(re, n)
	return n
}

// newBinaryNecessity analyses a pattern Coraza runs on the binary engine,
// which reads the pattern and the input as bytes, each one rune. The
// pattern is parsed as text: only when it is ASCII (everything past ASCII
// written as an escape) does that give the binary engine's tree, with a
// rune for each byte. Its literals are then the same runes as bytes; one
// that names a rune past a byte gives no test. Case-insensitive literals
// are ASCII (literalOf), and the binary engine folds an ASCII letter only
// onto its other case (the two runes that Go's folding adds, U+212A and
// U+017F, are no byte), so an ASCII-case test is exact; a set that mixes
// them with literals past ASCII gives the shortest match's length alone
// (minRunes: a rune a byte), which "\xac\xed\x00\x05|rO0AB" still has.
func newBinaryNecessity(pattern string) *necessity {
	if hasNonASCII(pattern) {
		return &necessity{}
	}
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return &necessity{}
	}
	none := &necessity{minLen: minRunes(re)}
	set, ok := required(re)
	if !ok {
		return none
	}
	fold := false
	for _, l := range set {
		fold = fold || l.fold
	}
	for i, l := range set {
		if fold && hasNonASCII(l.s) {
			// A case-insensitive test reads bytes past ASCII as text.
			return none
		}
		b := make([]byte, 0, len(l.s))
		for _, r := range l.s {
			if r > 0xff {
				return none
			}
			b = append(b, byte(r))
		}
		set[i].s = string(b)
	}
	return necessityOf(none.minLen, set)
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func necessityOf(minLen int, set []lit) *necessity {
	return necessityCells(minLen, set, maxNeedCells)
}

// necessityCells is necessityOf with a literal automaton of up to
// maxCells cells.
func necessityCells(minLen int, set []lit, maxCells int) *necessity {
	n := &necessity{minLen: minLen}
	if len(set) > 0 {
		for _, l := range set {
			n.fold = n.fold || l.fold
		}
		seen := map[string]bool{}
		for _, l := range set {
			s := l.s
			if n.fold {
				// A literal of the set that is not case-insensitive is
				// then tested in any ASCII case (more inputs pass, none
				// is refused that holds it); its other bytes stay as
				// they are, for the test compares them exactly.
				s = lowerASCII(s)
			}
			if !seen[s] {
				seen[s] = true
				n.lits = append(n.lits, s)
			}
		}
		n.pick = newPickTest(n.lits, n.fold, n.fold)
		if len(n.lits) > 4 {
			n.dfa = newLitDFA(n.lits, n.fold, maxCells)
		}
		if len(n.lits) > 4 && n.dfa == nil {
			b := ahocorasick.NewAhoCorasickBuilder(ahocorasick.Opts{AsciiCaseInsensitive: n.fold, MatchKind: ahocorasick.StandardMatch, DFA: true})
			m := b.Build(n.lits)
			n.matcher = &m
		}
	}
	return n
}

// mayMatch reports whether the expression can match s.
func (n *necessity) mayMatch(s string) bool {
	if len(s) < n.minLen {
		return false
	}
	if n.class != nil && !holdsByte(s, n.class) {
		return false
	}
	return n.litsMayMatch(s, anyBytes)
}

// anyBytes holds every byte: the bytes of a value not read.
var anyBytes = byteSet{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}

// litsMayMatch is mayMatch for an s of at least minLen bytes known to
// hold a byte of class (the gate knows it from the value's byte set),
// whose bytes are among b: a value of ASCII bytes alone holds no rune
// that folds into ASCII, and is not read for one.
func (n *necessity) litsMayMatch(s string, b byteSet) bool {
	if len(n.lits) == 0 {
		return true
	}
	if n.fold && b.pastASCII() && foldsIntoASCII(s) {
		return true
	}
	if n.dfa != nil {
		return n.dfa.contains(s)
	}
	if n.matcher != nil {
		return n.matcher.Iter(s).Next() != nil
	}
	for _, l := range n.lits {
		if n.fold {
			if containsFoldASCII(s, l) {
				return true
			}
		} else if strings.Contains(s, l) {
			return true
		}
	}
	return false
}

// foldsIntoASCII reports whether s holds a rune that Go's case folding
// maps onto an ASCII letter: of all the runes outside ASCII only U+212A
// (Kelvin sign, "k") and U+017F (long s, "s") do. Every other byte of
// such an input is either ASCII, and is tested as it is, or part of a
// rune (or an invalid byte, read as U+FFFD) that no ASCII literal can
// match, so a case-insensitive literal test on the bytes is exact.
func foldsIntoASCII(s string) bool {
	return hasNonASCII(s) && (strings.Contains(s, "\u212a") || strings.Contains(s, "\u017f"))
}

// containsFoldASCII reports whether s holds lit (lower-case ASCII) in any
// ASCII case.
func containsFoldASCII(s, lit string) bool {
	if lit == "" {
		return true
	}
	c0 := lit[0]
	up := c0
	if c0 >= 'a' && c0 <= 'z' {
		up = c0 - 'a' + 'A'
	}
	for i := 0; i+len(lit) <= len(s); i++ {
		c := s[i]
		if c != c0 && c != up {
			// Jump to the next byte that can start the literal.
			j := indexEither(s[i+1:], c0, up)
			if j < 0 {
				return false
			}
			i += j
			continue
		}
		if asciiEqualFold(s[i:i+len(lit)], lit) {
			return true
		}
	}
	return false
}

func indexEither(s string, a, b byte) int {
	ia := strings.IndexByte(s, a)
	if a == b {
		return ia
	}
	ib := strings.IndexByte(s, b)
	switch {
	case ia < 0:
		return ib
	case ib < 0:
		return ia
	}
	return min(ia, ib)
}

func asciiEqualFold(s, lower string) bool {
	for i := 0; i < len(lower); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

type lit struct {
	s    string
	fold bool
}

// required returns literals one of which every match of re contains; ok is
// false when there is no such set (re can match without any literal).
func required(re *syntax.Regexp) (set []lit, ok bool) {
	switch re.Op {
	case syntax.OpLiteral:
		l, ok := literalOf(re)
		if !ok || l.s == "" {
			return nil, false
		}
		return []lit{l}, true
	case syntax.OpCharClass:
		return classBytes(re)
	case syntax.OpCapture, syntax.OpPlus:
		return required(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min < 1 {
			return nil, false
		}
		if sub := re.Sub[0]; sub.Op == syntax.OpLiteral && re.Min > 1 {
			// x{n,}: n x in a row.
			if l, ok := literalOf(sub); ok && l.s != "" && len(l.s)*re.Min <= maxRepeatLit {
				l.s = strings.Repeat(l.s, re.Min)
				return []lit{l}, true
			}
		}
		return required(re.Sub[0])
	case syntax.OpAlternate:
		for _, sub := range re.Sub {
			s, ok := required(sub)
			if !ok {
				return nil, false
			}
			set = append(set, s...)
			if len(set) > maxLits {
				return nil, false
			}
		}
		return set, true
	case syntax.OpConcat:
		// Adjacent literals of one case mode join into a longer literal;
		// of the children's sets the one whose shortest literal is longest
		// is kept.
		var best []lit
		var run *lit
		consider := func(s []lit) {
			if score(s) > score(best) {
				best = s
			}
		}
		for _, sub := range re.Sub {
			if sub.Op == syntax.OpLiteral {
				if l, ok := literalOf(sub); ok {
					if run != nil && run.fold == l.fold {
						run.s += l.s
					} else {
						if run != nil {
							consider([]lit{*run})
						}
						run = &lit{s: l.s, fold: l.fold}
					}
					continue
				}
			}
			if run != nil {
				consider([]lit{*run})
				run = nil
			}
			if s, ok := required(sub); ok {
				consider(s)
			}
		}
		if run != nil {
			consider([]lit{*run})
		}
		return best, best != nil
	}
	return nil, false
}

// maxRepeatLit bounds the literal a repeat is read as.
const maxRepeatLit = 16

// maxClassBytes bounds the characters of a class read as literals: a
// larger class is found in most text and tests nothing.
const maxClassBytes = 16

// classBytes reads a character class of a few ASCII characters as that
// many one-byte literals, one of which every match holds. A class with a
// rune outside ASCII (among them the Kelvin sign and the long s that Go's
// case folding adds to "k" and "s", and U+FFFD, which Go's engine matches
// against any invalid byte) is not read: only an ASCII byte of the input
// can match an ASCII rune.
func classBytes(re *syntax.Regexp) ([]lit, bool) {
	var set []lit
	for i := 0; i+1 < len(re.Rune); i += 2 {
		lo, hi := re.Rune[i], re.Rune[i+1]
		if hi >= utf8.RuneSelf || int(hi-lo)+1+len(set) > maxClassBytes {
			return nil, false
		}
		for r := lo; r <= hi; r++ {
			set = append(set, lit{s: string(r)})
		}
	}
	return set, len(set) > 0
}

// score ranks literal sets: the shortest literal's length first, then
// fewer literals.
func score(set []lit) int {
	if len(set) == 0 {
		return -1
	}
	short := len(set[0].s)
	for _, l := range set {
		short = min(short, len(l.s))
	}
	return short*1024 - len(set)
}

// literalOf renders an OpLiteral node. A case-folded literal is usable only
// when it is ASCII; U+FFFD is never usable, since Go's engine matches it
// against any invalid byte.
func literalOf(re *syntax.Regexp) (lit, bool) {
	fold := re.Flags&syntax.FoldCase != 0
	var b strings.Builder
	for _, r := range re.Rune {
		if r == utf8.RuneError || (fold && r >= utf8.RuneSelf) {
			return lit{}, false
		}
		b.WriteRune(r)
	}
	return lit{s: b.String(), fold: fold}, true
}

// minBytes is a lower bound on the length in bytes of any input re matches.
func minBytes(re *syntax.Regexp) int {
	return minLength(re, func(lit *syntax.Regexp) int {
		n := 0
		for _, r := range lit.Rune {
			// A folded rune may match a shorter one (U+212A matches "k");
			// U+FFFD matches a single invalid byte.
			if lit.Flags&syntax.FoldCase != 0 || r == utf8.RuneError {
				n++
			} else {
				n += utf8.RuneLen(r)
			}
		}
		return n
	})
}

// minRunes is the length of the shortest match of re counted in runes:
// in bytes, for the binary engine, which reads each byte as one rune.
func minRunes(re *syntax.Regexp) int {
	return minLength(re, func(lit *syntax.Regexp) int { return len(lit.Rune) })
}

// minLength is the length of the shortest match of re, a literal's being
// literal's.
func minLength(re *syntax.Regexp, literal func(*syntax.Regexp) int) int {
	switch re.Op {
	case syntax.OpLiteral:
		return literal(re)
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return 1
	case syntax.OpCapture, syntax.OpPlus:
		return minLength(re.Sub[0], literal)
	case syntax.OpRepeat:
		return re.Min * minLength(re.Sub[0], literal)
	case syntax.OpConcat:
		n := 0
		for _, sub := range re.Sub {
			n += minLength(sub, literal)
		}
		return n
	case syntax.OpAlternate:
		n := -1
		for _, sub := range re.Sub {
			if m := minLength(sub, literal); n < 0 || m < n {
				n = m
			}
		}
		return max(n, 0)
	}
	return 0
}
