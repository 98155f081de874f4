package waf

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// decompress replaces a gzip or deflate request body with its decoded form,
// read lazily and capped at limit+1 bytes (so the body limit still refuses
// a decompression bomb), and drops Content-Encoding and Content-Length: the
// rules inspect, and the service receives, what the client meant. Other
// encodings are left alone, and CRS refuses them (920450), as it cannot see
// inside them; so are codings stacked in two fields, as they are in one
// ("gzip, gzip"): a layer decoded and both fields dropped would hand the
// service the rest unlabelled and uninspected.
func decompress(r *http.Request, limit int64) {
	encs := r.Header.Values("Content-Encoding")
	if len(encs) != 1 {
		return
	}
	enc := strings.ToLower(strings.TrimSpace(encs[0]))
	if r.Body == nil || r.Body == http.NoBody || (enc != "gzip" && enc != "x-gzip" && enc != "deflate") {
		return
	}
	orig := r.Body
	var rd io.Reader
	if enc == "deflate" {
		rd = flate.NewReader(orig)
	} else {
		rd = &lazyGzip{src: orig}
	}
	r.Body = readCloser{io.LimitReader(rd, limit+1), orig}
	r.Header.Del("Content-Encoding")
	r.Header.Del("Content-Length")
	r.ContentLength = -1
}

// lazyGzip opens the gzip stream on first read, so a bad header shows up
// as a read error (and a refused request) rather than here.
type lazyGzip struct {
	src io.Reader
	zr  *gzip.Reader
	err error
}

func (l *lazyGzip) Read(p []byte) (int, error) {
	if l.zr == nil && l.err == nil {
		l.zr, l.err = gzip.NewReader(l.src)
	}
	if l.err != nil {
		return 0, l.err
	}
	return l.zr.Read(p)
}

// errResponseCoding: a response body whose type the rules inspect came in
// a content coding the WAF cannot read.
var errResponseCoding = errors.New("waf: response body in a content coding the WAF does not decode")

// decodeResponse replaces a gzip response body with its decoded form and
// drops Content-Encoding and Content-Length, so that the response rules
// read, and the client receives, the text itself: a client that offers
// gzip would otherwise have a leak (a SQL error, a stack trace) pass
// compressed past rules that read bytes. A body in any other coding (br,
// zstd, deflate, gzip twice) is an error, answered as a failed upstream:
// what cannot be inspected is not sent.
func decodeResponse(resp *http.Response) error {
	codings := resp.Header.Values("Content-Encoding")
	enc := strings.ToLower(strings.TrimSpace(strings.Join(codings, ",")))
	switch enc {
	case "", "identity":
		resp.Header.Del("Content-Encoding")
		return nil
	case "gzip", "x-gzip":
	default:
		return fmt.Errorf("%w: %q", errResponseCoding, enc)
	}
	orig := resp.Body
	resp.Body = readCloser{&lazyGzip{src: orig}, orig}
	resp.Header.Del("Content-Encoding")
	resp.Header.Del("Content-Length")
	resp.ContentLength = -1
	resp.Uncompressed = true
	return nil
}

// errResponseUnreadable: a response body of a type the rules inspect that
// they cannot read in full (past the response body limit, in a charset
// that does not spell ASCII as ASCII, or of more than one type).
var errResponseUnreadable = errors.New("waf: response body the rules cannot read")

// responseType returns resp's Content-Type as the rules judge it: its
// media type in lower case without surrounding space, as browsers read
// it ("Text/HTML ; charset=utf-8" is text/html), parameters kept.
// Coraza compares the type as written, so such a page would pass
// unread. More than one Content-Type is an error: readers differ on
// which one counts.
func responseType(resp *http.Response) (string, error) {
	cts := resp.Header.Values("Content-Type")
	switch len(cts) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", fmt.Errorf("%w: %d Content-Type fields", errResponseUnreadable, len(cts))
	}
	media, params, _ := strings.Cut(cts[0], ";")
	media = strings.ToLower(strings.TrimSpace(media))
	if params != "" {
		return media + ";" + params, nil
	}
	return media, nil
}

// readableCharsets spell ASCII text as ASCII bytes, which is what the
// response rules match: the charsets CRS takes on request bodies (920480)
// and ASCII.
var readableCharsets = map[string]bool{
	"": true, "utf-8": true, "utf8": true, "us-ascii": true, "ascii": true,
	"iso-8859-1": true, "latin1": true, "iso-8859-15": true, "windows-1252": true,
}

// checkResponseText refuses an inspected response body the rules would
// read as noise: a charset parameter not in readableCharsets (UTF-16,
// UTF-7, EBCDIC), or a UTF-16 byte order mark, which browsers obey over
// the header. body must have been peeked from the body's start.
func checkResponseText(ctype string, body *bufio.Reader) error {
	_, params, _ := strings.Cut(ctype, ";")
	for _, p := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(p, "=")
		if !strings.EqualFold(strings.TrimSpace(k), "charset") {
			continue
		}
		cs := strings.ToLower(strings.Trim(strings.TrimSpace(v), `"'`))
		if !readableCharsets[cs] {
			return fmt.Errorf("%w: charset %q", errResponseUnreadable, cs)
		}
	}
	if bom, _ := body.Peek(2); string(bom) == "\xff\xfe" || string(bom) == "\xfe\xff" {
		return fmt.Errorf("%w: UTF-16 byte order mark", errResponseUnreadable)
	}
	return nil
}
