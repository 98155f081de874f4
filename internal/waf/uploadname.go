package waf

import (
	"path"
	"regexp"
	"strings"
)

// uploadExt is the extension a web server acts on in an uploaded file's
// name, lower-cased, past the tricks that hide it from a check of the
// name's last suffix: a trailing slash, backslash, dot or space, which
// Windows and some servers drop ("shell.php/", "shell.php."); an NTFS
// stream ("shell.php::$DATA", "shell.php:x"), which Windows writes to the
// file itself; a directory before the name, in either separator; and
// IIS's ";" ("shell.asp;.jpg"), which ends the name IIS maps to a
// handler.
func uploadExt(name string) string {
	if i := strings.LastIndexAny(strings.TrimRight(name, "/\\. "), "/\\"); i >= 0 {
		name = name[i+1:]
	}
	if i := strings.IndexByte(name, ':'); i >= 0 {
		name = name[:i]
	}
	if i := strings.IndexByte(name, ';'); i >= 0 && serverScriptExt[strings.ToLower(path.Ext(name[:i]))] {
		name = name[:i]
	}
	return strings.ToLower(path.Ext(strings.TrimRight(name, "/\\. ")))
}

var (
	// PHP's script tag, which PHP 5 ran as "<?php".
	phpScriptTagRx = regexp.MustCompile(`<script\s+language\s*=\s*["']?php\b`)
	// A short open tag ("<? system($_GET[0]); ?>") with a statement in
	// it: a call or an assignment to a variable, ended by ";" or "?>".
	phpShortTagRx = regexp.MustCompile(`<\?[\s]+(?:@?[a-z_]\w*\s*\(|\$\w+\s*[=(\[])[^\x00]{0,256}?(?:;|\?>)`)
)

// serverPageCodeRx is a JSP or ASP code block whose code follows "<%"
// with no space ("<%Runtime.getRuntime().exec(…)%>", "<%!String x;%>",
// "<%execute request(\"x\")%>"): a name, and a call, member, index,
// assignment or a statement's end after it or after a second word.
var serverPageCodeRx = regexp.MustCompile(`<%!?\s*[a-z_][\w.]*(?:\s+[a-z_][\w.]*)?\s*[.(=\[;]`)

// phpInText reports whether lower (a file's head, lower-cased) holds PHP
// that runs, opened otherwise than by "<?php" and "<?=".
func phpInText(lower []byte) bool {
	return phpScriptTagRx.Match(lower) || phpShortTagRx.Match(lower)
}
