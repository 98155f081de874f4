package waf

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"mime/multipart"
	"net/textproto"
	"reflect"
	"strings"
	"testing"
)

func TestBodyArgs(t *testing.T) {
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	mw.SetBoundary("BOUNDARY")
	h := textproto.MIMEHeader{}
	h.Set("Content-Type", "application/json")
	h.Set("Content-ID", "<root>")
	p, _ := mw.CreatePart(h)
	p.Write([]byte(`{"q":"x"}`))
	h = textproto.MIMEHeader{}
	h.Set("Content-Type", "text/plain")
	p, _ = mw.CreatePart(h)
	p.Write([]byte("hello"))
	mw.Close()

	pb := append([]byte{0x0a, 0x05}, "hello"...)
	pb = append(pb, 0x12, 0x04, 0x0a, 0x02, 'h', 'i') // field 2: a message whose field 1 is "hi"
	grpc := append([]byte{0, 0, 0, 0, byte(len(pb))}, pb...)

	cases := []struct {
		name, ctype, body string
		want              [][2]string
	}{
		{"JSON as text/plain", "text/plain", `{"a":{"b":"x"}}`, [][2]string{{"json.a.b", "x"}}},
		{"NDJSON", "application/x-ndjson", "{\"a\":1}\n{\"b\":\"y\"}\n", [][2]string{{"json.0.a", "1"}, {"json.1.b", "y"}}},
		{"XML as text/plain", "text/plain", `<a id="1">text<b>more</b></a>`, [][2]string{{"xml.a@id", "1"}, {"xml", "text"}, {"xml", "more"}}},
		{"XML with internal entities", "application/xml", `<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd" [<!ENTITY ns "http://www.w3.org/2000/svg"><!ENTITY t '<b>x</b>'>]><svg xmlns="&ns;">&t;</svg>`,
			[][2]string{{"xml.svg@xmlns", "http://www.w3.org/2000/svg"}, {"xml", "<b>x</b>"}}},
		{"XML external entity", "text/xml", `<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd"><!ENTITY % p PUBLIC "-//x" "http://10.0.0.9/p.dtd">]><r>&x;</r>`,
			[][2]string{{"xml.doctype", `<!ENTITY x SYSTEM "file:///etc/passwd">`}, {"xml.doctype", `<!ENTITY % p PUBLIC "-//x" "http://10.0.0.9/p.dtd">`}}},
		{"XML external subset", "text/xml", `<!DOCTYPE r SYSTEM "http://10.0.0.9/r.dtd"><r>1</r>`,
			[][2]string{{"xml.doctype", `<!DOCTYPE r SYSTEM "http://10.0.0.9/r.dtd">`}, {"xml", "1"}}},
		{"form as text/plain", "text/plain", "a=1&b=x%20y", [][2]string{{"a", "1"}, {"b", "x y"}}},
		{"text", "text/plain", "just a note", [][2]string{{"body", "just a note"}}},
		{"beacon lines", "text/plain", "en=page_view&q=a b\nen=click&x=1", [][2]string{{"line0.en", "page_view"}, {"line0.q", "a b"}, {"line1.en", "click"}, {"line1.x", "1"}}},
		{"binary", "application/octet-stream", "\x00\x01hello world\x00\xffabc\x02more text", [][2]string{{"body", "hello world\nmore text"}}},
		{"protobuf", "application/x-protobuf", string(pb), [][2]string{{"pb.1", "hello"}, {"pb.2.1", "hi"}}},
		{"gRPC-Web", "application/grpc-web+proto", string(grpc), [][2]string{{"pb.1", "hello"}, {"pb.2.1", "hi"}}},
		{"gRPC-Web text", "application/grpc-web-text", base64.StdEncoding.EncodeToString(grpc), [][2]string{{"pb.1", "hello"}, {"pb.2.1", "hi"}}},
		{"multipart/related", "multipart/related; boundary=BOUNDARY", mp.String(), [][2]string{{"root.json.q", "x"}, {"part1.body", "hello"}}},
		{"no declared type", "", "a=1&b=2 3", [][2]string{{"a", "1"}, {"b", "2 3"}}},
		{"no declared type, JSON", "", `{"k":"v"}`, [][2]string{{`{"k":"v"}`, ""}, {"json.k", "v"}}},
	}
	for _, c := range cases {
		b := &bodyArgs{limit: maxBodyParts}
		if err := b.body(c.ctype, []byte(c.body), "", 0); err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !reflect.DeepEqual(b.args, c.want) {
			t.Errorf("%s: args %q, want %q", c.name, b.args, c.want)
		}
	}
}

