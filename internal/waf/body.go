package waf

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"io"
	"maps"
	"mime"
	"mime/multipart"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/tidwall/gjson"
)

// bodyProcessorName is moat's request body processor. Rule 90001 selects
// it for every body whose declared type Coraza's own processors do not
// parse (form, multipart/form-data, JSON, XML), and for bodies with no
// declared type at all.
const bodyProcessorName = "moatbody"

// Bounds on what one body may expand to; past them the processor fails
// and the request is refused (rule 200002), rather than passing part of
// the body uninspected.
const (
	maxBodyParts  = 4096 // arguments taken from one body
	maxBodyDepth  = 8    // nesting of multipart parts and protobuf messages
	minStringRun  = 4    // shortest text run taken from a binary body
	maxXMLTokens  = 1 << 16
	grpcFrameHead = 5
)

// errBodyTooComplex is the processor's refusal of a body past the bounds.
var errBodyTooComplex = errors.New("body has more parts or nesting than the WAF inspects")

// rawBody inspects a body of any type the way the attack rules can read
// it: each argument it holds goes into ARGS_POST, named as Coraza names a
// JSON body's ("json.key.0"). A body that parses as JSON (or NDJSON, one
// document a line), as XML or as a form is taken apart as such, whatever
// its declared type, because many backends parse it so; multipart bodies
// other than form-data (multipart/related, /mixed) are split into parts
// and each part handled the same way; protobuf and gRPC-Web bodies are
// walked field by field for their strings; any other text is one argument
// ("body"), and the text runs of any other binary body are arguments of
// their own. REQUEST_BODY holds the body as it came.
type rawBody struct{}

func newRawBody() plugintypes.BodyProcessor { return rawBody{} }

// singleSetter is how a body processor sets REQUEST_BODY: Coraza's single
// collections have Set, though the interface it hands out does not name it.
type singleSetter interface{ Set(string) }

func (rawBody) ProcessRequest(r io.Reader, v plugintypes.TransactionVariables, opts plugintypes.BodyProcessorOptions) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s, ok := v.RequestBody().(singleSetter); ok {
		s.Set(string(data))
	}
	if s, ok := v.RequestBodyLength().(singleSetter); ok {
		s.Set(strconv.Itoa(len(data)))
	}
	limit := maxBodyParts
	if opts.ArgumentLimit > 0 {
		limit = min(limit, opts.ArgumentLimit)
	}
	out := &bodyArgs{limit: limit}
	if err := out.body(opts.Mime, data, "", 0); err != nil {
		return err
	}
	post := v.ArgsPost()
	for _, kv := range out.args {
		post.Add(kv[0], kv[1])
	}
	return nil
}

func (rawBody) ProcessResponse(io.Reader, plugintypes.TransactionVariables, plugintypes.BodyProcessorOptions) error {
	return nil
}

// bodyArgs collects the arguments of one body.
type bodyArgs struct {
	args  [][2]string
	limit int
}

func (b *bodyArgs) add(name, value string) error {
	if len(b.args) >= b.limit {
		return errBodyTooComplex
	}
	b.args = append(b.args, [2]string{strings.Clone(name), value}) // keys of their own bytes: see derived.add
	return nil
}

