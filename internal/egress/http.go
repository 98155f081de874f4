package egress

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Plain HTTP to an allowed name. A server shared by several sites (a CDN,
// virtual hosts, a cloud load balancer) serves the one the request's Host
// names, whatever address it came in on, so the point reads every request
// of such a connection: the Host, and an absolute-form target, must name
// the host asked for, and each request's body is framed here as the
// server will frame it (Content-Length or chunked) to find where the next
// request starts. Whatever two servers could read two ways is refused.

// maxHTTPLine bounds the request line, and a line of the head; it is the
// size of the buffer a plain HTTP connection reads through.
const maxHTTPLine = 8 << 10

// maxHTTPHead bounds a request's head (request line and fields) and a
// chunked body's trailer section.
const maxHTTPHead = 32 << 10

// httpHeadTimeout bounds the wait for the rest of a request's head once
// its first byte came.
const httpHeadTimeout = 10 * time.Second

// httpError is why a plain HTTP request may not go to the target.
type httpError struct{ reason string }

func (e *httpError) Error() string { return e.reason }

func refuseHTTP(format string, args ...any) error {
	return &httpError{reason: fmt.Sprintf(format, args...)}
}

// plainUpload copies what a client sends to a name over a connection that
// is not TLS. When it opens with an HTTP request, every request is
// checked; another protocol (SSH, SMTP…) is copied as it comes.
type plainUpload struct {
	t      Target
	client *readerConn // what was read ahead, then the client's connection
	br     *bufio.Reader
	up     net.Conn
	sh     *serverHello // the server's first bytes: an upgrade's answer
	n      int64        // bytes written up
}

// relayPlain relays client's bytes (first those of ahead) to up, checking
// HTTP requests against t. It returns the bytes written up and, when a
// request was refused, why.
func relayPlain(client net.Conn, ahead []byte, up net.Conn, t Target, sh *serverHello) (n int64, refusal error) {
	u := &plainUpload{t: t, client: &readerConn{Conn: client, ahead: bytes.NewReader(ahead)}, up: up, sh: sh}
	u.br = bufio.NewReaderSize(u.client, maxHTTPLine)
	err := u.run()
	var he *httpError
	if errors.As(err, &he) {
		return u.n, he
	}
	return u.n, nil
}

func (u *plainUpload) run() error {
	_ = u.client.SetReadDeadline(time.Now().Add(httpHeadTimeout))
	isHTTP, err := sniffHTTP(u.br)
	_ = u.client.SetReadDeadline(time.Time{})
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return refuseHTTP("a first line that could open an HTTP request did not end within %v", httpHeadTimeout)
	}
	if err != nil {
		return err
	}
	if !isHTTP {
		return u.raw()
	}
	for first := true; ; first = false {
		// The wait for a next request is the connection's idle time;
		// once its first byte is in, its head must follow.
		if _, err := u.br.Peek(1); err != nil {
			return err
		}
		_ = u.client.SetReadDeadline(time.Now().Add(httpHeadTimeout))
		req, err := readRequestHead(u.br)
		_ = u.client.SetReadDeadline(time.Time{})
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return refuseHTTP("a request head did not end within %v of its first byte", httpHeadTimeout)
		}
		if err != nil {
			return err
		}
		if err := req.check(u.t, first); err != nil {
			return err
		}
		if err := u.write(req.raw); err != nil {
			return err
		}
		if err := u.body(req); err != nil {
			return err
		}
		if req.upgrade {
			// The server's first answer tells whether it switched
			// protocols; until then nothing more goes up.
			<-u.sh.status
			if u.sh.switched() {
				return u.raw()
			}
		}
	}
}

// raw copies the rest as it comes: what was read ahead, then straight
// from the client's connection.
func (u *plainUpload) raw() error {
	if b, _ := u.br.Peek(u.br.Buffered()); len(b) > 0 {
		if err := u.write(b); err != nil {
			return err
		}
	}
	m, err := copyUp(u.up, u.client)
	u.n += m
	return err
}

