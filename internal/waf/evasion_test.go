package waf

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// evasionCase is one request of the evasion tests: a value in a carrier,
// and whether the WAF must block it.
type evasionCase struct {
	attack bool
	req    toolCapture
}

// jsonField is a JSON API's POST with v as the string of one field.
func jsonField(v string) toolCapture {
	b, _ := json.Marshal(map[string]string{"p": v})
	return toolCapture{"json", false, "POST", "/api/v1/items", [][2]string{{"Content-Type", "application/json"}}, string(b)}
}

// wantVerdicts sends each case through a loopback server in front of a
// WAF at its default settings and wants attacks blocked and the rest
// passed.
func wantVerdicts(t *testing.T, cases []evasionCase) {
	t.Helper()
	reqs := make([]corpusReq, len(cases))
	for i, c := range cases {
		c.req.attack = c.attack
		reqs[i] = c.req.corpusReq(i)
	}
	w, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	s := scoreCorpus(t, w, reqs)
	show := func(id string) string {
		var i int
		fmt.Sscanf(id[strings.LastIndexByte(id, '-')+1:], "%d", &i)
		c := cases[i].req
		return fmt.Sprintf("%s %s %q", c.method, c.target, c.body)
	}
	for _, m := range s.missed {
		t.Errorf("attack passed: %s", show(strings.Fields(m)[1]))
	}
	for _, fp := range s.falsePos {
		f := strings.Fields(fp)
		t.Errorf("benign blocked: %s (%s)", show(f[1]), strings.Join(f[2:], " "))
	}
	if s.refused > 0 {
		t.Errorf("%d requests refused by the HTTP server", s.refused)
	}
}

func b64Field(s string) toolCapture { return jsonField(base64.StdEncoding.EncodeToString([]byte(s))) }

// TestDecodedLayerCarriers: a value Base64-encoded in a JSON field is
// read by every family as its decoded text, not only in its normal form,
// which strips what SQL and JavaScript read as comments: MySQL's "#" is
// a URL to markup, JavaScript's "//" a path to CSS. Short padded Base64
// and Base64 of text with a control character that splits a keyword are
// decoded too. Base64 of prose, of binary and of short words passes.
func TestDecodedLayerCarriers(t *testing.T) {
	wantVerdicts(t, []evasionCase{
		{true, b64Field(`<IMG SRC=# onmouseover="alert('kcf')">`)},
		{true, b64Field(`<style>//*{x:expression(prompt(/xss/))}//<style></style>`)},
		{true, b64Field(`--><!-- --!> <img src=xxx:x onerror=javascript:alert(1)> -->`)},
		{true, b64Field("<img \x00src=x onerror=\"javascript:alert(1)\">")},
		{true, b64Field("<a href=\"javas\x05cript:javascript:alert(1)\" id=\"x\">test</a>")},
		{true, b64Field("1 * 1/*")},
		{true, b64Field(" OR 1=0")},
		{true, b64Field("'<='")},
		{false, b64Field("Issue #12: the build fails, see #13 -- thanks")},
		{false, b64Field(`{"theme":"dark","accent":"#ff8800","note":"// TODO"}`)},
		{false, b64Field("test")},
		{false, b64Field("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11")},
		{false, jsonField("MTIzNDU2Nzg=")},
	})
}

func getPath(target string) toolCapture { return toolCapture{"path", false, "GET", target, nil, ""} }

// TestDecodedMatrixSpans: a matrix parameter whose value holds syntax is
// also read to the end of the path, since the value's own "/" does not
// end it for a handler that takes it from the raw path, and so is the
// path from a bare ";" that ends a segment.
func TestDecodedMatrixSpans(t *testing.T) {
	wantVerdicts(t, []evasionCase{
		{true, getPath("/files/a;x=%3B/usr/bin/id%5Cn")},
		{true, getPath("/files/a;x=a%29%3B/usr/bin/id%7C")},
		{true, getPath("/files/x;p=%3B/usr/bin/id")},
		{true, getPath("/files/x;p=%60/usr/bin/whoami%60/view")},
		{true, getPath("/files/x;p=;/usr/bin/id")},
		{true, getPath("/files/x;/usr/bin/id")},
		{false, getPath("/files/x;/images/2026/cat.png")},
		{false, getPath("/app;jsessionid=0A1B2C;/account/settings")},
		{false, getPath("/files/a;jsessionid=0A1B2C3D4E/view")},
		{false, getPath("/cars;color=red;year=2012/models/list")},
		{false, getPath("/search;q=red%20shoes/results/2")},
		{false, getPath("/img;w=100;h=50/cats/tabby.png")},
		{false, getPath("/docs;v=(draft)/intro/usage")},
	})
}