// join names a child argument: "prefix.name", or name alone at the top.
func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// body takes apart data, declared as ctype, under the name prefix.
func (b *bodyArgs) body(ctype string, data []byte, prefix string, depth int) error {
	if depth > maxBodyDepth {
		return errBodyTooComplex
	}
	media, params, _ := mime.ParseMediaType(ctype)
	media = strings.ToLower(media)
	undeclared := strings.TrimSpace(ctype) == "" && depth == 0
	switch {
	case strings.HasPrefix(media, "multipart/") && params["boundary"] != "":
		return b.multipart(data, params["boundary"], prefix, depth)
	case media == "application/grpc-web-text" || media == "application/grpc-web-text+proto":
		dec, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(data)))
		if err != nil {
			return b.text(data, prefix)
		}
		return b.grpcWeb(dec, prefix, depth)
	case strings.HasPrefix(media, "application/grpc-web"):
		return b.grpcWeb(data, prefix, depth)
	case strings.Contains(media, "protobuf") || strings.HasSuffix(media, "+proto"):
		return b.message(data, prefix, depth)
	}
	if wide, ok := wideText(data); ok {
		// Read as the text a service that detects the encoding reads,
		// and as the bytes that spell it, whose runs of text a reader
		// of bytes takes.
		if err := b.binary(data, prefix); err != nil {
			return err
		}
		data = wide
	}
	trimmed := bytes.TrimSpace(data)
	if undeclared && !printableText(bytes.ToValidUTF8(data, nil)) {
		// Binary with no declared type (a compressed beacon): its text
		// runs, not a form.
		return b.binary(data, prefix)
	}
	if undeclared {
		// A body with no declared type is read as a form, as Coraza,
		// ModSecurity and CRS read it, and as JSON or XML too when it
		// parses as such.
		if err := b.form(string(data), prefix); err != nil {
			return err
		}
		switch {
		case looksJSON(string(trimmed)) && gjson.ValidBytes(trimmed):
			return b.json(join(prefix, "json"), string(trimmed))
		case looksJSON(string(trimmed)):
			return b.lenientJSON(trimmed, join(prefix, "json"))
		case len(trimmed) > 0 && trimmed[0] == '<':
			_, err := b.xml(trimmed, join(prefix, "xml"))
			return err
		}
		return nil
	}
	switch {
	case len(trimmed) == 0:
		return nil
	case looksJSON(string(trimmed)) && gjson.ValidBytes(trimmed):
		return b.json(join(prefix, "json"), string(trimmed))
	case trimmed[0] == '{' || trimmed[0] == '[':
		if ok, err := b.ndjson(trimmed, prefix); ok || err != nil {
			return err
		}
		if looksJSON(string(trimmed)) {
			// Read whole below as well.
			if err := b.lenientJSON(trimmed, join(prefix, "json")); err != nil {
				return err
			}
		}
	case trimmed[0] == '<':
		if ok, err := b.xml(trimmed, join(prefix, "xml")); ok || err != nil {
			return err
		}
	}
	if looksForm(trimmed) {
		return b.form(string(trimmed), prefix)
	}
	if utf8.Valid(data) && bytes.IndexByte(data, 0) < 0 {
		return b.text(data, prefix)
	}
	return b.binary(data, prefix)
}

