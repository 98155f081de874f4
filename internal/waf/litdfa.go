package waf

// litDFA answers "does s contain one of these literals?" in one pass over
// s, without allocating: an Aho-Corasick automaton compiled to a dense
// table over the literals' byte classes. Every rule's necessity test
// (literals.go) runs it on every value the rule reads, so it must cost
// no more than the scan itself.
type litDFA struct {
	class  [256]uint8 // byte → class; 0 is every byte no literal holds
	nclass int
	next   []int32 // state*nclass + class → state
	final  []bool  // a literal ends at this state (or at one of its suffixes)
}

// Bounds on the table (states × classes, four bytes a cell): past them a
// literal set keeps the general matcher. Phrase lists (pm.go) are few and
// large (CRS's biggest, php-function-names, is about 2 MB); necessities
// are many and small.
const (
	maxNeedCells   = 1 << 16
	maxPhraseCells = 1 << 20
)

// newLitDFA compiles lits (lower case when fold, then matched in any
// ASCII case); nil when the table would have more than maxCells cells.
func newLitDFA(lits []string, fold bool, maxCells int) *litDFA {
	d := &litDFA{nclass: 1}
	for _, l := range lits {
		for i := 0; i < len(l); i++ {
			c := l[i]
			if d.class[c] == 0 {
				d.class[c] = uint8(d.nclass)
				d.nclass++
				if d.nclass > 255 {
					return nil
				}
			}
			if fold && c >= 'a' && c <= 'z' {
				d.class[c-'a'+'A'] = d.class[c]
			}
		}
	}
	// The trie, as goto[state][class] (-1: none).
	states := 1
	for _, l := range lits {
		states += len(l)
	}
	if states*d.nclass > maxCells {
		return nil
	}
	nc := d.nclass
	gotoT := make([]int32, nc, states*nc)
	for i := range gotoT {
		gotoT[i] = -1
	}
	final := []bool{false}
	n := 1
	for _, l := range lits {
		s := 0
		for i := 0; i < len(l); i++ {
			c := int(d.class[l[i]])
			if gotoT[s*nc+c] < 0 {
				gotoT[s*nc+c] = int32(n)
				for range nc {
					gotoT = append(gotoT, -1)
				}
				final = append(final, false)
				n++
			}
			s = int(gotoT[s*nc+c])
		}
		final[s] = true
	}
	// Breadth first: each state's missing moves are its failure state's.
	fail := make([]int32, n)
	queue := make([]int32, 0, n)
	for c := range nc {
		switch t := gotoT[c]; {
		case t < 0:
			gotoT[c] = 0
		default:
			fail[t] = 0
			queue = append(queue, t)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		final[s] = final[s] || final[fail[s]]
		for c := range nc {
			t := gotoT[int(s)*nc+c]
			if t < 0 {
				gotoT[int(s)*nc+c] = gotoT[int(fail[s])*nc+c]
				continue
			}
			fail[t] = gotoT[int(fail[s])*nc+c]
			queue = append(queue, t)
		}
	}
	d.next, d.final = gotoT, final
	return d
}

// contains reports whether s holds one of the literals.
func (d *litDFA) contains(s string) bool {
	nc := int32(d.nclass)
	var st int32
	for i := 0; i < len(s); i++ {
		st = d.next[st*nc+int32(d.class[s[i]])]
		if d.final[st] {
			return true
		}
	}
	return false
}
