package seal

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestRedactHeader(t *testing.T) {
	for _, tc := range []struct{ name, value, want string }{
		{"Authorization", "Bearer eyJhbGciOi.abc.def", "Bearer [REDACTED]"},
		{"authorization", "Basic dXNlcjpwYXNz", "Basic [REDACTED]"},
		{"Authorization", "opaque", "[REDACTED]"},
		{"Proxy-Authorization", "Digest username=x, response=y", "Digest [REDACTED]"},
		{"Cookie", "session=abc123; theme=dark", "session=[REDACTED]; theme=[REDACTED]"},
		{"Set-Cookie", "sid=s3cr3t; Path=/; HttpOnly; Secure", "sid=[REDACTED]; Path=/; HttpOnly; Secure"},
		{"X-Api-Key", "k-123", "[REDACTED]"},
		{"X-Amz-Security-Token", "FQoG", "[REDACTED]"},
		{"X-Custom-Token", "abc", "[REDACTED]"},
		{"X-Client-Secret", "abc", "[REDACTED]"},
		{"Content-Type", "application/json", "application/json"},
		{"User-Agent", "curl/8.0", "curl/8.0"},
		{"X-Debug", "sent Bearer abc.def", "sent Bearer [REDACTED]"},
		{"X-Forwarded-For", "10.0.0.1", "10.0.0.1"},
	} {
		if got := RedactHeader(tc.name, tc.value); got != tc.want {
			t.Errorf("RedactHeader(%q, %q) = %q, want %q", tc.name, tc.value, got, tc.want)
		}
	}
	h := http.Header{"Authorization": {"Bearer x"}, "Accept": {"*/*"}}
	r := RedactHeaders(h)
	if r.Get("Authorization") != "Bearer [REDACTED]" || r.Get("Accept") != "*/*" || h.Get("Authorization") != "Bearer x" {
		t.Fatalf("RedactHeaders = %v (input now %v)", r, h)
	}
}

