package waf

import (
	"regexp/syntax"
	"unicode"
	"unicode/utf8"
)

// A byte test before the literal one: of a pattern's every match, the
// bytes one of which it must hold.
//
// The literal necessity (required) reads a pattern's literals, and on
// CRS's evasion-tolerant command patterns (932230, 932250: each letter
// of a command may be followed by quotes, a backslash or a variable)
// those are single letters, which every value holds: the pattern then
// ran on every value with a letter. Yet every match of those patterns
// ends a command with a delimiter ([\s\x0b&),<>|]), and a value holding
// none of those bytes (an argument name, a number, an e-mail address)
// cannot match. requiredBytes works such a set out of the parsed
// pattern, as Go's engine reads input:
//
//   - a literal rune or a character class matches a rune of the input,
//     whose UTF-8 encoding begins with one of the lead bytes of the
//     runes it accepts (a case-folded literal accepts its whole fold
//     orbit: "k" the Kelvin sign too);
//   - Go's engine reads an invalid byte as U+FFFD, so a literal or class
//     that accepts U+FFFD accepts any byte past ASCII;
//   - a concatenation's every match holds a match of each of its parts
//     (the part with the rarest bytes is taken), an alternation's a match
//     of one of its branches (the union is taken), a repeat at least once
//     its body; anything that may match empty (x*, x?, anchors, \b) or
//     any character (.) gives no set.
//
// The set is kept only when it holds few ASCII letters and digits (at
// most maxClassAlnum, either case counted once), the bytes most values
// hold: otherwise it refuses nothing the literal test does not.

// requiredBytes returns bytes one of which every match of re holds, and
// whether there is such a set.
func requiredBytes(re *syntax.Regexp) (byteSet, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		if len(re.Rune) == 0 {
			return byteSet{}, false
		}
		fold := re.Flags&syntax.FoldCase != 0
		var best byteSet
		found := false
		for _, r := range re.Rune {
			b := runeBytes(r, r, fold)
			if !found || byteWeight(b) < byteWeight(best) {
				best, found = b, true
			}
		}
		return best, true
	case syntax.OpCharClass:
		var b byteSet
		for i := 0; i+1 < len(re.Rune); i += 2 {
			c := runeBytes(re.Rune[i], re.Rune[i+1], false)
			for j := range b {
				b[j] |= c[j]
			}
		}
		return b, len(re.Rune) > 0
	case syntax.OpCapture, syntax.OpPlus:
		return requiredBytes(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min < 1 {
			return byteSet{}, false
		}
		return requiredBytes(re.Sub[0])
	case syntax.OpAlternate:
		var b byteSet
		for _, sub := range re.Sub {
			s, ok := requiredBytes(sub)
			if !ok {
				return byteSet{}, false
			}
			for j := range b {
				b[j] |= s[j]
			}
		}
		return b, len(re.Sub) > 0
	case syntax.OpConcat:
		var best byteSet
		found := false
		for _, sub := range re.Sub {
			if s, ok := requiredBytes(sub); ok && (!found || byteWeight(s) < byteWeight(best)) {
				best, found = s, true
			}
		}
		return best, found
	}
	return byteSet{}, false
}

// runeBytes is the set of bytes with which the encoding of a rune from lo
// to hi (each with its case-fold orbit, when fold) may begin in the input
// as Go's engine reads it.
func runeBytes(lo, hi rune, fold bool) byteSet {
	var b byteSet
	add := func(r rune) {
		switch {
		case r < utf8.RuneSelf:
			b.add(byte(r))
		case r == utf8.RuneError:
			// Any invalid byte is read as U+FFFD.
			for c := 0x80; c <= 0xff; c++ {
				b.add(byte(c))
			}
		default:
			b.add(leadByte(r))
		}
	}
	if hi-lo > 0x400 {
		// A wide range: every lead byte of its runes, from the first's to
		// the last's, and the invalid bytes if U+FFFD is among them.
		for r := lo; r <= hi && r < utf8.RuneSelf; r++ {
			add(r)
		}
		for c := int(leadByte(max(lo, utf8.RuneSelf))); c <= int(leadByte(min(hi, unicode.MaxRune))); c++ {
			b.add(byte(c))
		}
		if lo <= utf8.RuneError && utf8.RuneError <= hi {
			add(utf8.RuneError)
		}
		return b
	}
	for r := lo; r <= hi; r++ {
		add(r)
		if fold {
			for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
				add(f)
			}
		}
	}
	return b
}

// leadByte is the first byte of r's UTF-8 encoding (of the encoding's
// pattern, for a surrogate), rising with r.
func leadByte(r rune) byte {
	switch {
	case r < 0x80:
		return byte(r)
	case r < 0x800:
		return 0xc0 | byte(r>>6)
	case r < 0x10000:
		return 0xe0 | byte(r>>12)
	}
	return 0xf0 | byte(r>>18)
}

// byteWeight is how often ordinary values hold one of the bytes of b:
// the sum of their ranks (byteRank), each at least 1.
func byteWeight(b byteSet) int {
	w := 0
	for c := range 256 {
		if b.has(byte(c)) {
			w += byteRank(byte(c)) + 1
		}
	}
	return w
}

// maxClassAlnum bounds the letters and digits of a byte test.
const maxClassAlnum = 4

// newClassTest returns the byte test of re (see requiredBytes), nil when
// it has none worth asking.
func newClassTest(re *syntax.Regexp) *byteSet {
	b, ok := requiredBytes(re)
	if !ok {
		return nil
	}
	alnum := 0
	for c := byte('0'); c <= 'z'; c++ {
		switch {
		case c >= 'A' && c <= 'Z':
			if b.has(c) && !b.has(c+'a'-'A') {
				alnum++
			}
		case c <= '9' || c >= 'a':
			if b.has(c) {
				alnum++
			}
		}
	}
	if alnum > maxClassAlnum {
		return nil
	}
	return &b
}

// holdsByte reports whether s holds a byte of set.
func holdsByte(s string, set *byteSet) bool {
	for i := 0; i < len(s); i++ {
		if set.has(s[i]) {
			return true
		}
	}
	return false
}
