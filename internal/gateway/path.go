package gateway

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// How a route treats an encoded path separator (%2F, %5C, or a raw "\",
// which some servers take for "/"): the route's encoded_slashes.
const (
	// slashDecode makes it a "/" like any other, for routing, the WAF and
	// the backend alike. The default.
	slashDecode = "decode"
	// slashKeep forwards it encoded, for backends whose paths carry
	// encoded names ("/projects/group%2Frepo"); dot segments are resolved
	// on real slashes only. The request is still refused when a backend
	// decoding the separator would pick another route.
	slashKeep = "keep"
	// slashRefuse answers 400 to any path holding one.
	slashRefuse = "refuse"
)

var (
	errPathForm       = errors.New("path does not start with \"/\" or has a malformed escape")
	errPathAboveRoot  = errors.New("path climbs above the root")
	errPathDotParams  = errors.New("dot segment with parameters (\"..;\")")
	errPathNUL        = errors.New("path holds a NUL byte")
	errPathEncodedSep = errors.New("path holds an encoded separator")
	errPathOverlong   = errors.New("path holds an overlong UTF-8 sequence")
	errTargetForm     = errors.New("HTTP/2 :path is not origin-form")
	errTargetHost     = errors.New("HTTP/2 host header disagrees with :authority")
)

// checkH2Target refuses an HTTP/2 request whose target two readers would
// take to different places (RFC 9113 section 8.3.1): a :path that is not
// origin-form (an absolute URI names a scheme and host beside
// :authority's; "*" is for OPTIONS alone), or a host header other than
// :authority. The gateway routes on :authority; the service, a log or
// an intermediary reading the other would take the request to another
// host. A host header that agrees is dropped, so that the WAF sees the
// host once.
func checkH2Target(r *http.Request) error {
	if r.ProtoMajor != 2 || r.Method == http.MethodConnect {
		return nil
	}
	if !strings.HasPrefix(r.RequestURI, "/") && (r.RequestURI != "*" || r.Method != http.MethodOptions) {
		return errTargetForm
	}
	if hs, ok := r.Header["Host"]; ok {
		if len(hs) != 1 || !strings.EqualFold(hs[0], r.Host) {
			return errTargetHost
		}
		delete(r.Header, "Host")
	}
	return nil
}

// normalizePath returns the normal form of an escaped request path, the one
// form the gateway routes on, shows the WAF and forwards:
//
//   - escapes of unreserved characters (RFC 3986 section 2.3) are decoded,
//     every other escape is kept with upper-case hex (section 6.2.2.1),
//     and bytes outside RFC 3986's pchar set are escaped;
//   - encoded separators are handled as slashes says;
//   - runs of "/" become one;
//   - "." and ".." segments are removed as in section 5.2.4.
//
// It refuses what a backend might read in a way it cannot foresee: a ".."
// above the root (nginx answers 400 too), a dot segment carrying
// parameters ("..;/", which Tomcat reads as ".."), a NUL byte, an overlong
// UTF-8 sequence ("%C0%AE", which decoders that accept it read as "."),
// and, when slashes is slashRefuse, any encoded separator.
func normalizePath(escaped, slashes string) (string, error) {
	if escaped == "" {
		return "/", nil
	}
	if inNormalForm(escaped) {
		return escaped, nil // most paths: nothing to decode, escape or remove
	}
	return normalizeSegments(escaped, slashes)
}

// inNormalForm reports, without allocating, whether path is its own normal
// form by a test that errs only towards "no": every byte raw, unreserved
// or pchar (no escape, no "\"), no empty segment but a trailing one, and
// no segment starting with "." (which covers the dot segments and their
// parameters).
func inNormalForm(path string) bool {
	if path == "" || path[0] != '/' {
		return false
	}
	for i := 1; i < len(path); i++ {
		c := path[i]
		if c == '/' {
			if path[i-1] == '/' {
				return false
			}
			continue
		}
		if c == '.' && path[i-1] == '/' || !unreserved(c) && !pchar(c) {
			return false
		}
	}
	return true
}

// normalizeSegments is normalizePath for a path not already in normal
// form.
func normalizeSegments(escaped, slashes string) (string, error) {
	if escaped[0] != '/' {
		return "", errPathForm
	}
	// Decode into segments. A separator decoded from an escape splits
	// segments unless it is kept, in which case it stays inside one.
	var segs []string
	var seg strings.Builder
	for i := 1; i <= len(escaped); i++ {
		if i == len(escaped) || escaped[i] == '/' {
			segs = append(segs, seg.String())
			seg.Reset()
			continue
		}
		c := escaped[i]
		encoded := false
		if c == '%' {
			if i+2 >= len(escaped) {
				return "", errPathForm
			}
			hi, ok1 := unhex(escaped[i+1])
			lo, ok2 := unhex(escaped[i+2])
			if !ok1 || !ok2 {
				return "", errPathForm
			}
			c, encoded = hi<<4|lo, true
			i += 2
		}
		switch {
		case c == 0:
			return "", errPathNUL
		case c == '/' && encoded, c == '\\':
			switch slashes {
			case slashRefuse:
				return "", errPathEncodedSep
			case slashKeep:
				if c == '/' {
					seg.WriteString("%2F")
				} else {
					seg.WriteString("%5C")
				}
			default:
				segs = append(segs, seg.String())
				seg.Reset()
			}
		case unreserved(c):
			seg.WriteByte(c)
		case !encoded && pchar(c):
			seg.WriteByte(c)
		default:
			seg.WriteByte('%')
			seg.WriteByte(upperHex[c>>4])
			seg.WriteByte(upperHex[c&15])
		}
	}
	// Remove dot segments and empty ones; remember whether the path ends
	// as a directory.
	var out []string
	dir := false
	for i, s := range segs {
		last := i == len(segs)-1
		switch {
		case s == "" || s == ".":
			dir = last
		case s == "..":
			if len(out) == 0 {
				return "", errPathAboveRoot
			}
			out = out[:len(out)-1]
			dir = last
		case strings.HasPrefix(s, ".;") || strings.HasPrefix(s, "..;"):
			return "", errPathDotParams
		default:
			out = append(out, s)
			dir = false
		}
	}
	p := "/" + strings.Join(out, "/")
	if dir && len(out) > 0 {
		p += "/"
	}
	if overlong(p) {
		return "", errPathOverlong
	}
	return p, nil
}

