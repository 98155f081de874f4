package waf

// A byteSet is a set of byte values.
type byteSet [4]uint64

func (b *byteSet) add(c byte) { b[c/64] |= 1 << (c % 64) }

// addAll adds the bytes of o to b.
func (b *byteSet) addAll(o byteSet) {
	b[0], b[1], b[2], b[3] = b[0]|o[0], b[1]|o[1], b[2]|o[2], b[3]|o[3]
}

func (b byteSet) has(c byte) bool { return b[c/64]&(1<<(c%64)) != 0 }

// meets reports whether b and o share a byte.
func (b byteSet) meets(o byteSet) bool {
	return b[0]&o[0]|b[1]&o[1]|b[2]&o[2]|b[3]&o[3] != 0
}

// pastASCII reports whether b holds a byte above 0x7f.
func (b byteSet) pastASCII() bool { return b[2]|b[3] != 0 }

// bytesOf is the set of bytes s holds.
func bytesOf(s string) byteSet {
	var b byteSet
	for i := 0; i < len(s); i++ {
		b.add(s[i])
	}
	return b
}

// A pickTest is a quick necessary condition for a literal test: one byte
// of every literal (the rarest in ordinary requests), of which a value
// holding one of the literals holds at least one. It is read against the
// bytes of a value, which the gate works out once per value and
// transformation chain for every rule, where the literal test itself
// scans the value once per rule.
type pickTest struct {
	// picks: the picked bytes; when the literals are matched in any
	// ASCII case, each lower-case letter's upper case too, so that a
	// value's bytes are read as they are, not folded on every test.
	picks byteSet
	// kelvin: the literal test also passes any value holding a rune
	// that folds into ASCII (necessity.fold, foldsIntoASCII), so a value
	// with a byte past ASCII is not refused.
	kelvin bool
}

// newPickTest returns the pick test of lits (lower case when fold), or
// nil when a literal is empty.
func newPickTest(lits []string, fold, kelvin bool) *pickTest {
	if len(lits) == 0 {
		return nil
	}
	p := &pickTest{kelvin: kelvin}
	for _, l := range lits {
		if l == "" {
			return nil
		}
		best := l[0]
		for i := 1; i < len(l); i++ {
			if byteRank(l[i]) < byteRank(best) {
				best = l[i]
			}
		}
		p.picks.add(best)
		if fold && 'a' <= best && best <= 'z' {
			p.picks.add(best - ('a' - 'A'))
		}
	}
	return p
}

// passes reports whether a value whose bytes are b may hold a literal.
func (p *pickTest) passes(b byteSet) bool {
	return p.picks.meets(b) || p.kelvin && b.pastASCII()
}

// commonBytes are the bytes most frequent in ordinary request values,
// most frequent first; byteRank ranks the others after them, all alike.
const commonBytes = " eatoinsrlhdcumpfgybw.v0k12-_/=3x54&9687,:;%jqz"

var byteRanks = func() (r [256]uint8) {
	for i := range r {
		r[i] = 255
	}
	for i := 0; i < len(commonBytes); i++ {
		r[commonBytes[i]] = uint8(len(commonBytes) - i)
	}
	return r
}()

// byteRank orders bytes by how often ordinary requests hold them: lower
// is rarer.
func byteRank(c byte) int {
	if c >= 'A' && c <= 'Z' {
		c += 'a' - 'A'
	}
	if r := byteRanks[c]; r != 255 {
		return int(r)
	}
	return 0
}
