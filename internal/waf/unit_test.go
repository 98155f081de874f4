package waf

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

func TestDecodeEvasions(t *testing.T) {
	cases := map[string]string{
		"%c0%ae%c0%ae%c0%afetc%c0%afpasswd":         "../etc/passwd",
		"%e0%80%ae%e0%80%ae%e0%80%afwin.ini":        "../win.ini",
		"%uff0e%uff0e%u2215etc%u2215issue":          "../etc/issue",
		"%252e%252e%252fetc":                        "../etc",
		"..0x2f..0x5cboot.ini":                      "../..\\boot.ini",
		"..%01%bg%qfetc":                            "..//etc",
		"plain text, nothing to do":                 "plain text, nothing to do",
		"caf%C3%A9 %E6%9D%B1%E4%BA%AC":              "café 東京",
		"%f8%80%80%80%ae%f8%80%80%80%ae%c0%afhosts": "../hosts",
		"％２ｅ％２ｅ％２ｆetc％２ｆpasswd":                     "../etc/passwd",
		"%EF%BC%85%EF%BC%92%EF%BD%85%EF%BC%85%EF%BC%92%EF%BD%85%EF%BC%85%EF%BC%92%EF%BD%86win.ini": "../win.ini",
		"%u002e%c0%ae/etc": "../etc",
		"５０％ off":          "50% off",
	}
	for in, want := range cases {
		got, _, err := decodeEvasions(in)
		if err != nil || got != want {
			t.Errorf("decodeEvasions(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func FuzzDecodeEvasions(f *testing.F) {
	for _, s := range []string{"%c0%ae", "%u2215", "%%%", "..%01", "\xff\xfe", "0x2f%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, changed, err := decodeEvasions(s)
		if err != nil {
			t.Fatal(err)
		}
		if !changed && out != s {
			t.Fatalf("unchanged flag with a changed value")
		}
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 out of %q: %q", s, out)
		}
	})
}

func TestMask(t *testing.T) {
	cases := []struct{ variable, value, want string }{
		{"ARGS:password", "' OR 1=1 -- hunter2", "[masked 19 bytes]"},
		{"REQUEST_COOKIES:session", "abc", "[masked 3 bytes]"},
		{"ARGS:q", "<script>alert(1)</script>", "<script>alert(1)</script>"},
		{"ARGS:q", "x Bearer abcdefghijklmnop y", "x [masked] y"},
		{"ARGS:q", "card 4111 1111 1111 1111 ok", "card [masked]ok"},
		{"ARGS:q", "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.sig", "jwt [masked]"},
	}
	for _, c := range cases {
		if got := Mask(c.variable, c.value); got != c.want {
			t.Errorf("Mask(%q, %q) = %q, want %q", c.variable, c.value, got, c.want)
		}
	}
	long := Mask("ARGS:q", strings.Repeat("é", 500))
	if utf8.RuneCountInString(long) != MaxMatched+1 {
		t.Errorf("long value kept %d runes", utf8.RuneCountInString(long))
	}
}

// FuzzMayHoldSecret: the quick test before the secret pattern never
// refuses a value the pattern matches.
func FuzzMayHoldSecret(f *testing.F) {
	for _, s := range []string{
		"x Bearer abcdefghijklmnop y", "BASIC\tQWxhZGRpbjpvcGVuIHNlc2FtZQ==", "bAsIc abcdefgh",
		"card 4111-1111-1111-1111", "4111111111111", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.sig",
		"EYJ12345678.12345678.", strings.Repeat("a1", 16), strings.Repeat("Zz/+_-", 7),
		"ba\u017fic abcdefgh", "bearer \u212aabcdefg", strings.Repeat("9f", 15) + "\u212a",
		"1' UNION SELECT password FROM users--", "<script>alert(1)</script>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !mayHoldSecret(s) && secretValue.MatchString(s) {
			t.Fatalf("mayHoldSecret(%q) refused a value the pattern matches", s)
		}
	})
}

