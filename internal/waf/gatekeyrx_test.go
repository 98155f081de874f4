package waf

import (
	"bufio"
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// keyReaderRemoved runs raw through w and reports whether the gate
// removed rule id from the transaction, and the verdict.
func keyReaderRemoved(t *testing.T, w *WAF, raw []byte, id int) (bool, Verdict) {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	tx := w.Begin(nil)
	defer tx.Close()
	v, err := tx.Request(r, "127.0.0.1:4000")
	if err != nil {
		t.Fatal(err)
	}
	ranges := reflect.ValueOf(tx.tx).Elem().FieldByName("ruleRemoveByIDRanges")
	for i := range ranges.Len() {
		if lo, hi := int(ranges.Index(i).Index(0).Int()), int(ranges.Index(i).Index(1).Int()); lo <= id && id <= hi {
			return true, v
		}
	}
	return false, v
}

// keyReaderOf is the gate's view of rule id as a key reader
// (gatekeyrx.go), nil when the phase-2 gate does not decide it so.
func keyReaderOf(w *WAF, id int) *txKeyReader {
	for _, r := range phase2Decided(w.plan) {
		if r.id == id {
			return r.keys
		}
	}
	return nil
}

// TestGateKeyReaderCRS: CRS's 922110 reads TX:/MULTIPART_HEADERS_CONTENT_TYPES_*/.
// A plain GET and a form POST have no such key, and the gate removes it;
// a multipart request whose part names its type keeps it (922150, which
// writes the keys, stays: without the writer's check, the part's UTF-7
// goes unseen); so does a request with a header whose name holds the
// key's text, for which 920450 writes header_name_920450_<name> (without
// the keyed writer's check, 922110 is removed and does not match). Each
// verdict is Coraza's alone.
func TestGateKeyReaderCRS(t *testing.T) {
	// Every rule runs: whether 922110 matches is the question, also
	// after an attack's block is certain.
	w, err := New(Config{Budget: time.Hour, FullEvaluation: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	kr := keyReaderOf(w, 922110)
	if kr == nil || !slices.Equal(kr.writers, []int{922150}) || len(kr.keyed) != 1 || kr.keyed[0].prefix != "header_name_920450_" || !kr.keyed[0].caseOnly {
		t.Fatalf("922110 is not decided with 922150 as writer and 920450 as keyed writer: %+v", kr)
	}
	const ua = "Host: localhost\r\nUser-Agent: Mozilla/5.0\r\nAccept: */*\r\n"
	form := func(extra, body string) []byte {
		return []byte("POST /submit HTTP/1.1\r\n" + ua + extra +
			"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	}
	multipart := func(partType string) []byte {
		body := "--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n" + partType + "\r\n\r\nhello\r\n--XyZ--\r\n"
		return []byte("POST /upload HTTP/1.1\r\n" + ua +
			"Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	}
	cases := []struct {
		name    string
		raw     []byte
		removed bool
		matches bool // 922110 matches
	}{
		{"GET", []byte("GET /search?q=shoes HTTP/1.1\r\n" + ua + "\r\n"), true, false},
		{"form", form("", "name=alice&comment=hello"), true, false},
		{"multipart", multipart("Content-Type: text/plain"), false, false},
		{"multipart UTF-7", multipart("Content-Type: text/plain; charset=utf-7"), false, true},
		{"header name", form("X-Multipart_Headers_Content_Types_x: text/html\r\n", "name=alice&comment=hello"), false, true},
		{"header name, attack", form("X-Multipart_Headers_Content_Types_x: text/html\r\n", "q=1' UNION SELECT password FROM users--"), false, true},
		{"header name in upper case", []byte("GET / HTTP/1.1\r\n" + ua + "MULTIPART_HEADERS_CONTENT_TYPES: 1\r\n\r\n"), false, true},
	}
	var inputs [][]byte
	for _, c := range cases {
		inputs = append(inputs, c.raw)
		removed, v := keyReaderRemoved(t, w, c.raw, 922110)
		if removed != c.removed || slices.Contains(v.RuleIDs, 922110) != c.matches {
			t.Errorf("%s: 922110 removed %v, matched %v (rules %v); want removed %v, matched %v",
				c.name, removed, !removed && slices.Contains(v.RuleIDs, 922110), v.RuleIDs, c.removed, c.matches)
		}
	}
	differential(t, Config{Budget: time.Hour}, nil, inputs)
}

// TestGateKeyReaderWriters: rule sets in which something else may write
// a key 1760 reads (TX:/^kr_1760_/). Each writer the gate cannot rule
// out leaves 1760 to Coraza, and 1760 refuses the plain GET as Coraza
// alone does; with none, it is decided and removed. A writer whose key
// is built from a macro other than TX:0 (in phase 1, or in phase 2 before
// 1760 where the gate cannot remove it) fails this test when macro-built
// keys are not counted; one of literal text and %{tx.0} by a capturing
// first link makes its keys from the header names.
func TestGateKeyReaderWriters(t *testing.T) {
	const reader = `SecRule TX:/^KR_1760_/ "@rx ." "id:1760,phase:2,deny,status:403,log,msg:'key read'"` + "\n"
	get := []byte("GET /p?q=1 HTTP/1.1\r\nHost: localhost\r\nX-Kind: alpha\r\n\r\n")
	for _, c := range []struct {
		name, rules string
		decided     bool // the gate decides 1760
		refuses     bool // 1760 refuses the GET
	}{
		{"no writer", ``, true, false},
		{"phase-1 macro key",
			`SecRule REQUEST_HEADERS:X-Kind "@rx ." "id:1761,phase:1,pass,nolog,setvar:'tx.kr_1760_%{REQUEST_HEADERS.X-Kind}=1'"`, true, true},
		{"macro key on a chain link",
			`SecRule REQUEST_HEADERS:X-Kind "@rx ." "id:1761,phase:1,pass,nolog,capture,chain"
  SecRule REQUEST_METHOD "@rx ." "setvar:'tx.kr_1760_%{tx.0}=1'"`, true, true},
		{"phase-2 macro key",
			`SecAction "id:1761,phase:2,pass,nolog,setvar:'tx.kr_1760_%{REQUEST_METHOD}=1'"`, true, true},
		{"phase-2 macro key after the reader",
			`SecAction "id:1769,phase:2,pass,nolog,setvar:'tx.kr_1760_%{REQUEST_METHOD}=1'"`, true, false},
		{"constant", `SecAction "id:1761,phase:1,pass,nolog,setvar:'tx.kr_1760_x=1'"`, false, true},
		{"macro key of another prefix",
			`SecAction "id:1761,phase:2,pass,nolog,setvar:'tx.kr_1761_%{REQUEST_METHOD}=1'"`, true, false},
		{"literal key", `SecRule REQUEST_HEADERS:X-Kind "@rx ." "id:1761,phase:1,pass,nolog,setvar:'tx.kr_1760_x=1'"`, true, true},
		{"keyed writer, matching",
			`SecRule REQUEST_HEADERS_NAMES "@rx ^.*$" "id:1761,phase:1,pass,nolog,capture,t:none,t:lowercase,setvar:'tx.kr_1760_%{tx.0}=1'"`, true, true},
		{"keyed writer, not matching",
			`SecRule REQUEST_HEADERS_NAMES "@rx ^x-other$" "id:1761,phase:1,pass,nolog,capture,t:none,t:lowercase,setvar:'tx.kr_1760_%{tx.0}=1'"`, true, false},
		{"keyed writer, other prefix",
			`SecRule REQUEST_HEADERS_NAMES "@rx ^.*$" "id:1761,phase:1,pass,nolog,capture,t:none,t:lowercase,setvar:'tx.hn_%{tx.0}=1'"`, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{Budget: time.Hour, Directives: c.rules + "\n" + reader}
			switch {
			case strings.Contains(c.rules, "1769"):
				cfg.Directives = reader + c.rules + "\n"
			case c.name == "constant":
				// Before CRS's setup, the resolver's to fold.
				f := filepath.Join(t.TempDir(), "before.conf")
				if err := os.WriteFile(f, []byte(c.rules+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				cfg = Config{Budget: time.Hour, RuleFilesBefore: []string{f}, Directives: reader}
			}
			w, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if kr := keyReaderOf(w, 1760); (kr != nil) != c.decided {
				t.Errorf("1760 decided %v, want %v", kr != nil, c.decided)
			}
			removed, v := keyReaderRemoved(t, w, get, 1760)
			if refused := slices.Contains(v.RuleIDs, 1760); refused != c.refuses || removed == c.refuses {
				t.Errorf("1760 removed %v, refused %v (%+v); want refused %v", removed, refused, v, c.refuses)
			}
			differential(t, cfg, nil, [][]byte{get})
		})
	}
}

// TestGateKeyReaderRefuses: a key regex that may match a key the gate
// cannot follow leaves its rule to Coraza: the capture keys (digits),
// the keys moat's code writes, a score it names by paranoia level.
func TestGateKeyReaderRefuses(t *testing.T) {
	for _, c := range []struct {
		re      string
		decided bool
	}{
		{`^kr_1770_`, true},
		{`^[0-9]+$`, false},
		{`moat_start`, false},
		{`anomaly_score_pl`, false},
		{`_pl1$`, false},
		{`score_pl7`, false},
		{`score_pl1x`, true},
	} {
		w, err := New(Config{Budget: time.Hour, Directives: `SecRule TX:/` + c.re + `/ "@rx ." "id:1770,phase:2,deny,status:403,log"`})
		if err != nil {
			t.Fatal(err)
		}
		if kr := keyReaderOf(w, 1770); (kr != nil) != c.decided {
			t.Errorf("TX:/%s/: decided %v, want %v", c.re, kr != nil, c.decided)
		}
		w.Close()
	}
}
