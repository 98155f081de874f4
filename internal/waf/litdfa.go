package waf

// acTable is an Aho-Corasick automaton over a set of literals, compiled to
// a dense table over the literals' byte classes: one step a byte, no
// allocation. litDFA and multiDFA (multilit.go) are its two readings.
type acTable struct {
	class  [256]uint8 // byte → class; 0 is every byte no literal holds
	nclass int
	next   []int32 // state*nclass + class → state
}

// acStates is what compiling leaves besides the table, for the caller to
// mark the states where literals end: ends[k] is the state literal k ends
// at, and every state but the root is listed breadth first in order with
// its failure state (a state also ends every literal its failure state
// ends, and comes after it in order, so one pass along order carries them).
type acStates struct {
	n     int
	ends  []int32
	fail  []int32
	order []int32
}

// compileAC compiles lits (lower case when fold, then matched in any ASCII
// case); nil when the table would have more than maxCells cells (four bytes
// a cell).
func compileAC(lits []string, fold bool, maxCells int) (*acTable, *acStates) {
	d := &acTable{nclass: 1}
	for _, l := range lits {
		for i := 0; i < len(l); i++ {
			c := l[i]
			if d.class[c] == 0 {
				d.class[c] = uint8(d.nclass)
				d.nclass++
				if d.nclass > 255 {
					return nil, nil
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
		return nil, nil
	}
	nc := d.nclass
	gotoT := make([]int32, nc, states*nc)
	for i := range gotoT {
		gotoT[i] = -1
	}
	ends := make([]int32, len(lits))
	n := 1
	for k, l := range lits {
		s := 0
		for i := 0; i < len(l); i++ {
			c := int(d.class[l[i]])
			if gotoT[s*nc+c] < 0 {
				gotoT[s*nc+c] = int32(n)
				for range nc {
					gotoT = append(gotoT, -1)
				}
				n++
			}
			s = int(gotoT[s*nc+c])
		}
		ends[k] = int32(s)
	}
	// Breadth first: each state's missing moves are its failure state's.
	fail := make([]int32, n)
	order := make([]int32, 0, n)
	for c := range nc {
		switch t := gotoT[c]; {
		case t < 0:
			gotoT[c] = 0
		default:
			order = append(order, t)
		}
	}
	for i := 0; i < len(order); i++ {
		s := order[i]
		for c := range nc {
			t := gotoT[int(s)*nc+c]
			if t < 0 {
				gotoT[int(s)*nc+c] = gotoT[int(fail[s])*nc+c]
				continue
			}
			fail[t] = gotoT[int(fail[s])*nc+c]
			order = append(order, t)
		}
	}
	d.next = gotoT
	return d, &acStates{n: n, ends: ends, fail: fail, order: order}
}

// litDFA answers "does s contain one of these literals?" in one pass over
// s, without allocating. Every rule's necessity test (literals.go) runs it
// on every value the rule reads, so it must cost no more than the scan
// itself.
type litDFA struct {
	class [256]uint8
	// step[at+class] is where the automaton goes from the state at
	// offset at (its number times the number of classes) on a byte of
	// that class: the next state's offset, or -1 where a literal ends
	// (at that state or at one of its suffixes), for contains stops there.
	step []int32
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
	t, st := compileAC(lits, fold, maxCells)
	if t == nil {
		return nil
	}
	final := make([]bool, st.n)
	for _, s := range st.ends {
		final[s] = true
	}
	for _, s := range st.order {
		final[s] = final[s] || final[st.fail[s]]
	}
	nc := int32(t.nclass)
	// Rewritten in place: the table is this automaton's alone. The trie
	// was given room for every literal's bytes apart; what shared
	// prefixes left unused is let go.
	step := t.next
	if cap(step) > len(step)+len(step)/8 {
		step = append([]int32(nil), step...)
	}
	for i, to := range step {
		if final[to] {
			step[i] = -1
		} else {
			step[i] = to * nc
		}
	}
	return &litDFA{class: t.class, step: step}
}

// contains reports whether s holds one of the literals.
func (d *litDFA) contains(s string) bool {
	var at int32
	for i := 0; i < len(s); i++ {
		if at = d.step[at+int32(d.class[s[i]])]; at < 0 {
			return true
		}
	}
	return false
}