func (u *plainUpload) write(b []byte) error {
	k, err := u.up.Write(b)
	u.n += int64(k)
	return err
}

// body copies the request's body up, framed as its head says.
func (u *plainUpload) body(req *requestHead) error {
	if !req.chunked {
		return u.copyLimited(req.length)
	}
	budget := maxHTTPHead
	for {
		line, err := readLine(u.br, &budget)
		if err != nil {
			return err
		}
		size, err := chunkSize(line)
		if err != nil {
			return err
		}
		if err := u.write(line); err != nil {
			return err
		}
		if size == 0 {
			break
		}
		budget = maxHTTPHead
		if err := u.copyLimited(size); err != nil {
			return err
		}
		end := make([]byte, 2)
		if _, err := io.ReadFull(u.br, end); err != nil {
			return err
		}
		if string(end) != "\r\n" {
			return refuseHTTP("a chunk's data does not end where its size says")
		}
		if err := u.write(end); err != nil {
			return err
		}
	}
	// The trailer section: fields, then an empty line.
	for {
		line, err := readLine(u.br, &budget)
		if err != nil {
			return err
		}
		if len(line) > 2 {
			if _, _, err := parseField(line); err != nil {
				return err
			}
		}
		if err := u.write(line); err != nil {
			return err
		}
		if len(line) == 2 {
			return nil
		}
	}
}

// copyLimited copies n bytes up, from the buffer and then straight from
// the client's connection, so that a large body is the kernel's to copy.
func (u *plainUpload) copyLimited(n int64) error {
	if k := min(int64(u.br.Buffered()), n); k > 0 {
		b, _ := u.br.Peek(int(k))
		if err := u.write(b); err != nil {
			return err
		}
		_, _ = u.br.Discard(int(k))
		n -= k
	}
	if n == 0 {
		return nil
	}
	// The buffer is empty: what the client sent with its request
	// (CONNECT's leftover, when larger than the buffer), then its
	// connection as it is, so that a copy between two TCP connections
	// is the kernel's.
	for _, r := range []io.Reader{u.client.ahead, u.client.Conn} {
		m, err := io.Copy(u.up, io.LimitReader(r, n))
		u.n += m
		if n -= m; err != nil || n == 0 {
			return err
		}
	}
	return io.ErrUnexpectedEOF
}

// sniffHTTP tells whether the client's first line is an HTTP request.
// Another protocol tells itself early: a first word of other than token
// characters, or not followed by a space or a tab. A line that goes on
// with a space is read to its end, bounded: it is HTTP when it names an
// HTTP version, and an HTTP/0.9 request ("GET /path", which servers
// answer from their default site whatever host was asked) is refused.
func sniffHTTP(br *bufio.Reader) (bool, error) {
	at := func(i int) (byte, error) {
		b, err := br.Peek(i + 1)
		if errors.Is(err, bufio.ErrBufferFull) {
			return 0, refuseHTTP("a request line longer than %d bytes", maxHTTPLine)
		}
		if err != nil {
			return 0, err
		}
		return b[i], nil
	}
	i := 0
	for { // servers skip empty lines before a request
		b, err := at(i)
		if err != nil {
			return false, err
		}
		if b != '\r' && b != '\n' {
			break
		}
		i++
	}
	start := i
	for {
		b, err := at(i)
		if err != nil {
			return false, err
		}
		if !isTokenChar(b) {
			break
		}
		i++
	}
	method := i
	if b, _ := at(i); i == start || b != ' ' && b != '\t' {
		return false, nil
	}
	for {
		b, err := at(i)
		if err != nil {
			return false, err
		}
		if b == '\n' {
			break
		}
		i++
	}
	line, _ := br.Peek(i + 1)
	if bytes.Contains(bytes.ToUpper(line), []byte("HTTP/")) {
		return true, nil
	}
	if string(line[start:method]) == "GET" {
		return false, refuseHTTP("an HTTP/0.9 request, which names no host")
	}
	return false, nil
}

