package waf

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/libinjection-go"
)

// TestDetectXSSPick: every value libinjection's IsXSS answers true for
// passes the gate's pick test for @detectXSS, among every string of up to
// three bytes of a small alphabet and strings made of attack pieces;
// and the gate finds the test on a rule that reads @detectXSS.
func TestDetectXSSPick(t *testing.T) {
	w, err := coraza.NewWAF(coraza.NewWAFConfig().WithDirectives("SecAction \"id:100,phase:1,pass,nolog\"\n" +
		`SecRule ARGS "@detectXSS" "id:101,phase:1,pass,t:none"`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := planGate(w, []int{100}, 1, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	var pick *pickTest
	for _, list := range p.after {
		for _, r := range list {
			if r.id == 101 {
				pick = r.pick
			}
		}
	}
	if pick == nil {
		t.Fatal("no pick test on @detectXSS: the gate runs IsXSS on every value")
	}
	check := func(s string) bool {
		if libinjection.IsXSS(s) && !pick.passes(bytesOf(s)) {
			t.Errorf("IsXSS(%q) is true, the pick test refuses it", s)
			return false
		}
		return true
	}
	const alphabet = "<=>/ \"'`!-?%xa\x00"
	for i := range len(alphabet) {
		for j := range len(alphabet) {
			for k := range len(alphabet) {
				if !check(string([]byte{alphabet[i], alphabet[j], alphabet[k]})) {
					return
				}
			}
		}
	}
	pieces := []string{"<", "=", ">", "/", " ", "\t", "\n", "\"", "'", "`", "!", "-", "--", "?", "%", "\x00", "&", "#", ";",
		"script", "style", "img", "svg", "iframe", "on", "onerror", "onload", "src", "href", "xlink:href", "formaction",
		"javascript:", "vbscript:", "data:", "alert(1)", "x", "[if", "xml", "import", "doctype", "DOCTYPE", "values", "attributename"}
	rng := rand.New(rand.NewPCG(3, 4))
	found, refused := 0, 0
	for range 300000 {
		var b strings.Builder
		for range 1 + rng.IntN(7) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		s := b.String()
		if !check(s) {
			return
		}
		if libinjection.IsXSS(s) {
			found++
		}
		if !pick.passes(bytesOf(s)) {
			refused++
		}
	}
	if found < 1000 || refused < 1000 {
		t.Errorf("%d XSS found, %d refused: the strings do not exercise the test", found, refused)
	}
}
