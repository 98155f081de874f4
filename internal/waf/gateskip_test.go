package waf

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

// TestGateSkipGuard: a rule that a skip:N action may count over is
// decided by the gate only on a request where the gate removed the
// skipping rule. With s=1 the skip matches and skips 1000011, the next
// rule left, so 1000012 refuses b=y; had 1000011 been removed (it does
// not match), the skip would have skipped 1000012 instead.
func TestGateSkipGuard(t *testing.T) {
	w, err := New(Config{Directives: `
SecRule ARGS:s "@streq 1" "id:1000010,phase:2,pass,nolog,skip:1"
SecRule ARGS:a "@streq x" "id:1000011,phase:2,deny,status:403,log"
SecRule ARGS:b "@streq y" "id:1000012,phase:2,deny,status:403,log"
`})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	guarded := false
	for _, r := range phase2Decided(w.plan) {
		if r.id == 1000011 {
			guarded = slices.Equal(r.guards, []int{1000010})
		}
	}
	if !guarded {
		t.Fatal("1000011 is not decided under its skip's guard")
	}
	for _, c := range []struct {
		query string
		rule  int // the rule that refuses, 0: none
	}{
		{"s=1&b=y", 1000012},
		{"s=1&a=x&b=y", 1000012},
		{"b=y", 1000012},
		{"a=x", 1000011},
		{"s=1&a=x", 0},
		{"s=1", 0},
	} {
		r := httptest.NewRequest("GET", "/p?"+c.query, http.NoBody)
		tx := w.Begin(nil)
		v, err := tx.Request(r, "127.0.0.1:4000")
		tx.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := slices.Contains(v.RuleIDs, c.rule); c.rule != 0 && !got || c.rule == 0 && v.Block {
			t.Errorf("%s: %+v, want refused by %d", c.query, v, c.rule)
		}
	}
}
