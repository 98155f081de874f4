package waf

// multiDFA answers, in one pass over a value, which of many literal sets
// it holds a literal of: the necessity tests (literals.go) of every @rx
// rule that reads a value through one transformation chain, run at once
// by the gate (gate.go) instead of once per rule. It is litDFA with a set
// of owners per state instead of a flag: an Aho-Corasick automaton over
// the literals' byte classes, each state carrying (as an index into sets)
// the owners of every literal that ends there or at one of its suffixes.
type multiDFA struct {
	acTable
	out   []int32  // state → index of its owner set in sets, or -1
	sets  []uint64 // owner sets, words each
	words int
}

// maxMultiCells bounds one automaton's table (four bytes a cell).
const maxMultiCells = 1 << 20

// newMultiDFA compiles lits[i] (each owned by owner[i], an index below
// words*64; lower case when fold, then matched in any ASCII case); nil
// when the table would have more than maxMultiCells cells.
func newMultiDFA(lits []string, owner []int, fold bool, words int) *multiDFA {
	t, st := compileAC(lits, fold, maxMultiCells)
	if t == nil {
		return nil
	}
	owners := make([][]uint64, st.n)
	for k, s := range st.ends {
		if owners[s] == nil {
			owners[s] = make([]uint64, words)
		}
		owners[s][owner[k]/64] |= 1 << (owner[k] % 64)
	}
	for _, s := range st.order {
		if f := owners[st.fail[s]]; f != nil {
			if owners[s] == nil {
				owners[s] = make([]uint64, words)
			}
			for w := range f {
				owners[s][w] |= f[w]
			}
		}
	}
	d := &multiDFA{acTable: *t, words: words, out: make([]int32, st.n)}
	for s := range st.n {
		d.out[s] = -1
		if owners[s] != nil {
			d.out[s] = int32(len(d.sets) / words)
			d.sets = append(d.sets, owners[s]...)
		}
	}
	return d
}

// scan adds to found (words long) the owners of every literal s holds.
func (d *multiDFA) scan(s string, found []uint64) {
	nc := int32(d.nclass)
	w := d.words
	var st int32
	for i := 0; i < len(s); i++ {
		st = d.next[st*nc+int32(d.class[s[i]])]
		if o := d.out[st]; o >= 0 {
			set := d.sets[int(o)*w : int(o)*w+w]
			for j, b := range set {
				found[j] |= b
			}
		}
	}
}
