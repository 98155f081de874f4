package waf

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestReadBody checks the request body's way into Coraza (readBody) where
// the declared length is right, short, long or missing, at the body
// limit, and on a read error: what is inspected is every byte the client
// sent, up to the limit, and what is forwarded is the body as it came.
func TestReadBody(t *testing.T) {
	w, err := New(Config{RequestBodyLimit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const form = "application/x-www-form-urlencoded"
	benign := "name=Ana&comment=" + strings.Repeat("leave+it+at+the+door+", 8)
	attack := benign + "&q=1%27%20UNION%20SELECT%20password%20FROM%20users--"
	cases := []struct {
		name     string
		body     string
		declared int64 // -1: not declared
		status   int   // 0: passes
	}{
		{"declared", benign, int64(len(benign)), 0},
		{"attack declared", attack, int64(len(attack)), 403},
		{"attack past the declared length", attack, 20, 403},
		{"benign past the declared length", benign, 20, 0},
		{"attack short of the declared length", attack, 900, 403},
		{"benign short of the declared length", benign, 900, 0},
		{"attack undeclared", attack, -1, 403},
		{"one byte under the limit", "a=" + strings.Repeat("b", 997), 999, 0},
		{"at the limit", "a=" + strings.Repeat("b", 998), 1000, 413},
		{"past the limit, declared under it", "a=" + strings.Repeat("b", 1400), 500, 413},
		{"past the limit, undeclared", "a=" + strings.Repeat("b", 1400), -1, 413},
	}
	for _, c := range cases {
		r := httptest.NewRequest("POST", "/contact", io.NopCloser(strings.NewReader(c.body)))
		r.Header.Set("Content-Type", form)
		r.ContentLength = c.declared
		tx := w.Begin(nil)
		v, err := tx.Request(r, "127.0.0.1:4000")
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got := 0
		if v.Block {
			got = v.Status
		}
		if got != c.status {
			t.Errorf("%s: status %d (rules %v), want %d", c.name, got, v.RuleIDs, c.status)
		}
		if !v.Block {
			fwd, err := io.ReadAll(r.Body)
			if err != nil || string(fwd) != c.body {
				t.Errorf("%s: forwarded %d bytes (%v), want the %d sent", c.name, len(fwd), err, len(c.body))
			}
		}
		tx.Close()
	}

	reset := errors.New("connection reset")
	r := httptest.NewRequest("POST", "/contact", io.NopCloser(io.MultiReader(strings.NewReader(benign[:30]), errReader{reset})))
	r.Header.Set("Content-Type", form)
	r.ContentLength = int64(len(benign))
	tx := w.Begin(nil)
	defer tx.Close()
	if _, err := tx.Request(r, "127.0.0.1:4000"); !errors.Is(err, reset) {
		t.Errorf("a body that fails to read: %v, want %v", err, reset)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
