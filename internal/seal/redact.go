package seal

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"
)

// Mask replaces every redacted secret.
const Mask = "[REDACTED]"

// Redaction is one step used by every writer of logs, flow records,
// security events and alerts: values go through it before they are
// written anywhere. It masks what it recognizes and keeps the rest, so it
// is a safety net under, not a substitute for, never logging secrets.

// secretHeaders are masked whatever their value.
var secretHeaders = map[string]bool{
	"authorization":        true,
	"proxy-authorization":  true,
	"cookie":               true,
	"set-cookie":           true,
	"x-api-key":            true,
	"api-key":              true,
	"x-auth-token":         true,
	"x-access-token":       true,
	"x-csrf-token":         true,
	"x-xsrf-token":         true,
	"x-amz-security-token": true,
	"x-vault-token":        true,
	"private-token":        true,
	"x-moat-join-token":    true,
}

// isSecretName reports whether a header, query or JSON key names a secret.
// Names are compared case-insensitively, without '-', '_' and '.'.
func isSecretName(name string) bool {
	n := strings.Map(func(r rune) rune {
		switch r {
		case '-', '_', '.', ' ':
			return -1
		}
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, name)
	switch n {
	case "auth", "pwd", "pass", "sig", "jwt", "otp", "assertion", "session", "sid":
		return true
	}
	for _, s := range []string{"token", "secret", "passw", "passphrase", "apikey", "privatekey", "credential", "signature", "sessionid", "cookie", "authorization", "xamzcredential"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// RedactHeader returns value as it may be written for header name. Secret
// headers are masked: Authorization keeps its scheme ("Bearer [REDACTED]"),
// Cookie keeps cookie names, Set-Cookie keeps the name and attributes.
// Other headers have secrets recognized in their text masked.
func RedactHeader(name, value string) string {
	lname := strings.ToLower(strings.TrimSpace(name))
	if !secretHeaders[lname] && !isSecretName(lname) {
		return RedactText(value)
	}
	switch lname {
	case "authorization", "proxy-authorization":
		if scheme, _, ok := strings.Cut(strings.TrimSpace(value), " "); ok && scheme != "" && len(scheme) <= 32 {
			return scheme + " " + Mask
		}
		return Mask
	case "cookie":
		parts := strings.Split(value, ";")
		for i, p := range parts {
			k, _, ok := strings.Cut(p, "=")
			if !ok {
				parts[i] = Mask
				continue
			}
			parts[i] = k + "=" + Mask
		}
		return strings.Join(parts, ";")
	case "set-cookie":
		first, attrs, hasAttrs := strings.Cut(value, ";")
		k, _, ok := strings.Cut(first, "=")
		out := Mask
		if ok {
			out = k + "=" + Mask
		}
		if hasAttrs {
			out += ";" + RedactText(attrs)
		}
		return out
	}
	return Mask
}

// RedactHeaders returns a copy of h with every value through RedactHeader.
func RedactHeaders(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for k, vs := range h {
		rv := make([]string, len(vs))
		for i, v := range vs {
			rv[i] = RedactHeader(k, v)
		}
		out[k] = rv
	}
	return out
}

// RedactQuery masks the values of secret parameters (token, password,
// secret, api_key, access_token, …) in a raw query string, keeping order
// and the encoding of everything else; other values have recognized
// secrets masked.
func RedactQuery(rawQuery string) string {
	if rawQuery == "" {
		return ""
	}
	parts := strings.Split(rawQuery, "&")
	for i, p := range parts {
		k, v, hasValue := strings.Cut(p, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			key = k
		}
		if isSecretName(key) {
			if hasValue {
				parts[i] = k + "=" + Mask
			}
			continue
		}
		if !hasValue {
			continue
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			// Not decodable: mask what is recognizable in the raw form.
			parts[i] = k + "=" + RedactText(v)
			continue
		}
		if r := RedactText(val); r != val {
			parts[i] = k + "=" + url.QueryEscape(r)
		}
	}
	return strings.Join(parts, "&")
}

// RedactURL masks the password of a URL's user information and redacts its
// query. A string that does not parse is redacted as text.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return RedactText(raw)
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "REDACTED")
	}
	u.RawQuery = RedactQuery(u.RawQuery)
	if u.Fragment != "" {
		u.Fragment = RedactText(u.Fragment)
		u.RawFragment = ""
	}
	return u.String()
}

// RedactJSON masks, at any depth, the values of keys that name secrets
// (whatever the value: string, number, object), and recognized secrets in
// every other string. Key order and numbers are kept. Input that is not
// one valid JSON value (a body cut short, say) is redacted as text.
func RedactJSON(b []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out bytes.Buffer
	if err := redactJSONValue(dec, &out, 0); err != nil {
		return []byte(RedactText(string(b)))
	}
	if _, err := dec.Token(); err != io.EOF {
		return []byte(RedactText(string(b)))
	}
	return out.Bytes()
}

