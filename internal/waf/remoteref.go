package waf

import (
	"encoding/base64"
	"net/url"
	"strings"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// Remote and wrapped file references. A value that an application opens
// as a file (an include, a template, a download, an image to resize) is
// an attack when the whole value names something other than a file of
// the application's own:
//
//   - a UNC path to another host ("\\attacker.example\share\x.php",
//     "\\10.0.0.5\public\a", WebDAV's "\\host@SSL\DavWWWRoot\x") or a
//     Windows device path ("\\?\C:\…", "\\.\C:\…", "\\?\UNC\host\…"): a
//     Windows server opens the share, runs or serves what is there, and
//     hands the host its credentials (NTLM) on the way;
//   - a file URL to another host ("file://attacker.example/share/x"),
//     which is the same UNC path;
//   - a stream wrapper of PHP ("php://filter/…/resource=index.php",
//     "phar://…", "zip://…#x.php", "compress.zlib://…", "expect://id",
//     "glob://…", "data://text/plain;base64,…"): the file functions read
//     the source of a script, run a command, unpack an archive or take
//     the attacker's text as the file;
//   - a data URL whose content is PHP, or whose type is text or PHP
//     ("data:text/plain,<?php …"), which PHP's file functions open as a
//     file: an image in a data URL ("data:image/png;base64,…") is what
//     avatar and editor uploads send and is no reference;
//
// The value must be the reference, from its first byte (after white
// space): prose that mentions "php://input" or a share is no reference.

// maxRefLen bounds what refScore reads of a value.
const maxRefLen = 4096

// refNeed: a value refScore or fileRefScore finds a reference holds one
// of these bytes (a path's separator, a scheme's ':'), which lets the
// gate decide most values without them.
const refNeed = `\/:`

// phpWrappers are the stream wrappers PHP's file functions open (with
// the extensions that add them), written as they precede "://".
var phpWrappers = []string{
	"php", "phar", "zip", "compress.zlib", "compress.bzip2", "zlib", "bzip2", "glob", "expect",
	"data", "ogg", "rar", "ssh2.shell", "ssh2.exec", "ssh2.tunnel", "ssh2.sftp", "ssh2.scp",
}

// refScore judges a value: scoreAttack when the whole value is a remote
// or wrapped file reference (see above), scoreNone otherwise.
func refScore(v string) int {
	if len(v) > maxRefLen {
		v = v[:maxRefLen]
	}
	v = strings.TrimLeft(v, " \t\r\n\"'")
	if len(v) < 4 {
		return scoreNone
	}
	switch {
	case uncPath(v), wrapperRef(v), dataRef(v), fileURLToHost(v):
		return scoreAttack
	}
	return scoreNone
}

// fileRefScore judges the value of a parameter named as a file is
// (rule 90025): refScore, and also a share written with forward slashes
// ("//attacker.example/share/x.php"), which Windows opens as the UNC path
// it is and an application that prefixes a scheme fetches. Elsewhere the
// same value is a scheme-relative link ("//cdn.example.net/a.png").
func fileRefScore(v string) int {
	if refScore(v) == scoreAttack {
		return scoreAttack
	}
	if len(v) > maxRefLen {
		v = v[:maxRefLen]
	}
	v = strings.TrimLeft(v, " \t\r\n\"'")
	if strings.HasPrefix(v, "//") && uncPath(`\\`+v[2:]) {
		return scoreAttack
	}
	return scoreNone
}

// isSep reports whether c separates a Windows path's parts.
func isSep(c byte) bool { return c == '\\' || c == '/' }

// uncPath reports whether v is a UNC path ("\\host\share…", with any
// run of separators of which the first is a backslash) or a Windows
// device path ("\\?\…", "\\.\…", "//?/…", "//./…").
func uncPath(v string) bool {
	if len(v) < 4 || !isSep(v[0]) || !isSep(v[1]) {
		return false
	}
	if (v[2] == '?' || v[2] == '.') && isSep(v[3]) {
		return true
	}
	if v[0] != '\\' && v[1] != '\\' {
		// "//host/share" is a scheme-relative URL: see
		// schemeRelativeScript.
		return false
	}
	i := 2
	for i < len(v) && isSep(v[i]) {
		i++
	}
	host := i
	for i < len(v) && (isAlnum(v[i]) || strings.IndexByte(".-_@:[]", v[i]) >= 0) {
		i++
	}
	if i == host || i == len(v) || !isSep(v[i]) {
		return false
	}
	for i < len(v) && isSep(v[i]) {
		i++
	}
	// A share's name: a byte no separator, space or quote.
	return i < len(v) && !isSep(v[i]) && strings.IndexByte(" \t\r\n\"'<>|*?", v[i]) < 0
}

// wrapperRef reports whether v opens with a PHP stream wrapper's
// "name://" (any case, as PHP reads it).
func wrapperRef(v string) bool {
	i := strings.Index(v, "://")
	if i <= 0 || i > 16 {
		return false
	}
	scheme := strings.ToLower(v[:i])
	for _, w := range phpWrappers {
		if scheme == w {
			return true
		}
	}
	return false
}

// dataRef reports whether v is a data URL that PHP's file functions would
// open as a script's text: one whose content holds PHP's open tag, or
// whose media type is absent, text/plain or PHP's.
func dataRef(v string) bool {
	if len(v) < 5 || !strings.EqualFold(v[:5], "data:") {
		return false
	}
	meta, content, ok := strings.Cut(v[5:], ",")
	if !ok {
		return false
	}
	meta = strings.ToLower(meta)
	mediaType, _, _ := strings.Cut(meta, ";")
	switch mediaType {
	case "", "text/plain", "application/x-httpd-php", "application/php", "text/php", "text/x-php", "application/x-php":
		return true
	}
	text := content
	if strings.HasSuffix(meta, ";base64") {
		if b, err := base64.StdEncoding.DecodeString(strings.TrimRight(content, "=") + strings.Repeat("=", (4-len(strings.TrimRight(content, "="))%4)%4)); err == nil {
			text = string(b)
		}
	} else if u, err := url.PathUnescape(content); err == nil {
		text = u
	}
	return strings.Contains(text, "<?php") || strings.Contains(text, "<?=")
}

// fileURLToHost reports whether v is a file URL naming a host other than
// the local one ("file://attacker.example/share/x"): a UNC path.
func fileURLToHost(v string) bool {
	if len(v) < 8 || !strings.EqualFold(v[:7], "file://") {
		return false
	}
	rest := v[7:]
	end := strings.IndexAny(rest, "/\\?#")
	if end < 0 {
		end = len(rest)
	}
	host := strings.ToLower(rest[:end])
	for i := 0; i < len(host); i++ {
		if !isAlnum(host[i]) && strings.IndexByte(".-_@:[]%", host[i]) < 0 {
			return false // "file:// URLs are…": words, no host
		}
	}
	return host != "" && host != "localhost" && host != "127.0.0.1" && host != "[::1]"
}

// refInPath returns the rest of a decoded request path from the first
// segment that opens a remote or wrapped reference
// ("/view/php://filter/resource=index.php" gives
// "php://filter/resource=index.php"), as a catch-all route parameter hands
// it over.
func refInPath(p string) (string, bool) {
	if len(p) > maxRefLen {
		p = p[:maxRefLen]
	}
	for i := 0; i < len(p); i++ {
		if p[i] != '/' || i+1 >= len(p) || p[i+1] == '/' {
			continue
		}
		if refScore(p[i+1:]) == scoreAttack {
			return p[i+1:], true
		}
	}
	return "", false
}

// Headers that name the host a request was for, and headers that
// override its URL. An edge gateway's client sets none of them; proxies
// in front of it set them to a host and port, and a path that is the
// request's own. A value of another shape is host-header injection
// (password-reset links, cache keys, redirects built from it) or a URL
// override that reaches a route the gateway's rules did not see.
var (
	hostHeaders = map[string]bool{
		"x-forwarded-host": true, "x-host": true, "x-forwarded-server": true, "x-original-host": true,
		"x-http-host-override": true,
	}
	overrideHeaders = map[string]bool{
		"x-original-url": true, "x-rewrite-url": true, "x-forwarded-uri": true, "x-original-uri": true,
		"x-forwarded-path": true, "x-http-destinationurl": true, "x-http-destination-url": true,
	}
	// prefixHeaders hold a path prefix the proxy strips: a path, no URL.
	prefixHeaders = map[string]bool{"x-forwarded-prefix": true}
)

// hostList reports whether v is a list of hosts, each a name or an
// address with an optional port, as proxies write X-Forwarded-Host.
func hostList(v string) bool {
	for part := range strings.SplitSeq(v, ",") {
		h := strings.TrimSpace(part)
		if h == "" {
			return false
		}
		for i := 0; i < len(h); i++ {
			if !isAlnum(h[i]) && strings.IndexByte(".-_:[]", h[i]) < 0 {
				return false
			}
		}
	}
	return true
}

// forwardedHostsOK reports whether every host= of an RFC 7239 Forwarded
// header is a host.
func forwardedHostsOK(v string) bool {
	for elem := range strings.SplitSeq(v, ",") {
		for pair := range strings.SplitSeq(elem, ";") {
			k, val, _ := strings.Cut(strings.TrimSpace(pair), "=")
			if !strings.EqualFold(k, "host") {
				continue
			}
			if !hostList(strings.Trim(val, "\"")) {
				return false
			}
		}
	}
	return true
}

// overrideOK reports whether v, a URL-override header's value, names the
// request's own path (target is the request target as sent).
func overrideOK(v, target string) bool {
	own, _, _ := strings.Cut(target, "?")
	p, _, _ := strings.Cut(v, "?")
	return p == own || p == "" && own == "/"
}

// proxyHeaderWhy returns why a host or URL-override header of a request
// with the given target is an injection, or "" when none is.
func proxyHeaderWhy(name, v, target string) string {
	// Every header read below is named X-… or Forwarded: any other
	// name is not lower-cased (an allocation per header and request).
	if !(len(name) > 2 && name[0]|0x20 == 'x' && name[1] == '-') && !strings.EqualFold(name, "forwarded") {
		return ""
	}
	name = strings.ToLower(name)
	switch {
	case hostHeaders[name]:
		if strings.TrimSpace(v) != "" && !hostList(v) {
			return name + " is no host"
		}
	case name == "forwarded":
		if !forwardedHostsOK(v) {
			return "forwarded names a host that is no host"
		}
	case overrideHeaders[name]:
		if !overrideOK(v, target) {
			return name + " overrides the request's path"
		}
	case prefixHeaders[name]:
		if !strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//") || strings.ContainsAny(v, "\\?#") || hasDotSegment(v) {
			return name + " is no path prefix"
		}
	case name == "x-forwarded-proto" || name == "x-forwarded-scheme":
		for part := range strings.SplitSeq(v, ",") {
			if p := strings.TrimSpace(part); p == "" || !urlScheme(p) {
				return name + " is no scheme"
			}
		}
	case name == "x-forwarded-port":
		for part := range strings.SplitSeq(v, ",") {
			p := strings.TrimSpace(part)
			if p == "" || len(p) > 5 || strings.TrimLeft(p, "0123456789") != "" {
				return name + " is no port"
			}
		}
	case name == "x-forwarded-for" && (strings.Contains(v, "://") || strings.ContainsAny(v, "/\\")):
		// Address lists hold neither; what else a client sends there
		// the inspection pass reads as a custom header's value.
		return name + " holds a URL or a path"
	case strings.HasPrefix(name, "x-forwarded-") && absoluteRef(v):
		return name + " holds a URL or a share"
	}
	return ""
}