func TestParseExclusion(t *testing.T) {
	for in, want := range map[string]string{
		"942100":        "",
		"942000-942999": "",
		"abc":           `waf: exclusion "abc": want a rule ID`,
		"0":             `waf: exclusion "0": want a rule ID`,
		"5-1":           `waf: exclusion "5-1": want a range`,
		"1-x":           `waf: exclusion "1-x": want a range`,
	} {
		_, _, err := ParseExclusion(in)
		if (err == nil) != (want == "") || (err != nil && !strings.HasPrefix(err.Error(), want)) {
			t.Errorf("ParseExclusion(%q) = %v, want %q", in, err, want)
		}
	}
}

func FuzzParseExclusion(f *testing.F) {
	f.Add("942100")
	f.Add("1-2")
	f.Fuzz(func(t *testing.T, s string) {
		a, b, err := ParseExclusion(s)
		if err == nil && (a <= 0 || b < a) {
			t.Fatalf("%q gave %d-%d", s, a, b)
		}
	})
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Paranoia: 5}, "waf: paranoia 5: want 1 to 4"},
		{Config{Paranoia: 3, DetectionParanoia: 2}, "waf: detection paranoia 2: want 3 to 4"},
		{Config{RuleFiles: []string{"testdata/nope.conf"}}, "waf: rule file: open testdata/nope.conf"},
		{Config{Directives: "SecRule ARGS \"@rx (\" \"id:1,deny\""}, "waf: load rules:"},
	} {
		_, err := New(c.cfg)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want %q", c.cfg, err, c.want)
		}
	}
}

// TestReplacedRuleExclusion: a route that excludes CRS 930120 or 930130,
// by ID or by a range, excludes the moat rule that does its work (90031,
// 90030); a value that only those rules match then passes.
func TestReplacedRuleExclusion(t *testing.T) {
	w, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, c := range []struct {
		target string
		ex     []string
		rule   int
	}{
		{"/?f=.bash_history", nil, 90031},
		{"/?f=.bash_history", []string{"930120"}, 0},
		{"/?f=.bash_history", []string{"930100-930199"}, 0},
		{"/?f=.bash_history", []string{"930130"}, 90031},
		{"/app/.htpasswd", nil, 90030},
		{"/app/.htpasswd", []string{"930130"}, 0},
	} {
		ex, err := NewExclusions(c.ex)
		if err != nil {
			t.Fatal(err)
		}
		v := judgeRequest(t, w, ex, httptest.NewRequest("GET", c.target, nil))
		got := slices.ContainsFunc(v.RuleIDs, func(id int) bool { return id == 90030 || id == 90031 })
		if want := c.rule != 0; got != want || want && !slices.Contains(v.RuleIDs, c.rule) {
			t.Errorf("%s excluding %v: rules %v, want %d", c.target, c.ex, v.RuleIDs, c.rule)
		}
	}
}

// TestSSRFInContext: CRS 934110 (an SSRF address in a parameter) is
// judged by where the URL stands: a page that mentions a local address in
// its text passes, a parameter that is the address does not.
func TestSSRFInContext(t *testing.T) {
	wantBlocks(t, []blockCase{
		{"/post?u=" + url.QueryEscape("http://169.254.169.254/latest/meta-data/"), true},
		{"/post?u=" + url.QueryEscape("http://localhost:8080/admin"), true},
		{"/post?body=" + url.QueryEscape(`<p>Run <code>make install</code>, then open <em>http://localhost:8080/</em>.</p>`), false},
		{"/post?body=" + url.QueryEscape(`<p>Preview:</p><img src="http://169.254.169.254/latest/meta-data/">`), true},
	})
}

// blockCase is a GET request's target and whether the WAF must block it.
type blockCase struct {
	target string
	block  bool
}

// wantBlocks runs each case through a WAF at its default settings.
func wantBlocks(t *testing.T, cases []blockCase) {
	t.Helper()
	w, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, c := range cases {
		if v := judgeRequest(t, w, nil, httptest.NewRequest("GET", c.target, nil)); v.Block != c.block {
			t.Errorf("%s: block %v (rules %v, discounted %v), want %v", c.target, v.Block, v.RuleIDs, v.Discounted, c.block)
		}
	}
}

