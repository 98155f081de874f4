package gateway

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// formPart is one benign multipart/form-data field as a browser sends it
// under boundary b.
func formPart(b, name, value string) string {
	return "--" + b + "\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value + "\r\n"
}

// TestWAFMalformedBodiesRefused: a body the WAF cannot take apart as the
// type it claims is an evasion (what the WAF reads and what a backend
// reads differ), and every value in it is benign: the refusal is 403, a
// WAF event naming the rule and why, and no backend sees the body. What
// browsers and client libraries send passes, and a body past the WAF's
// bounds on how much it takes apart is still 400.
func TestWAFMalformedBodiesRefused(t *testing.T) {
	f := newFixture(t, baseYAML+"rate_limit:\n  off: true\n")
	const b = "----WebKitFormBoundaryq9Vt2LmZpX4rKs8e"
	form := "multipart/form-data; boundary=" + b
	fields := formPart(b, "title", "my holiday") + formPart(b, "note", "see you soon")
	end := "--" + b + "--\r\n"
	for _, c := range []struct {
		name, ctype, body, reason string
	}{
		{"data before the first boundary", form, "title=admin\r\n" + fields + end, "data before the first boundary"},
		{"a line that starts as the boundary and is not one", form, formPart(b, "title", "a\r\n--"+b+"x\r\nContent-Disposition: form-data; name=\"role\"\r\n\r\nadmin") + end, "a line that begins with the boundary"},
		{"a folded part header", form, "--" + b + "\r\nContent-Disposition: form-data;\r\n name=\"title\"\r\n\r\nmy holiday\r\n" + end, "folded part header"},
		{"data after the final boundary", form, fields + end + "--" + b + "\r\nContent-Disposition: form-data; name=\"role\"\r\n\r\nadmin\r\n", "data after the final boundary"},
		{"no final boundary", form, fields, ""},
		{"a quote left open", form, "--" + b + "\r\nContent-Disposition: form-data; name=\"title\r\n\r\nmy holiday\r\n" + end, ""},
		{"two boundaries in Content-Type", form + "; boundary=other", fields + end, ""},
		{"a NUL in a file name", form, "--" + b + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"notes\x00.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n" + end, ""},
		{"two file names in one part", form, "--" + b + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"; filename=\"b.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n" + end, ""},
		{"JSON that does not parse", "application/json", `{"title": "my holiday", "note": }`, "invalid JSON"},
		{"XML that does not parse", "application/xml", `<order><item id="1">book</item></order2>`, ""},
		{"multipart/related cut short", "multipart/related; boundary=" + b, formPart(b, "meta", `{"title": "my holiday"}`), ""},
	} {
		before := len(f.events.all())
		r := f.req("POST", "/api/items", strings.NewReader(c.body))
		r.Header.Set("Content-Type", c.ctype)
		r.Header.Set("Origin", f.base)
		code, _, resp := f.do(r)
		if code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", c.name, code)
			continue
		}
		if resp.Header.Get("Strict-Transport-Security") == "" || resp.Header.Get("X-Request-ID") == "" {
			t.Errorf("%s: the refusal lacks the gateway's headers: %v", c.name, resp.Header)
		}
		recs := f.events.all()[before:]
		if len(recs) != 1 || recs[0].Unmapped == nil || recs[0].Unmapped.Kind != KindWAF || recs[0].HTTPResponse.Code != 403 {
			t.Errorf("%s: events %+v, want one WAF event answered 403", c.name, recs)
			continue
		}
		rules := recs[0].Unmapped.Rules
		if !slices.Contains(rules, "200002") && !slices.Contains(rules, "200003") {
			t.Errorf("%s: rules %v, want 200002 or 200003", c.name, rules)
		}
		t.Logf("%s: %s", c.name, recs[0].Message)
		if !strings.Contains(recs[0].Message, c.reason) {
			t.Errorf("%s: event message %q does not say %q", c.name, recs[0].Message, c.reason)
		}
	}
	if n := f.backends["api"].count.Load(); n != 0 {
		t.Errorf("the backend served %d malformed bodies", n)
	}

	t.Log("what browsers and client libraries send passes")
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("title", "my holiday")
	fw, _ := mw.CreateFormFile("photo", "beach.txt")
	fw.Write([]byte("sand, sea and a long line of text\nover two lines\r\n--not the boundary\r\n"))
	mw.Close()
	for _, c := range []struct{ name, ctype, body string }{
		{"Go's multipart writer", mw.FormDataContentType(), buf.String()},
		{"a browser's form", form, fields + end},
		{"a form with no fields", form, end},
		{"a line break before the first boundary", form, "\r\n" + fields + end},
		{"a quoted boundary", `multipart/form-data; boundary="` + b + `"`, fields + end},
		{"no line break after the final boundary", form, fields + strings.TrimSuffix(end, "\r\n")},
		{"blank lines after the final boundary", form, fields + end + "\r\n\r\n"},
		{"transport padding after a boundary", form, strings.Replace(fields, b+"\r\n", b+" \t\r\n", 1) + end},
		{"JSON", "application/json", `{"title": "my holiday", "note": "see you soon"}`},
		{"XML", "application/xml", `<order><item id="1">book</item></order>`},
	} {
		r := f.req("POST", "/api/items", strings.NewReader(c.body))
		r.Header.Set("Content-Type", c.ctype)
		r.Header.Set("Origin", f.base)
		if code, body, _ := f.do(r); code != 200 {
			t.Errorf("benign %s: %d %q, want 200", c.name, code, body)
		}
	}

	t.Log("a body past the WAF's bounds is refused 400, not taken for an attack")
	deep := strings.Repeat("[", 1100) + strings.Repeat("]", 1100)
	r := f.req("POST", "/api/items", strings.NewReader(deep))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Origin", f.base)
	if code, _, _ := f.do(r); code != http.StatusBadRequest {
		t.Errorf("JSON nested 1100 deep: %d, want 400", code)
	}
}