// absoluteRef reports whether v opens with a URL's scheme and "://", a
// scheme-relative "//" or a UNC path.
func absoluteRef(v string) bool {
	if strings.HasPrefix(v, "//") || strings.HasPrefix(v, `\\`) {
		return true
	}
	i := strings.Index(v, "://")
	return i > 0 && i < 16 && urlScheme(v[:i])
}

// proxyHeaderOp is the moatProxyHeader operator, evaluated once per
// request (on REQUEST_METHOD): it matches when a header that names the
// request's host or overrides its URL holds something else (see
// proxyHeaderWhy), capturing why.
type proxyHeaderOp struct{}

func newProxyHeaderOp(plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	return proxyHeaderOp{}, nil
}

func (proxyHeaderOp) Evaluate(tx plugintypes.TransactionState, _ string) bool {
	if tx == nil {
		return false
	}
	v := tx.Variables()
	target := v.RequestURIRaw().Get()
	if i := strings.Index(target, "://"); i >= 0 && i < 16 && !strings.HasPrefix(target, "/") {
		// An absolute-form target: its path.
		target = target[i+3:]
		if j := strings.IndexByte(target, '/'); j >= 0 {
			target = target[j:]
		} else {
			target = "/"
		}
	}
	for _, md := range v.RequestHeaders().FindAll() {
		if why := proxyHeaderWhy(md.Key(), md.Value(), target); why != "" {
			capture(tx, why)
			return true
		}
	}
	return false
}