// requestHead is one request's head as read, and what the checks found.
type requestHead struct {
	raw     []byte // every byte of the head, as it goes up
	method  string
	target  string
	version string
	host    []string // the Host fields' values
	length  int64    // the body's length unless chunked
	chunked bool
	upgrade bool // a websocket upgrade
	fields  []field
}

type field struct{ name, value string }

// readLine reads one line ending in CRLF, counting it against budget.
// A bare CR or LF, or a NUL, is refused: servers differ on them.
func readLine(br *bufio.Reader, budget *int) ([]byte, error) {
	var line []byte
	for {
		b, err := br.ReadSlice('\n')
		if len(line)+len(b) > *budget {
			return nil, refuseHTTP("a request head longer than %d bytes", maxHTTPHead)
		}
		line = append(line, b...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return nil, err
		}
		break
	}
	*budget -= len(line)
	body := line[:len(line)-1]
	if len(body) == 0 || body[len(body)-1] != '\r' {
		return nil, refuseHTTP("a line ends in a bare LF")
	}
	if i := bytes.IndexAny(body[:len(body)-1], "\r\x00"); i >= 0 {
		return nil, refuseHTTP("a line holds a bare CR or a NUL")
	}
	return line, nil
}

// readRequestHead reads a request's head: the request line and its fields,
// up to the empty line. Empty lines before the request line are skipped.
func readRequestHead(br *bufio.Reader) (*requestHead, error) {
	budget := maxHTTPHead
	h := &requestHead{}
	var line []byte
	for {
		var err error
		if line, err = readLine(br, &budget); err != nil {
			return nil, err
		}
		h.raw = append(h.raw, line...)
		if len(line) > 2 {
			break
		}
	}
	parts := strings.Split(string(line[:len(line)-2]), " ")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return nil, refuseHTTP("a malformed request line")
	}
	h.method, h.target, h.version = parts[0], parts[1], parts[2]
	for i := 0; i < len(h.method); i++ {
		if !isTokenChar(h.method[i]) {
			return nil, refuseHTTP("a malformed request method")
		}
	}
	for i := 0; i < len(h.target); i++ {
		if h.target[i] <= ' ' || h.target[i] >= 0x7f {
			return nil, refuseHTTP("a request target with a control, space or non-ASCII byte")
		}
	}
	if h.version != "HTTP/1.1" && h.version != "HTTP/1.0" {
		return nil, refuseHTTP("HTTP version %q (HTTP/1.0 and HTTP/1.1 are read here)", bounded(h.version))
	}
	for {
		line, err := readLine(br, &budget)
		if err != nil {
			return nil, err
		}
		h.raw = append(h.raw, line...)
		if len(line) == 2 {
			return h, nil
		}
		name, value, err := parseField(line)
		if err != nil {
			return nil, err
		}
		h.fields = append(h.fields, field{name, value})
	}
}

// parseField reads "name: value" CRLF. A line folded onto the one before
// (starting with a space or a tab), a space before the colon or a control
// byte in the value is refused.
func parseField(line []byte) (name, value string, err error) {
	s := string(line[:len(line)-2])
	if s[0] == ' ' || s[0] == '\t' {
		return "", "", refuseHTTP("a header line folded onto the one before (obs-fold)")
	}
	name, value, ok := strings.Cut(s, ":")
	if !ok || name == "" {
		return "", "", refuseHTTP("a header line without a field name and a colon")
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return "", "", refuseHTTP("a malformed header name")
		}
	}
	value = strings.Trim(value, " \t")
	for i := 0; i < len(value); i++ {
		if c := value[i]; c < ' ' && c != '\t' || c == 0x7f {
			return "", "", refuseHTTP("a control byte in header %q", bounded(name))
		}
	}
	return name, value, nil
}