// TestVerdictDoesNotDependOnOrder: the values the inspection pass adds
// (a cookie's normal form beside the cookie, several path segments under
// "path") must not take each other's transformed forms in Coraza's
// transformation cache, whatever order each rule reads a collection in
// (Go maps): the same request gets the same verdict every time.
func TestVerdictDoesNotDependOnOrder(t *testing.T) {
	// Every rule runs: the rule asked for may match after the block is
	// certain.
	w, err := New(Config{FullEvaluation: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, c := range []struct {
		target, cookie string
		rule           int
	}{
		{"/account", "session=1; p=..%5Cwindows%5Csystem32%5Cdrivers%5Cetc%5Chosts", 90011},
		{"/files/a(b)/x%2527%2520or%25201=1--/c;d/view", "", 90040},
	} {
		misses := 0
		for range 100 {
			r := httptest.NewRequest("GET", c.target, nil)
			if c.cookie != "" {
				r.Header.Set("Cookie", c.cookie)
			}
			if v := judgeRequest(t, w, nil, r); !v.Block || !slices.Contains(v.RuleIDs, c.rule) {
				misses++
			}
		}
		if misses > 0 {
			t.Errorf("%s %s: rule %d missed %d times in 100", c.target, c.cookie, c.rule, misses)
		}
	}
}

// judgeRequest runs r through one transaction of w with the route
// exclusions ex (may be nil).
func judgeRequest(t *testing.T, w *WAF, ex *Exclusions, r *http.Request) Verdict {
	t.Helper()
	tx := w.Begin(ex)
	defer tx.Close()
	v, err := tx.Request(r, "192.0.2.1:1000")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestComboURLs: a combo URL's second "?" is no stand-in for a dot to CRS
// 930100 (rule 90008), and a traversal in or after it is still refused.
func TestComboURLs(t *testing.T) {
	wantBlocks(t, []blockCase{
		{"/_static/??/wp-content/js/postmessage.js,/wp-content/js/compat.min.js?m=20230308", false},
		{"/??/sd/lib/2.5.1/common.js", false},
		{"/mui/??zebra/4.0.14/index.js,zepto/4.0.9/zepto.js", false},
		{"/??/..%2f..%2f..%2fetc/passwd", true},
		{"/??/../../../windows/win.ini", true},
		{"/static/??%2e%2e/%2e%2e/%2e%2e/app/settings.py", true},
		{"/x/%2e%2e/%2e%2e/??a.js", true},
		{"/a/?./?./b", true}, // "?" as a dot stand-in where no combo URL starts
	})
}

func TestAddressList(t *testing.T) {
	for _, c := range []struct {
		in   string
		want bool
	}{
		{"203.0.113.7", true},
		{"203.0.113.7, 10.0.0.1", true},
		{"2001:db8::1, 198.51.100.2:8443", true},
		{"[2001:db8::1]:443", true},
		{"fe80::1%' OR 1=1--", false},
		{"unknown, _hidden.proxy-1", true},
		{"", true},
		{"' OR 1=1--", false},
		{"127.0.0.1; cat /etc/passwd", false},
		{"{{7*7}}", false},
		{"localhost", false},
	} {
		if got := addressList(c.in); got != c.want {
			t.Errorf("addressList(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func FuzzAddressList(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "[::1]:80, _x", "a,b", ",,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !addressList(s) {
			return
		}
		for a := range strings.SplitSeq(s, ",") {
			if strings.ContainsAny(strings.TrimSpace(a), "'\"<>;|`$ (){}%\\") {
				t.Fatalf("addressList(%q): a value with syntax taken for an address", s)
			}
		}
	})
}

// Each transaction Begin starts has an ID of its own, which is its
// UNIQUE_ID (CRS's sampling hashes it): 100 transactions, 100 IDs.
func TestTransactionIDs(t *testing.T) {
	w, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	seen := map[string]bool{}
	for range 100 {
		tx := w.Begin(nil)
		id := tx.tx.ID()
		uid := tx.tx.(plugintypes.TransactionState).Variables().UniqueID().Get()
		tx.Close()
		if id == "" || uid != id || seen[id] {
			t.Fatalf("transaction ID %q, UNIQUE_ID %q, seen before %v", id, uid, seen[id])
		}
		seen[id] = true
	}
}