func TestBodyArgsBounds(t *testing.T) {
	b := &bodyArgs{limit: 10}
	if err := b.body("text/plain", []byte(strings.Repeat("a=1&", 20)+"a=1"), "", 0); err != errBodyTooComplex {
		t.Errorf("20 fields with a limit of 10: %v, want errBodyTooComplex", err)
	}
	// Protobuf nested past maxBodyDepth: the innermost messages are
	// read as bytes, not recursed into.
	msg := []byte("deep")
	for i := 0; i < maxBodyDepth+4; i++ {
		msg = append([]byte{0x0a, byte(len(msg))}, msg...)
	}
	b = &bodyArgs{limit: maxBodyParts}
	if err := b.body("application/x-protobuf", msg, "", 0); err != nil {
		t.Fatal(err)
	}
	if len(b.args) != 1 || strings.Count(b.args[0][0], ".") > maxBodyDepth+1 {
		t.Errorf("deep protobuf: %q", b.args)
	}
}

func FuzzBodyArgs(f *testing.F) {
	f.Add("text/plain", []byte(`{"a":[1,2,{"b":"c"}]}`))
	f.Add("application/x-protobuf", []byte{0x0a, 0x02, 'h', 'i', 0x12, 0x00})
	f.Add("multipart/related; boundary=x", []byte("--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--x--"))
	f.Add("application/grpc-web-text", []byte("AAAAAAA="))
	f.Add("", []byte("<a>&#49;</a>"))
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		b := &bodyArgs{limit: maxBodyParts}
		_ = b.body(ctype, body, "", 0)
		if len(b.args) > maxBodyParts {
			t.Fatalf("%d arguments from one body", len(b.args))
		}
		total := 0
		for _, kv := range b.args {
			total += len(kv[1])
		}
		if total > 2*len(body)+64 {
			t.Fatalf("%d bytes of arguments from a %d-byte body", total, len(body))
		}
	})
}

// TestReadXMLBody: Coraza's reading of an XML body (attribute values, text,
// HTML's entities, a document cut short) plus the DOCTYPE's fetching
// declarations and internal entities.
func TestReadXMLBody(t *testing.T) {
	cases := []struct {
		name, body      string
		attrs, ns, text []string
		fails           bool
	}{
		{"plain", `<a id="1">x<b>y &amp; &eacute;</b></a>`, []string{"1"}, nil, []string{"x", "y & é"}, false},
		{"namespaces apart", `<f xmlns="urn:a" xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include parse="text" href="file:///etc/passwd"/></f>`,
			[]string{"text", "file:///etc/passwd"}, []string{"urn:a", "http://www.w3.org/2001/XInclude"}, nil, false},
		{"external entity", `<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>`, nil, nil, []string{`<!ENTITY x SYSTEM "file:///etc/passwd">`}, false},
		{"parameter entity", `<!DOCTYPE r [<!ENTITY % d SYSTEM "http://10.0.0.9/x.dtd"> %d;]><r>1</r>`, nil, nil, []string{`<!ENTITY % d SYSTEM "http://10.0.0.9/x.dtd">`, "1"}, false},
		{"external subset", `<!DOCTYPE r SYSTEM "http://10.0.0.9/r.dtd"><r>1</r>`, nil, nil, []string{`<!DOCTYPE r SYSTEM "http://10.0.0.9/r.dtd">`, "1"}, false},
		{"public DTD, internal entity", `<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd" [<!ENTITY t "<b>hi</b>">]><svg>&t;</svg>`, nil, nil, []string{"<b>hi</b>"}, false},
		{"RSS link", `<rss><item><link>https://a.example/</link></item></rss>`, nil, nil, []string{"https://a.example/"}, false},
		{"cut short", `<a>text`, nil, nil, []string{"text"}, false},
		{"broken", `<a></b>`, nil, nil, nil, true},
	}
	for _, c := range cases {
		attrs, ns, text, err := readXMLBody([]byte(c.body), nil)
		if c.fails != (err != nil) {
			t.Errorf("%s: error %v, want failure %v", c.name, err, c.fails)
			continue
		}
		if !reflect.DeepEqual(attrs, c.attrs) || !reflect.DeepEqual(ns, c.ns) || !reflect.DeepEqual(text, c.text) {
			t.Errorf("%s: attrs %q ns %q text %q, want %q %q %q", c.name, attrs, ns, text, c.attrs, c.ns, c.text)
		}
	}
	if _, ok := xml.HTMLEntity["x"]; ok {
		t.Error("a document's entity was added to xml.HTMLEntity, which every document shares")
	}
}

func FuzzReadXMLBody(f *testing.F) {
	for _, s := range []string{`<a id="1">x</a>`, `<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd"><!ENTITY y "&x;&x;">]><r>&y;</r>`, `<rss><link>x</link></rss>`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, ac := range [][]string{xml.HTMLAutoClose, nil} {
			attrs, ns, text, err := readXMLBody([]byte(s), ac)
			if n := len(attrs) + len(ns) + len(text); err == nil && n > len(s)+maxXMLTokens {
				t.Errorf("%d values from %d bytes", n, len(s))
			}
		}
	})
}