// check decides whether the request may go to t, and frames its body.
// first says whether it opens the connection.
func (h *requestHead) check(t Target, first bool) error {
	var lengths, encodings, upgrades, expects []string
	for _, f := range h.fields {
		switch name := strings.ToLower(f.name); name {
		case "host":
			h.host = append(h.host, f.value)
		case "x-forwarded-host", "x-host", "x-original-host", "x-forwarded-server":
			// Servers behind a proxy that trust these pick the site
			// from them, as they would from Host.
			for _, a := range strings.Split(f.value, ",") {
				if err := checkAuthority(strings.Trim(a, " \t"), t, f.name); err != nil {
					return err
				}
			}
		case "forwarded":
			if err := checkForwarded(f.value, t); err != nil {
				return err
			}
		case "content-length":
			lengths = append(lengths, f.value)
		case "transfer-encoding":
			encodings = append(encodings, f.value)
		case "upgrade":
			upgrades = append(upgrades, f.value)
		case "expect":
			expects = append(expects, f.value)
		}
	}
	if h.method == "CONNECT" {
		return refuseHTTP("a CONNECT request inside the connection")
	}
	if len(h.host) != 1 {
		return refuseHTTP("%d Host fields (one is needed)", len(h.host))
	}
	if err := checkAuthority(h.host[0], t, "Host"); err != nil {
		return err
	}
	switch {
	case strings.HasPrefix(h.target, "//"):
		// Read by some servers and frameworks as a scheme-relative URL
		// naming its host.
		return refuseHTTP("a request target %q opening with //, which some servers read as naming a host", bounded(h.target))
	case strings.HasPrefix(h.target, "/"):
	case h.target == "*" && h.method == "OPTIONS":
	default:
		rest, ok := cutPrefixFold(h.target, "http://")
		if !ok {
			return refuseHTTP("a request target %q of other than origin or http:// absolute form", bounded(h.target))
		}
		auth := rest
		if i := strings.IndexAny(rest, "/?#"); i >= 0 {
			auth = rest[:i]
		}
		if err := checkAuthority(auth, t, "the request target"); err != nil {
			return err
		}
	}
	switch {
	case len(lengths) > 0 && len(encodings) > 0:
		return refuseHTTP("both Content-Length and Transfer-Encoding")
	case len(encodings) > 1 || len(encodings) == 1 && (!strings.EqualFold(encodings[0], "chunked") || h.version != "HTTP/1.1"):
		return refuseHTTP("a Transfer-Encoding other than one chunked (HTTP/1.1)")
	case len(encodings) == 1:
		h.chunked = true
	case len(lengths) > 1:
		return refuseHTTP("%d Content-Length fields", len(lengths))
	case len(lengths) == 1:
		v := lengths[0]
		if v == "" || len(v) > 18 || strings.Trim(v, "0123456789") != "" {
			return refuseHTTP("Content-Length %q", bounded(v))
		}
		h.length, _ = strconv.ParseInt(v, 10, 64)
	}
	if (h.method == "GET" || h.method == "HEAD") && (h.chunked || h.length != 0) {
		// Servers differ on whether a GET or HEAD has a body: one that
		// reads none takes it for the next request.
		return refuseHTTP("a %s with a body", h.method)
	}
	if len(upgrades) > 0 {
		// A websocket connection is the host's own; another protocol
		// (h2c, whose requests name their authority apart, TLS) is not
		// read here.
		if len(upgrades) != 1 || !strings.EqualFold(upgrades[0], "websocket") {
			return refuseHTTP("an upgrade to other than websocket")
		}
		if !first || h.chunked || h.length != 0 || len(expects) > 0 || h.method != "GET" {
			return refuseHTTP("a websocket upgrade other than a body-less GET opening its connection")
		}
		h.upgrade = true
	}
	return nil
}