const maxJSONDepth = 512

func redactJSONValue(dec *json.Decoder, out *bytes.Buffer, depth int) error {
	if depth > maxJSONDepth {
		return fmt.Errorf("nested deeper than %d", maxJSONDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			out.WriteByte('{')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					out.WriteByte(',')
				}
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				key, ok := kt.(string)
				if !ok {
					return fmt.Errorf("object key is %T", kt)
				}
				writeJSONString(out, key)
				out.WriteByte(':')
				if isSecretName(key) {
					var skip json.RawMessage
					if err := dec.Decode(&skip); err != nil {
						return err
					}
					writeJSONString(out, Mask)
					continue
				}
				if err := redactJSONValue(dec, out, depth+1); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil { // '}'
				return err
			}
			out.WriteByte('}')
		case '[':
			out.WriteByte('[')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					out.WriteByte(',')
				}
				if err := redactJSONValue(dec, out, depth+1); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil { // ']'
				return err
			}
			out.WriteByte(']')
		default:
			return fmt.Errorf("unexpected %v", t)
		}
	case string:
		writeJSONString(out, RedactText(t))
	case json.Number:
		out.WriteString(t.String())
	case bool:
		fmt.Fprint(out, t)
	case nil:
		out.WriteString("null")
	default:
		return fmt.Errorf("unexpected token %T", tok)
	}
	return nil
}

func writeJSONString(out *bytes.Buffer, s string) {
	b, _ := json.Marshal(s) // a string always marshals
	out.Write(b)
}

// textRule is one pattern RedactText masks.
type textRule struct {
	re   *regexp.Regexp
	repl string
}

// textRules are applied in order by RedactText. They are compiled on first
// use: most commands, and every agent, never redact free text.
var textRules = sync.OnceValue(func() []textRule {
	return []textRule{
		// PEM private keys of any kind, also when cut off before their END line.
		{regexp.MustCompile(`(?s)-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)`), "-----BEGIN ${1}PRIVATE KEY-----" + Mask + "-----END ${1}PRIVATE KEY-----"},
		// moat join tokens.
		{regexp.MustCompile(`moatjoin\.[A-Za-z0-9_\-]+={0,2}`), "moatjoin." + Mask},
		// Header lines quoted in text.
		{regexp.MustCompile(`(?i)\b((?:proxy-)?authorization|cookie|set-cookie|x-api-key)(\s*:\s*)[^\r\n]*`), "${1}${2}" + Mask},
		// Bearer and Basic credentials.
		{regexp.MustCompile(`(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/\-]+=*`), "${1}${2}" + Mask},
		// JSON Web Tokens.
		{regexp.MustCompile(`\beyJ[A-Za-z0-9_\-]+\.eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*`), Mask},
		// AWS access key IDs.
		{regexp.MustCompile(`\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b`), Mask},
		// GitHub and Slack tokens.
		{regexp.MustCompile(`\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|xox[abprs]-[A-Za-z0-9\-]{10,})`), Mask},
		// Passwords in URLs.
		{regexp.MustCompile(`(://[^/\s:@]*:)[^/\s@]+@`), "${1}" + Mask + "@"},
		// key=value and "key": "value" where the key names a secret.
		{regexp.MustCompile(`(?i)\b([a-z0-9_\-]*(?:password|passwd|passphrase|secret|token|api[_\-]?key|private[_\-]?key|credential|signature)[a-z0-9_\-]*)(["']?\s*[:=]\s*["']?)([^\s"'&,;}]+)`), "${1}${2}" + Mask},
	}
})

// RedactText masks secrets recognized in free text: PEM private keys,
// moat join tokens (moatjoin.<base64url>), Bearer and Basic credentials,
// quoted Authorization and Cookie header lines, JWTs, AWS access key IDs,
// GitHub and Slack tokens, passwords in URLs, and key=value or "key":
// "value" pairs whose key names a secret.
func RedactText(s string) string {
	for _, r := range textRules() {
		s = r.re.ReplaceAllString(s, r.repl)
	}
	return s
}

// Truncate shortens s to at most n bytes, cutting on a UTF-8 boundary,
// and says how much was cut: "abc…[+12 bytes]". n <= 0 gives just the
// marker for a non-empty s.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := max(n, 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s…[+%d bytes]", s[:cut], len(s)-cut)
}

// RedactMatch prepares WAF matched data and other attacker-supplied
// excerpts for a record: secrets masked first (so truncation cannot hide
// a secret's marker), then cut to n bytes.
func RedactMatch(s string, n int) string { return Truncate(RedactText(s), n) }
