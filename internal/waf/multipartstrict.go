package waf

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"strings"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// txMultipartError is the TX variable that holds why a multipart/form-data
// body failed multipartStrict; rule 200003 logs it.
const txMultipartError = "moat_multipart_error"

// formDataBody reports whether Coraza's multipart processor takes the body
// of a request whose Content-Type fields are ctypes: as Coraza picks it,
// from the first field alone, trimmed and in any case.
func formDataBody(ctypes []string) bool {
	return len(ctypes) > 0 && strings.HasPrefix(strings.ToLower(strings.TrimSpace(ctypes[0])), "multipart/form-data")
}

// checkMultipart runs multipartStrict over the buffered body of a
// multipart/form-data request and, when it fails, sets
// MULTIPART_STRICT_ERROR (rule 200003 refuses the request). The reason,
// or "", goes into txMultipartError either way, so that the rule's log
// names it or nothing. A Content-Type that does not parse, or names no
// boundary, is Coraza's processor's to flag.
func checkMultipart(v plugintypes.TransactionVariables, ctype string, body io.Reader) {
	why := ""
	if _, params, err := mime.ParseMediaType(ctype); err == nil && params["boundary"] != "" {
		why = multipartStrict(body, params["boundary"])
	}
	v.TX().Set(txMultipartError, []string{why})
	if why == "" {
		return
	}
	if s, ok := v.MultipartStrictError().(singleSetter); ok {
		s.Set("1")
	}
}

// multipartStrict returns why body, multipart under boundary, is not
// multipart as browsers and client libraries write it, or "". Go's reader
// (which Coraza's processor uses) is lenient where other parsers are not,
// or lenient differently, and each leniency is a way to show the WAF one
// set of fields and a backend another:
//
//   - data before the first boundary (a preamble: Go skips it, a parser
//     that takes the body from its first line reads it as a part);
//   - a line that begins with the boundary and is not one ("--B" then
//     more than padding: Go reads it as content, a parser that matches the
//     boundary as a prefix starts a part there);
//   - a boundary after a bare line feed in a body whose lines end in CRLF
//     (Go reads it as content, a line-based parser as a boundary);
//   - a folded part header (a line that starts with a space or tab: Go
//     joins it to the header before, others do not);
//   - data after the final boundary (an epilogue: Go skips it, a parser
//     that does not stop at the final boundary reads more parts);
//   - no final boundary.
//
// Padding (spaces and tabs) after a boundary, and blank lines before the
// first boundary and after the final one, are allowed: clients send them
// and every parser skips them.
// The body is read as it streams, one line (or bufio's buffer of one) at
// a time.
func multipartStrict(body io.Reader, boundary string) string {
	const (
		preamble = iota
		headers
		content
		epilogue
	)
	delim := []byte("--" + boundary)
	br := bufio.NewReaderSize(body, max(4096, 2*len(delim)+64))
	state := preamble
	lineStart := true // the next read starts a line
	crlf := true      // the body's lines end in CRLF (from its first boundary)
	bareLF := false   // the line before ended in a bare LF
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			whole := line[len(line)-1] == '\n'
			switch {
			case !lineStart:
				// The rest of a line longer than the buffer.
				if state == epilogue && !blankLine(line) {
					return "data after the final boundary"
				}
			case state == preamble:
				switch {
				case delimLine(line, delim):
					state = headers
				case bytes.HasPrefix(line, delim) && bytes.HasPrefix(line[len(delim):], []byte("--")) && padding(line[len(delim)+2:]):
					// A form with no fields, as browsers send it.
					state = epilogue
				case blankLine(line) && whole:
					// A line break before the first boundary (RFC 2046
					// puts one before every delimiter): no parser reads
					// a part in it.
					continue
				default:
					return "data before the first boundary"
				}
				crlf = bytes.HasSuffix(line, []byte("\r\n"))
			case state == headers:
				if line[0] == ' ' || line[0] == '\t' {
					return "a folded part header"
				}
				if blankLine(line) {
					state = content
				}
			case state == content && bytes.HasPrefix(line, delim):
				rest := line[len(delim):]
				switch {
				case crlf && bareLF:
					return "a boundary after a bare line feed"
				case padding(rest):
					state = headers
				case bytes.HasPrefix(rest, []byte("--")) && padding(rest[2:]):
					state = epilogue
				default:
					return "a line that begins with the boundary and is not one"
				}
			case state == epilogue:
				if !blankLine(line) {
					return "data after the final boundary"
				}
			}
			lineStart = whole
			bareLF = whole && !bytes.HasSuffix(line, []byte("\r\n"))
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			// io.EOF, or a read error the caller's read of the same
			// body meets.
			break
		}
	}
	if state != epilogue && !(state == preamble && lineStart) {
		// (An empty body is not parsed: Coraza skips it.)
		return "no final boundary"
	}
	return ""
}

// delimLine reports whether line is delim and padding.
func delimLine(line, delim []byte) bool {
	return bytes.HasPrefix(line, delim) && padding(line[len(delim):])
}

// padding reports whether rest, what follows a boundary on its line, is
// only spaces and tabs and the line's end.
func padding(rest []byte) bool {
	switch string(bytes.TrimLeft(rest, " \t")) {
	case "", "\n", "\r\n":
		return true
	}
	return false
}

// blankLine reports whether line holds only whitespace.
func blankLine(line []byte) bool {
	return len(bytes.TrimSpace(line)) == 0
}

// dataFileArgs adds to ARGS_POST the arguments of the file parts of a
// multipart/form-data body that declare a data type, JSON or XML, taken
// apart as a body of that type is. Coraza keeps a file's content out of
// the arguments, as ModSecurity does; but a part sent as a file is also
// how a browser's FormData sends a Blob of JSON (file name "blob"), and
// frameworks bind such a part by its type (Spring's @RequestPart, JAX-RS's
// @FormDataParam through Jackson or JAXB) as they would a JSON body. A
// part that does not parse is left to the rules that judge the body.
func dataFileArgs(v plugintypes.TransactionVariables, ctype string, body io.Reader, limit int) error {
	_, params, err := mime.ParseMediaType(ctype)
	if err != nil || params["boundary"] == "" {
		return nil
	}
	out := &bodyArgs{limit: limit}
	mr := multipart.NewReader(body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		media, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		media = strings.ToLower(media)
		if p.FileName() == "" || !dataType(media) {
			continue
		}
		data, err := io.ReadAll(p)
		if err != nil {
			break
		}
		if err := out.body(media, data, p.FormName(), 1); err != nil {
			return err
		}
	}
	post := v.ArgsPost()
	for _, kv := range out.args {
		post.Add(kv[0], kv[1])
	}
	return nil
}

// dataType reports whether media is a JSON or XML type, which frameworks
// bind to objects.
func dataType(media string) bool {
	return media == "application/json" || strings.HasSuffix(media, "+json") ||
		media == "application/xml" || media == "text/xml" || strings.HasSuffix(media, "+xml")
}
