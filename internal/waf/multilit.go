package waf

// multiDFA answers, in one pass over a value, which of many literal sets
// it holds a literal of: the necessity tests (literals.go) of every @rx
// rule that reads a value through one transformation chain, run at once
// by the gate (gate.go) instead of once per rule. It is litDFA with a set
// of owners per state instead of a flag: an Aho-Corasick automaton over
// the literals' byte classes, each state carrying (as an index into sets)
// the owners of every literal that ends there or at one of its suffixes.
type multiDFA struct {
	class  [256]uint8
	nclass int
	next   []int32  // state*nclass + class → state
	out    []int32  // state → index of its owner set in sets, or -1
	sets   []uint64 // owner sets, words each
	words  int
}

// maxMultiCells bounds one automaton's table (four bytes a cell).
const maxMultiCells = 1 << 20

// newMultiDFA compiles lits[i] (each owned by owner[i], an index below
// words*64; lower case when fold, then matched in any ASCII case); nil
// when the table would have more than maxMultiCells cells.
func newMultiDFA(lits []string, owner []int, fold bool, words int) *multiDFA {
	d := &multiDFA{nclass: 1, words: words}
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
	states := 1
	for _, l := range lits {
		states += len(l)
	}
	if states*d.nclass > maxMultiCells {
		return nil
	}
	nc := d.nclass
	gotoT := make([]int32, nc, states*nc)
	for i := range gotoT {
		gotoT[i] = -1
	}
	owners := [][]uint64{nil}
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
				owners = append(owners, nil)
				n++
			}
			s = int(gotoT[s*nc+c])
		}
		if owners[s] == nil {
			owners[s] = make([]uint64, words)
		}
		owners[s][owner[k]/64] |= 1 << (owner[k] % 64)
	}
	fail := make([]int32, n)
	queue := make([]int32, 0, n)
	for c := range nc {
		switch t := gotoT[c]; {
		case t < 0:
			gotoT[c] = 0
		default:
			queue = append(queue, t)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		if f := owners[fail[s]]; f != nil {
			if owners[s] == nil {
				owners[s] = make([]uint64, words)
			}
			for w := range f {
				owners[s][w] |= f[w]
			}
		}
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
	d.next = gotoT
	d.out = make([]int32, n)
	for s := range n {
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
