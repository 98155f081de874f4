package waf

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"
)

// A form body that repeats an attack's argument name in other letter
// cases: Coraza's own URLENCODED processor kept one of the case variants
// at random, so the attack went uninspected most of the time while the
// application (for which the names differ) read it. Sent to a real
// listener in front of the WAF; every request must be refused.
func TestFormCaseVariantNames(t *testing.T) {
	w, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	addr := blockServer(t, w)
	var pairs []string
	pairs = append(pairs, "comment="+url.QueryEscape("<script>alert(document.cookie)</script>"))
	for i := range len("comment") {
		name := []byte("comment")
		name[i] -= 'a' - 'A'
		pairs = append(pairs, string(name)+"=thanks")
	}
	body := strings.Join(pairs, "&")
	for i := range 12 {
		raw := fmt.Sprintf("POST /contact HTTP/1.1\r\nHost: app.example\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
		res := send(addr, []byte(raw))
		if res.err != nil {
			t.Fatal(res.err)
		}
		if res.status != http.StatusForbidden {
			t.Fatalf("request %d: status %d, rules %v: the attack in a case-variant form name went uninspected", i, res.status, res.ids)
		}
	}
}

// The form body is split and decoded as Coraza splits and decodes the
// query string: the same text as a query and as a body gives the same
// arguments, in the same order.
func TestFormBodyDecodesAsQuery(t *testing.T) {
	w, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, q := range []string{
		"a=1&b=2", "a=%41%4a%zz%4&b=+x+%2B", "&&a&=v&b==c&", "%=%&%%=%%%41", "k%00=%00v&%e2%82%ac=%E2%82",
		"x=%", "x=%4", "x=%41", "A=1&a=2&A=3",
	} {
		r, _ := http.NewRequest("POST", "/p?"+q, strings.NewReader(q))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		tx := w.Begin(nil)
		if _, err := tx.Request(r, "127.0.0.1:1"); err != nil {
			t.Fatal(err)
		}
		v := tx.tx.(interface {
			Variables() plugintypes.TransactionVariables
		}).Variables()
		get, post := argList(v.ArgsGet().FindAll()), argList(v.ArgsPost().FindAll())
		tx.Close()
		if get != post {
			t.Errorf("%q: query gives %s, body gives %s", q, get, post)
		}
	}
}

func argList(mds []types.MatchData) string {
	var out []string
	for _, md := range mds {
		out = append(out, fmt.Sprintf("%q=%q", md.Key(), md.Value()))
	}
	// Coraza's maps give names in no fixed order; each name's values in
	// order.
	slices.Sort(out)
	return strings.Join(out, " ")
}
