package gateway

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
)

// readPlainHead reads the header of an answer to r from br when it is all
// in br's buffer and of the plain case, and returns it as
// http.ReadResponse would, field for field, with a body that reads as its
// body does (FuzzReadPlainHead holds the two to each other): the status
// line "HTTP/1.1", three digits from 200 to 599 but 204 and 304, a space
// and a reason of printable ASCII; fields of canonical names and values
// of printable ASCII and tabs, one of them a Content-Length of digits;
// none folded, no Transfer-Encoding, Trailer, Connection or Pragma (which
// http.ReadResponse rewrites); not an answer to HEAD. It reads all the
// header in one string, the fields' names and values its substrings,
// where http.ReadResponse allocates each value, a transfer reader and a
// limited reader on top of the body. ok is false, and nothing read,
// otherwise.
func readPlainHead(br *bufio.Reader, r *http.Request) (resp *http.Response, ok bool) {
	if r.Method == http.MethodHead {
		return nil, false
	}
	buf, _ := br.Peek(br.Buffered())
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		return nil, false
	}
	// The status line.
	if len(buf) < len("HTTP/1.1 200 X\r\n") || string(buf[:9]) != "HTTP/1.1 " {
		return nil, false
	}
	code := 0
	for _, c := range buf[9:12] {
		if c < '0' || c > '9' {
			return nil, false
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || code > 599 || code == http.StatusNoContent || code == http.StatusNotModified || buf[12] != ' ' {
		return nil, false
	}
	line := bytes.IndexByte(buf, '\r')
	if line <= 13 || buf[line+1] != '\n' || !printable(buf[13:line]) {
		return nil, false
	}
	// The fields: count them, and check each.
	fields := 0
	length := int64(-1)
	for i := line + 2; i < end+2; {
		j := i + bytes.IndexByte(buf[i:end+2], '\r')
		if buf[j+1] != '\n' {
			return nil, false
		}
		f := buf[i:j]
		colon := bytes.IndexByte(f, ':')
		if colon <= 0 || !canonicalToken(f[:colon]) || !printableOrTab(f[colon+1:]) {
			return nil, false
		}
		switch string(f[:colon]) {
		case "Transfer-Encoding", "Trailer", "Connection", "Pragma":
			return nil, false
		case "Content-Length":
			v := trimSpaceTab(f[colon+1:])
			if length >= 0 || len(v) == 0 || len(v) > 18 {
				return nil, false
			}
			length = 0
			for _, c := range v {
				if c < '0' || c > '9' {
					return nil, false
				}
				length = length*10 + int64(c-'0')
			}
		}
		fields++
		i = j + 2
	}
	if length < 0 {
		return nil, false
	}
	// All in one string.
	s := string(buf[:end])
	values := make([]string, fields)
	h := make(http.Header, fields)
	n := 0
	for i := line + 2; i < end; {
		j := i + indexCR(s[i:])
		colon := i + indexColon(s[i:j])
		name, v := s[i:colon], trimSpaceTabString(s[colon+1:j])
		if vv, dup := h[name]; dup {
			h[name] = append(vv, v)
		} else {
			values[n] = v
			h[name] = values[n : n+1 : n+1]
			n++
		}
		i = j + 2
	}
	resp = &http.Response{
		Status:        s[9:line],
		StatusCode:    code,
		Proto:         s[:8],
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		ContentLength: length,
		Request:       r,
		Body:          http.NoBody,
	}
	if length > 0 {
		resp.Body = &lengthBody{r: br, left: length}
	}
	_, _ = br.Discard(end + 4)
	return resp, true
}

func indexCR(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '\r' {
			return i
		}
	}
	return len(s)
}

func indexColon(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return i
		}
	}
	return len(s)
}

// printable reports whether b is printable ASCII.
func printable(b []byte) bool {
	for _, c := range b {
		if c < ' ' || c > '~' {
			return false
		}
	}
	return true
}

// printableOrTab reports whether b is printable ASCII and tabs.
func printableOrTab(b []byte) bool {
	for _, c := range b {
		if (c < ' ' || c > '~') && c != '\t' {
			return false
		}
	}
	return true
}

// canonicalToken reports whether b is a field name as
// textproto.CanonicalMIMEHeaderKey writes it: letters, digits and dashes,
// each letter upper case after a dash or at the start, lower case
// elsewhere.
func canonicalToken(b []byte) bool {
	upper := true
	for _, c := range b {
		switch {
		case c == '-':
			upper = true
			continue
		case 'A' <= c && c <= 'Z':
			if !upper {
				return false
			}
		case 'a' <= c && c <= 'z':
			if upper {
				return false
			}
		case '0' <= c && c <= '9':
		default:
			return false
		}
		upper = false
	}
	return true
}

func trimSpaceTab(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func trimSpaceTabString(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// lengthBody is a body of known length read from a connection: as
// net/http's, it ends with io.EOF together with its last bytes, and a
// connection that ends first is io.ErrUnexpectedEOF.
type lengthBody struct {
	r    io.Reader
	left int64
}

func (b *lengthBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	switch {
	case err == io.EOF && b.left > 0:
		err = io.ErrUnexpectedEOF
	case err == nil && b.left == 0:
		err = io.EOF
	}
	return n, err
}

func (b *lengthBody) Close() error { return nil }
