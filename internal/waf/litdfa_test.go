package waf

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// The literal automaton answers as a plain search for each literal does,
// case-sensitive and ASCII case-insensitive, on random text over the
// literals' own bytes (where overlaps and failure moves happen).
func TestLitDFA(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alpha := "abcAB<>'x"
	word := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteByte(alpha[rng.IntN(len(alpha))])
		}
		return b.String()
	}
	for round := range 300 {
		fold := round%2 == 0
		var lits []string
		for range 1 + rng.IntN(12) {
			l := word(1 + rng.IntN(5))
			if fold {
				l = strings.ToLower(l)
			}
			lits = append(lits, l)
		}
		d := newLitDFA(lits, fold, maxNeedCells)
		if d == nil {
			t.Fatalf("no automaton for %q", lits)
		}
		for range 50 {
			s := word(rng.IntN(30))
			want := false
			for _, l := range lits {
				if fold && containsFoldASCII(s, l) || !fold && strings.Contains(s, l) {
					want = true
				}
			}
			if got := d.contains(s); got != want {
				t.Fatalf("lits %q fold %v, %q: got %v, want %v", lits, fold, s, got, want)
			}
		}
	}
}
