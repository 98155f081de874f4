package waf

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestSetvarFoldDetection: the committed corpus and waf-dev's sample give
// the same verdicts, matched rules, values and messages with setvars'
// TX constants written in at load (setvarfold.go) as expanded on every
// match.
func TestSetvarFoldDetection(t *testing.T) {
	folded, err := New(Config{Budget: time.Hour, FullEvaluation: true})
	if err != nil {
		t.Fatal(err)
	}
	defer folded.Close()
	ref, err := New(Config{Budget: time.Hour, FullEvaluation: true, noSetvarFold: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	if n := folded.GateStats().Setvars; n < 100 {
		t.Fatalf("%d setvars folded, want CRS's scores", n)
	}
	if n := ref.GateStats().Setvars; n != 0 {
		t.Fatalf("%d setvars folded in the reference", n)
	}
	sameOutcomes(t, folded, ref)
}

// TestSetvarFoldWritten: a TX variable some rule writes at run time is
// not folded. Here a request with X-Low: 1 scores critical matches 0,
// and the attack passes; folded with the configuration's 5, it would be
// blocked.
func TestSetvarFoldWritten(t *testing.T) {
	w, err := New(Config{Directives: `SecRule REQUEST_HEADERS:X-Low "@streq 1" "id:1000003,phase:1,pass,nolog,setvar:'tx.critical_anomaly_score=0'"` + "\n"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, low := range []bool{false, true} {
		r := httptest.NewRequest("GET", "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--", http.NoBody)
		if low {
			r.Header.Set("X-Low", "1")
		}
		tx := w.Begin(nil)
		v, err := tx.Request(r, "127.0.0.1:4000")
		tx.Close()
		if err != nil {
			t.Fatal(err)
		}
		if v.Block == low {
			t.Errorf("X-Low %v: %+v, want blocked %v", low, v, !low)
		}
	}
}