func TestRedactQuery(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"a=1&b=2", "a=1&b=2"},
		{"token=abc&page=2", "token=[REDACTED]&page=2"},
		{"password=hunter2", "password=[REDACTED]"},
		{"user=bob&passwd=x&pwd=y", "user=bob&passwd=[REDACTED]&pwd=[REDACTED]"},
		{"client_secret=s&api_key=k&apiKey=k2&access_token=t&refresh_token=r&id_token=i", "client_secret=[REDACTED]&api_key=[REDACTED]&apiKey=[REDACTED]&access_token=[REDACTED]&refresh_token=[REDACTED]&id_token=[REDACTED]"},
		{"X-Amz-Signature=abc&X-Amz-Credential=AKIA&X-Amz-Date=1", "X-Amz-Signature=[REDACTED]&X-Amz-Credential=[REDACTED]&X-Amz-Date=1"},
		{"ACCESS_TOKEN=t", "ACCESS_TOKEN=[REDACTED]"},
		{"acc%65ss_token=t", "acc%65ss_token=[REDACTED]"},
		{"token", "token"},
		{"token=", "token=[REDACTED]"},
		{"q=moatjoin.abcDEF123_-", "q=moatjoin.%5BREDACTED%5D"},
		{"q=%zz&secret=1", "q=%zz&secret=[REDACTED]"},
		{"q=hello%20world", "q=hello%20world"},
	} {
		if got := RedactQuery(tc.in); got != tc.want {
			t.Errorf("RedactQuery(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := RedactURL("https://bob:hunter2@example.test/p?token=abc&x=1"); got != "https://bob:REDACTED@example.test/p?token=[REDACTED]&x=1" {
		t.Errorf("RedactURL = %q", got)
	}
}

func TestRedactJSON(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"flat", `{"user":"bob","password":"hunter2"}`, `{"user":"bob","password":"[REDACTED]"}`},
		{"order kept", `{"z":1,"token":"t","a":2}`, `{"z":1,"token":"[REDACTED]","a":2}`},
		{"deep", `{"a":[{"b":{"client_secret":"s","n":1.50}}]}`, `{"a":[{"b":{"client_secret":"[REDACTED]","n":1.50}}]}`},
		{"object value", `{"credentials":{"user":"u","pass":"p"}}`, `{"credentials":"[REDACTED]"}`},
		{"number value", `{"pin":1,"otp":123456}`, `{"pin":1,"otp":"[REDACTED]"}`},
		{"camel", `{"apiKey":"k","accessToken":"a","privateKey":"p"}`, `{"apiKey":"[REDACTED]","accessToken":"[REDACTED]","privateKey":"[REDACTED]"}`},
		{"secret in string", `{"note":"use moatjoin.QUJDREVG to join"}`, `{"note":"use moatjoin.[REDACTED] to join"}`},
		{"array", `["Bearer abc",true,null,3]`, `["Bearer [REDACTED]",true,null,3]`},
		{"scalar", `"plain"`, `"plain"`},
		{"cut short", `{"user":"bob","password":"hun`, `{"user":"bob","password":"[REDACTED]`},
		{"trailing", `{"a":1} {"token":"x"}`, `{"a":1} {"token":"[REDACTED]"}`},
		{"unicode kept", `{"name":"é\u00e9<>"}`, `{"name":"éé\u003c\u003e"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(RedactJSON([]byte(tc.in))); got != tc.want {
				t.Errorf("RedactJSON(%s) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

const testPEM = `-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIGx3
-----END EC PRIVATE KEY-----`

func TestRedactText(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"pem", "key:\n" + testPEM + "\nafter", "key:\n-----BEGIN EC PRIVATE KEY-----[REDACTED]-----END EC PRIVATE KEY-----\nafter"},
		{"pem cut", "-----BEGIN PRIVATE KEY-----\nMIIEv", "-----BEGIN PRIVATE KEY-----[REDACTED]-----END PRIVATE KEY-----"},
		{"certificate kept", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"},
		{"join token", "moat agent --join moatjoin.eyJ0b2tlbiI6IjEyMyJ9_-x=", "moat agent --join moatjoin.[REDACTED]"},
		{"bearer", "got Authorization header? no: bearer abc.DEF-ghi~", "got Authorization header? no: bearer [REDACTED]"},
		{"header line", "Authorization: Digest a=b, c=d\nHost: x", "Authorization: [REDACTED]\nHost: x"},
		{"cookie line", "cookie:a=b", "cookie:[REDACTED]"},
		{"jwt", "tok eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_-x end", "tok [REDACTED] end"},
		{"aws key id", "AKIAIOSFODNN7EXAMPLE used", "[REDACTED] used"},
		{"aws secret", "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_access_key=[REDACTED]"},
		{"github", "ghp_" + strings.Repeat("a", 36), "[REDACTED]"},
		{"url password", "dial postgres://app:s3cret@db:5432/x", "dial postgres://app:[REDACTED]@db:5432/x"},
		{"kv", `password=hunter2 user=bob`, `password=[REDACTED] user=bob`},
		{"json-ish kv", `{"api_key": "k-123", "x": 1`, `{"api_key": "[REDACTED]", "x": 1`},
		{"plain", "GET /index.html 200", "GET /index.html 200"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := RedactText(tc.in)
			if got != tc.want {
				t.Errorf("RedactText(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if again := RedactText(got); again != got {
				t.Errorf("not idempotent: %q → %q", got, again)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"abcdefgh", 3, "abc…[+5 bytes]"},
		{"héllo", 2, "h…[+5 bytes]"}, // does not split é
		{"abc", 0, "…[+3 bytes]"},
		{"abc", -1, "…[+3 bytes]"},
		{"", 0, ""},
	} {
		if got := Truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
	// WAF matched data: masked before it is cut, so a cut cannot hide it.
	if got := RedactMatch("x password=hunter2hunter2hunter2", 20); strings.Contains(got, "hunter2") {
		t.Errorf("RedactMatch leaked: %q", got)
	}
}

func FuzzRedactJSON(f *testing.F) {
	for _, s := range []string{`{"password":"x","a":[1,{"token":{"b":2}}]}`, `[]`, `"moatjoin.abc"`, `{"a":`, `1e999`, `{"a":"\ud800"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		out := RedactJSON(b)
		if json.Valid(b) && !json.Valid(out) {
			t.Fatalf("valid input %q gave invalid output %q", b, out)
		}
		var v any
		if json.Unmarshal(out, &v) == nil {
			checkNoSecretValues(t, v)
		}
	})
}

// checkNoSecretValues asserts no secret-named key kept a value.
func checkNoSecretValues(t *testing.T, v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if isSecretName(k) && e != Mask {
				t.Fatalf("key %q kept value %v", k, e)
			}
			checkNoSecretValues(t, e)
		}
	case []any:
		for _, e := range x {
			checkNoSecretValues(t, e)
		}
	}
}

func FuzzRedactQuery(f *testing.F) {
	for _, s := range []string{"a=1&token=2", "%zz=1", "password", "q=moatjoin.x&&=", "api%5Fkey=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		out := RedactQuery(q)
		for _, p := range strings.Split(out, "&") {
			k, v, ok := strings.Cut(p, "=")
			if key, err := unescapeQuery(k); err == nil && ok && isSecretName(key) && v != Mask {
				t.Fatalf("RedactQuery(%q) kept %q", q, p)
			}
		}
	})
}

func unescapeQuery(s string) (string, error) { return url.QueryUnescape(s) }