// trimSegmentEnds returns path, in normal form, with each segment read as
// Windows reads a file name and older Spring MVC a path token: IIS (and
// any server mapping paths onto a Windows file system) drops a segment's
// trailing dots and spaces ("/admin./users" and "/admin%20/users" are
// /admin/users), and Spring's AntPathMatcher with trimTokens (the default
// before 4.3.1) trims whitespace at both ends. A segment that is a dot
// segment once its whitespace is gone ("..%20") stays one. The result may
// hold empty or dot segments; it is normalised again before use.
func trimSegmentEnds(path string) string {
	if !strings.Contains(path, "./") && !strings.HasSuffix(path, ".") && !strings.Contains(path, "%0") && !strings.Contains(path, "%20") {
		return path // nothing to trim: most paths
	}
	segs := strings.Split(path, "/")
	for i, s := range segs {
		s = trimEscapedSpace(s)
		if s != "." && s != ".." {
			for strings.HasSuffix(s, ".") {
				s = trimEscapedSpace(strings.TrimSuffix(s, "."))
			}
		}
		segs[i] = s
	}
	return strings.Join(segs, "/")
}

// trimEscapedSpace drops the escaped whitespace (tab, line feed, vertical
// tab, form feed, carriage return, space) at both ends of a segment in
// normal form, where every such byte is escaped.
func trimEscapedSpace(s string) string {
	space := func(e string) bool {
		switch e {
		case "%09", "%0A", "%0B", "%0C", "%0D", "%20":
			return true
		}
		return false
	}
	for len(s) >= 3 && space(s[:3]) {
		s = s[3:]
	}
	for len(s) >= 3 && space(s[len(s)-3:]) {
		s = s[:len(s)-3]
	}
	return s
}

// overlong reports whether p, in normal form (every byte above 0x7F
// escaped, upper-case hex), holds a lead byte that only begins an overlong
// UTF-8 sequence: C0 or C1, E0 followed by 80-9F, F0 followed by 80-8F.
// No valid UTF-8 holds one; decoders that accept them (IIS, Tomcat before
// 6.0.18) read "%C0%AE" as "." and "%C0%AF" as "/".
func overlong(p string) bool {
	for i := strings.Index(p, "%"); i >= 0 && i+3 <= len(p); {
		switch esc := p[i+1 : i+3]; {
		case esc == "C0", esc == "C1":
			return true
		case esc == "E0" || esc == "F0":
			if i+6 <= len(p) && p[i+3] == '%' {
				next := p[i+4]
				if next == '8' || (esc == "E0" && next == '9') {
					return true
				}
			}
		}
		j := strings.Index(p[i+1:], "%")
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

const upperHex = "0123456789ABCDEF"

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// unreserved is RFC 3986's unreserved set: never needs an escape.
func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// pchar is RFC 3986's pchar less the escapes and the unreserved set: the
// sub-delims, ":" and "@", which mean something when written raw and so
// keep their escaped or raw form.
func pchar(c byte) bool {
	return strings.IndexByte("!$&'()*+,;=:@", c) >= 0
}

// validPort reports whether p is a port as clients write one: a decimal
// number from 1 to 65535 without sign or leading zeros. Anything else
// ("abc", "+443", "99999") would reach the service in its Host and
// X-Forwarded-Host, and the links and redirects it builds from them,
// while the gateway, routing on the name alone, never looked at it.
func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535 && strconv.Itoa(n) == p
}

// normalizeHost returns the host a request names, in the form routes are
// matched against: lower case, without a port, brackets or the trailing
// dot of a fully qualified name ("Shop.Example.org.:443" is
// "shop.example.org"). ok is false for what is not a DNS name or an IP
// literal, and for a port that is not a number (validPort). An empty
// host stays empty (HTTP/1.0 without Host).
func normalizeHost(hostport string) (host string, ok bool) {
	h := hostport
	// (A name without ":" has no port and is no IPv6 literal: most
	// requests' hosts are read without SplitHostPort's and ParseAddr's
	// errors, each an allocation.)
	if strings.IndexByte(hostport, ':') < 0 {
		if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
			h = h[1 : len(h)-1]
		}
	} else if sh, port, err := net.SplitHostPort(hostport); err == nil {
		if port != "" && !validPort(port) {
			return "", false
		}
		h = sh
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	if h == "" {
		return "", hostport == ""
	}
	if strings.Trim(h, "0123456789.") == "" || strings.IndexByte(h, ':') >= 0 {
		// Only these can be IP literals.
		if a, err := netip.ParseAddr(h); err == nil {
			if a.Zone() != "" {
				return "", false
			}
			return a.Unmap().String(), true
		}
	}
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if len(h) == 0 || len(h) > 253 {
		return "", false
	}
	for rest := h; ; {
		label, after, more := strings.Cut(rest, ".")
		if label == "" || len(label) > 63 {
			return "", false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return "", false
			}
		}
		if !more {
			return h, true
		}
		rest = after
	}
}
