package waf

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"slices"
	"strings"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// xmlBody is moat's XML body processor, in place of Coraza's (rule 200000
// selects it for XML types). It reads a document as Coraza 3.8's does
// (leniently, HTML's entities known, elements closed as HTML closes
// them), putting attribute values in XML://@* and text in XML:/*, and
// also reads the DOCTYPE, which Coraza's drops and with it every XML
// external entity: the declarations that would fetch a file or a URL go
// into XML:/* for rule 90015, and the document's internal entities are
// known to the decoder, so their values reach the text where the
// document uses them. A document that closes an element HTML leaves open
// (an RSS item's <link>…</link>) is read as XML, not refused.
type xmlBody struct{}

const xmlBodyProcessorName = "xml"

func newXMLBody() plugintypes.BodyProcessor { return xmlBody{} }

func (xmlBody) ProcessRequest(r io.Reader, v plugintypes.TransactionVariables, _ plugintypes.BodyProcessorOptions) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	attrs, ns, text, err := readXMLBody(data, xml.HTMLAutoClose)
	if err != nil {
		// HTML's void elements closed as HTML closes them break an XML
		// document that closes them itself (an RSS item's <link>…</link>).
		attrs, ns, text, err = readXMLBody(data, nil)
	}
	if err != nil {
		return err
	}
	col := v.RequestXML()
	col.Set("//@*", append(slices.Clip(attrs), ns...))
	// The attack rules read XML:/*: attribute values are read there
	// beside the text, as the same document sent as text/plain is read
	// (body.go), since an application reads both ("<item id=\"1' or
	// 1=1\">"). Namespace declarations name a vocabulary, not data, and
	// stay in XML://@* alone.
	col.Set("/*", append(slices.Clip(text), attrs...))
	return nil
}

func (xmlBody) ProcessResponse(io.Reader, plugintypes.TransactionVariables, plugintypes.BodyProcessorOptions) error {
	return nil
}

// readXMLBody returns a document's attribute values, its namespace
// declarations' values apart (xmlns, xmlns:x), and its text (with the
// DOCTYPE's fetching declarations), within maxXMLTokens tokens, the
// elements named in autoClose closed where they open.
func readXMLBody(data []byte, autoClose []string) (attrs, ns, text []string, err error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = false
	d.AutoClose = autoClose
	d.Entity = xml.HTMLEntity
	for n := 0; ; n++ {
		if n > maxXMLTokens {
			return nil, nil, nil, errBodyTooComplex
		}
		tok, err := d.Token()
		if err != nil && err != io.EOF && !unexpectedEOF(err) {
			return nil, nil, nil, err
		}
		if tok == nil {
			break
		}
		switch t := tok.(type) {
		case xml.StartElement:
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
					ns = append(ns, a.Value)
				} else {
					attrs = append(attrs, a.Value)
				}
			}
		case xml.CharData:
			if s := strings.TrimSpace(string(t)); s != "" {
				text = append(text, s)
			}
		case xml.Directive:
			text = append(text, declareEntities(d, t)...)
		}
	}
	return attrs, ns, text, nil
}

// unexpectedEOF reports a document cut short, which Coraza's processor
// reads up to where it ends.
func unexpectedEOF(err error) bool {
	var serr *xml.SyntaxError
	return errors.As(err, &serr) && serr.Msg == "unexpected EOF"
}