func (b *bodyArgs) json(name, doc string) error {
	leaves, ok := flattenJSON(name, doc)
	if !ok {
		// Too deep or too large to take apart: inspect it whole.
		return b.add(name, doc)
	}
	for _, kv := range leaves {
		if err := b.add(kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

// ndjson takes apart newline-delimited JSON: every non-empty line must be
// a JSON document.
func (b *bodyArgs) ndjson(data []byte, prefix string) (bool, error) {
	lines := bytes.Split(data, []byte("\n"))
	for _, l := range lines {
		if l = bytes.TrimSpace(l); len(l) > 0 && !gjson.ValidBytes(l) {
			return false, nil
		}
	}
	n := 0
	for _, l := range lines {
		if l = bytes.TrimSpace(l); len(l) == 0 {
			continue
		}
		if err := b.json(join(prefix, "json."+strconv.Itoa(n)), string(l)); err != nil {
			return true, err
		}
		n++
	}
	return true, nil
}

// xml takes the text and attribute values of a well-formed XML document.
// Entities are resolved only as encoding/xml does (the predefined ones
// and character references): no external entity is ever fetched.
func (b *bodyArgs) xml(data []byte, name string) (bool, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	var out [][2]string
	depth := 0
	for n := 0; ; n++ {
		if n > maxXMLTokens {
			return true, errBodyTooComplex
		}
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return false, nil
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth > 64 {
				return true, errBodyTooComplex
			}
			for _, a := range t.Attr {
				out = append(out, [2]string{name + "." + t.Name.Local + "@" + a.Name.Local, a.Value})
			}
		case xml.EndElement:
			depth--
		case xml.CharData:
			if s := strings.TrimSpace(string(t)); s != "" {
				out = append(out, [2]string{name, s})
			}
		case xml.Comment:
			out = append(out, [2]string{name + ".comment", string(t)})
		case xml.ProcInst:
			out = append(out, [2]string{name + ".pi", t.Target + " " + string(t.Inst)})
		case xml.Directive:
			// DOCTYPE and ENTITY declarations: what XXE rides on. The
			// declarations that would fetch something are arguments;
			// internal entities are known to the decoder, so their values
			// reach the text where the document uses them.
			for _, decl := range declareEntities(d, t) {
				out = append(out, [2]string{name + ".doctype", decl})
			}
		}
	}
	for _, kv := range out {
		if err := b.add(kv[0], kv[1]); err != nil {
			return true, err
		}
	}
	return true, nil
}

// entityDecl is an entity's declaration in a DOCTYPE's internal subset:
// "%" for a parameter entity, its name, and its value or its external
// identifier.
var entityDecl = regexp.MustCompile(`<!ENTITY\s+(%\s*)?([^\s%>"']+)\s+(?:"([^"]*)"|'([^']*)'|((?:SYSTEM|PUBLIC)[^>]*))>`)

// declareEntities makes the general entities a DOCTYPE declares known to
// d, as a parser that reads the internal subset knows them: an internal
// entity stands for its value (drawing tools declare namespaces so), an
// external one for nothing (no entity is ever fetched). Without it a
// document that uses one would not parse and would be read as text. It
// returns what would be fetched: each external entity's declaration,
// and the DOCTYPE's own external subset when it names one by a system
// identifier alone (rule 90015 judges them). A public DTD (XHTML's,
// SVG's) is not returned.
func declareEntities(d *xml.Decoder, dir xml.Directive) []string {
	var fetch []string
	owned := false
	if head, _, _ := bytes.Cut(dir, []byte("[")); bytes.HasPrefix(head, []byte("DOCTYPE")) {
		if f := strings.Fields(string(head)); len(f) >= 3 && f[2] == "SYSTEM" {
			fetch = append(fetch, "<!"+strings.TrimSpace(string(head))+">")
		}
	}
	for _, m := range entityDecl.FindAllSubmatch(dir, 256) {
		if len(m[5]) > 0 {
			fetch = append(fetch, string(m[0]))
		}
		if len(m[1]) > 0 {
			continue // a parameter entity: the DTD's, not the document's
		}
		if !owned {
			// d.Entity may be a shared table (xml.HTMLEntity): extend a
			// copy.
			d.Entity, owned = maps.Clone(d.Entity), true
			if d.Entity == nil {
				d.Entity = map[string]string{}
			}
		}
		d.Entity[string(m[2])] = string(m[3]) + string(m[4])
	}
	return fetch
}

// looksForm reports whether data is a URL-encoded form: name=value pairs
// joined by "&", nothing a form encoder escapes left bare, names made of
// name characters.
func looksForm(data []byte) bool {
	if len(data) < 2 || bytes.IndexByte(data, '=') < 0 {
		return false
	}
	for _, c := range data {
		if c <= ' ' || c >= 0x7f || c == '"' || c == '<' || c == '>' || c == '\\' || c == '{' || c == '}' || c == '`' {
			return false
		}
	}
	for pair := range bytes.SplitSeq(data, []byte("&")) {
		k, _, ok := bytes.Cut(pair, []byte("="))
		if !ok || len(k) == 0 {
			return false
		}
		if !isFormName(string(k)) {
			return false
		}
	}
	return true
}

func (b *bodyArgs) form(s, prefix string) error {
	for pair := range strings.SplitSeq(s, "&") {
		k, v, _ := strings.Cut(pair, "=")
		k = formDecode(k)
		if err := b.add(join(prefix, k), formDecode(v)); err != nil {
			return err
		}
	}
	return nil
}

// formDecode decodes one form component: "+" is a space, then %XX.
func formDecode(s string) string {
	return percentDecodeOnce(strings.ReplaceAll(s, "+", " "))
}

// text takes a body of text whole, or line by line when every line is a
// query string, as analytics beacons batch their hits.
func (b *bodyArgs) text(data []byte, prefix string) error {
	lines := strings.FieldsFunc(string(data), func(r rune) bool { return r == '\n' || r == '\r' })
	if len(lines) > 1 {
		forms := true
		for _, l := range lines {
			if !looksFormLine(l) {
				forms = false
				break
			}
		}
		if forms {
			for i, l := range lines {
				if err := b.form(l, join(prefix, "line"+strconv.Itoa(i))); err != nil {
					return err
				}
			}
			return nil
		}
	}
	return b.add(join(prefix, "body"), string(data))
}

// looksFormLine reports whether l is name=value pairs joined by "&" with
// names of name characters; values may hold anything but "&".
func looksFormLine(l string) bool {
	if strings.IndexByte(l, '=') < 0 {
		return false
	}
	for pair := range strings.SplitSeq(l, "&") {
		k, _, ok := strings.Cut(pair, "=")
		if !ok || k == "" {
			return false
		}
		if !isFormName(k) {
			return false
		}
	}
	return true
}

// binary takes the runs of printable text in a binary body, the strings
// a serialisation format carries, as one argument, a run a line.
func (b *bodyArgs) binary(data []byte, prefix string) error {
	var out strings.Builder
	start := -1
	flush := func(end int) {
		if start >= 0 && end-start >= minStringRun {
			if out.Len() > 0 {
				out.WriteByte('\n')
			}
			out.Write(data[start:end])
		}
		start = -1
	}
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r != utf8.RuneError && (r >= 0x20 && r != 0x7f || r == '\t') {
			if start < 0 {
				start = i
			}
		} else {
			flush(i)
		}
		i += n
	}
	flush(len(data))
	if out.Len() == 0 {
		return nil
	}
	return b.add(join(prefix, "body"), out.String())
}

// multipart takes each part of a multipart body (other than form-data,
// which Coraza parses) under its form name, Content-ID or position.
func (b *bodyArgs) multipart(data []byte, boundary, prefix string, depth int) error {
	mr := multipart.NewReader(bytes.NewReader(data), boundary)
	for i := 0; ; i++ {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := p.FormName()
		if name == "" {
			name = strings.Trim(p.Header.Get("Content-Id"), "<>")
		}
		if name == "" {
			name = "part" + strconv.Itoa(i)
		}
		if fn := p.FileName(); fn != "" {
			if err := b.add(join(join(prefix, name), "filename"), fn); err != nil {
				return err
			}
		}
		content, err := io.ReadAll(p)
		if err != nil {
			return err
		}
		if err := b.body(p.Header.Get("Content-Type"), content, join(prefix, name), depth+1); err != nil {
			return err
		}
	}
}

// grpcWeb takes each length-prefixed message of a gRPC-Web body.
func (b *bodyArgs) grpcWeb(data []byte, prefix string, depth int) error {
	rest := data
	for len(rest) > 0 {
		if len(rest) < grpcFrameHead {
			return b.binary(data, prefix)
		}
		n := int(rest[1])<<24 | int(rest[2])<<16 | int(rest[3])<<8 | int(rest[4])
		if n > len(rest)-grpcFrameHead {
			return b.binary(data, prefix)
		}
		msg := rest[grpcFrameHead : grpcFrameHead+n]
		if rest[0]&0x80 != 0 {
			// A trailers frame: HTTP/1-style header lines.
			if err := b.text(msg, join(prefix, "trailers")); err != nil {
				return err
			}
		} else if err := b.message(msg, prefix, depth); err != nil {
			return err
		}
		rest = rest[grpcFrameHead+n:]
	}
	return nil
}

// maxMessageFields is how many strings of one protobuf message are
// arguments of their own; a message with more is one argument, a string a
// line.
const maxMessageFields = 256

// message takes the strings of one protobuf message, or the text runs of
// data when it is not one.
func (b *bodyArgs) message(data []byte, prefix string, depth int) error {
	fields := &bodyArgs{limit: maxBodyParts}
	ok, err := fields.protobuf(data, join(prefix, "pb"), depth)
	switch {
	case !ok:
		return b.binary(data, prefix)
	case err != nil || len(fields.args) > maxMessageFields:
		var all strings.Builder
		for _, kv := range fields.args {
			all.WriteString(kv[1])
			all.WriteByte('\n')
		}
		if err != nil {
			// Too many fields to list: their text runs still count.
			return b.binary(data, prefix)
		}
		return b.add(join(prefix, "pb"), all.String())
	}
	for _, kv := range fields.args {
		if err := b.add(kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

// protobuf walks a protobuf message without its schema: every
// length-delimited field is a nested message when it parses as one, a
// string when it is UTF-8 text, and bytes otherwise (their text runs are
// taken). It reports false when data is not a well-formed message.
func (b *bodyArgs) protobuf(data []byte, name string, depth int) (bool, error) {
	fields, ok := protoFields(data)
	if !ok {
		return false, nil
	}
	for _, f := range fields {
		fname := name + "." + strconv.FormatUint(f.num, 10)
		if depth < maxBodyDepth {
			if _, ok := protoFields(f.data); ok && len(f.data) > 0 && !printableText(f.data) {
				if _, err := b.protobuf(f.data, fname, depth+1); err != nil {
					return true, err
				}
				continue
			}
		}
		var err error
		if utf8.Valid(f.data) {
			err = b.add(fname, string(f.data))
		} else {
			err = b.binary(f.data, fname)
		}
		if err != nil {
			return true, err
		}
	}
	return true, nil
}

// printableText reports whether data is text a person would write: UTF-8
// without control characters other than white space.
func printableText(data []byte) bool {
	if !utf8.Valid(data) {
		return false
	}
	for _, r := range string(data) {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f {
			return false
		}
	}
	return true
}

type protoField struct {
	num  uint64
	data []byte
}

// protoFields splits a protobuf message into its length-delimited fields
// (varint and fixed-width fields hold numbers and are skipped). It fails
// on anything that is not a well-formed message.
func protoFields(data []byte) ([]protoField, bool) {
	var out []protoField
	for len(data) > 0 {
		key, n := uvarint(data)
		if n <= 0 {
			return nil, false
		}
		data = data[n:]
		num, wire := key>>3, key&7
		if num == 0 {
			return nil, false
		}
		switch wire {
		case 0:
			_, n := uvarint(data)
			if n <= 0 {
				return nil, false
			}
			data = data[n:]
		case 1:
			if len(data) < 8 {
				return nil, false
			}
			data = data[8:]
		case 5:
			if len(data) < 4 {
				return nil, false
			}
			data = data[4:]
		case 2:
			l, n := uvarint(data)
			if n <= 0 || l > uint64(len(data)-n) {
				return nil, false
			}
			out = append(out, protoField{num: num, data: data[n : n+int(l)]})
			data = data[n+int(l):]
		default:
			return nil, false
		}
	}
	return out, true
}

// uvarint decodes a protobuf varint; n ≤ 0 means malformed.
func uvarint(b []byte) (uint64, int) {
	var x uint64
	for i := 0; i < len(b) && i < 10; i++ {
		c := b[i]
		x |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return x, i + 1
		}
	}
	return 0, 0
}
