package waf

import (
	"compress/flate"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
)

// decompress replaces a gzip or deflate request body with its decoded form,
// read lazily and capped at limit+1 bytes (so the body limit still refuses
// a decompression bomb), and drops Content-Encoding and Content-Length: the
// rules inspect, and the service receives, what the client meant. Other
// encodings are left alone, and CRS refuses them (920450), as it cannot see
// inside them.
func decompress(r *http.Request, limit int64) {
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
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