// checkAuthority checks a Host field or an absolute target's authority:
// the target's host, in any ASCII case, and its port or none. A name is
// refused with a trailing dot (servers differ on whether "name." is the
// name), with userinfo, or with any byte other than a name's.
func checkAuthority(a string, t Target, what string) error {
	host, port := a, ""
	if i := strings.LastIndexByte(a, ':'); i >= 0 {
		host, port = a[:i], a[i+1:]
		if port != strconv.Itoa(t.Port) {
			return refuseHTTP("%s %q names another port than %d", what, bounded(a), t.Port)
		}
	}
	if strings.HasSuffix(host, ".") {
		return refuseHTTP("%s %q ends in a dot (servers differ on whether that names the same site)", what, bounded(a))
	}
	for i := 0; i < len(host); i++ {
		c := host[i] | 0x20
		if !(c >= 'a' && c <= 'z' || host[i] >= '0' && host[i] <= '9' || host[i] == '-' || host[i] == '.') {
			return refuseHTTP("%s %q is not a host name", what, bounded(a))
		}
	}
	if !strings.EqualFold(host, t.Host) {
		return refuseHTTP("%s %q is not the host asked for, %s", what, bounded(a), t.Host)
	}
	return nil
}

// checkForwarded checks the host= parameters of a Forwarded field (RFC
// 7239): each must name the target. The field is read as a list of
// elements of ';'-separated pairs whose values are tokens or quoted
// strings; one that is not is refused, as it may hide a host= from this
// reading and not from a server's.
func checkForwarded(v string, t Target) error {
	for len(v) > 0 {
		// One pair: a name, '=', a token or a quoted string.
		v = strings.TrimLeft(v, " \t")
		eq := strings.IndexByte(v, '=')
		if eq <= 0 || !isToken(v[:eq]) {
			return refuseHTTP("a Forwarded field %q that is not a list of name=value pairs", bounded(v))
		}
		name := v[:eq]
		v = v[eq+1:]
		var value string
		if strings.HasPrefix(v, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(v) && v[i] != '"'; i++ {
				if v[i] == '\\' && i+1 < len(v) {
					i++
				}
				b.WriteByte(v[i])
			}
			if i == len(v) {
				return refuseHTTP("a Forwarded field with an unclosed quoted string")
			}
			value, v = b.String(), v[i+1:]
		} else {
			end := strings.IndexAny(v, ";, \t")
			if end < 0 {
				end = len(v)
			}
			value, v = v[:end], v[end:]
			if !isToken(value) && !strings.EqualFold(name, "host") {
				return refuseHTTP("a Forwarded field %q that is not a list of name=value pairs", bounded(value))
			}
		}
		if strings.EqualFold(name, "host") {
			if err := checkAuthority(value, t, "Forwarded host"); err != nil {
				return err
			}
		}
		v = strings.TrimLeft(v, " \t")
		if v != "" {
			if v[0] != ';' && v[0] != ',' {
				return refuseHTTP("a Forwarded field with %q between its pairs", bounded(v))
			}
			v = v[1:]
		}
	}
	return nil
}

// chunkSize reads a chunk-size line: hexadecimal digits, then chunk
// extensions of token characters alone (";name" or ";name=value").
func chunkSize(line []byte) (int64, error) {
	s := string(line[:len(line)-2])
	size, ext, _ := strings.Cut(s, ";")
	if size == "" || len(size) > 15 || strings.Trim(size, "0123456789abcdefABCDEF") != "" {
		return 0, refuseHTTP("a malformed chunk size")
	}
	if strings.Contains(s, ";") {
		for _, e := range strings.Split(ext, ";") {
			n, v, hasV := strings.Cut(e, "=")
			if n == "" || !isToken(n) || hasV && (v == "" || !isToken(v)) {
				return 0, refuseHTTP("a chunk extension of other than token characters")
			}
		}
	}
	n, err := strconv.ParseInt(size, 16, 64)
	if err != nil {
		return 0, refuseHTTP("a malformed chunk size")
	}
	return n, nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return s != ""
}

// isTokenChar reports tchar (RFC 9110, 5.6.2).
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
