package waf

import (
	"bytes"
	"io"
	"os"
	"strings"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// Uploads. A file upload is judged by what it holds as well as by what
// it is called: programs (ELF, PE, Mach-O, Java classes) and server-side
// scripts (PHP, JSP, ASP, CGI with a #! line, server-side includes) that
// a web server would run, and HTML or SVG documents carrying script that a
// browser would run from the site's origin. Such content is refused on a
// route that does not take executable uploads (Exclusions.
// ExecutableUploads), and on every route when the file claims to be
// something else (a PHP script named cat.png or sent as image/png): a
// disguise is an attack wherever it is sent.

// TX variable set on routes that take executable uploads.
const txExecutableUploads = "moat_executable_uploads"

// uploadHead is how much of each file is read to judge it.
const uploadHead = 64 << 10

// uploadKind is what a file's bytes are.
type uploadKind int

const (
	uploadData       uploadKind = iota // anything else
	uploadProgram                      // a native or JVM program
	uploadScript                       // server-side script
	uploadActiveHTML                   // HTML or SVG with script
)

// classifyUpload reads what a file's first bytes make it.
func classifyUpload(head []byte) uploadKind {
	switch {
	case bytes.HasPrefix(head, []byte("\x7fELF")),
		bytes.HasPrefix(head, []byte("MZ")) && len(head) > 0x40,
		bytes.HasPrefix(head, []byte{0xfe, 0xed, 0xfa, 0xce}), bytes.HasPrefix(head, []byte{0xfe, 0xed, 0xfa, 0xcf}),
		bytes.HasPrefix(head, []byte{0xce, 0xfa, 0xed, 0xfe}), bytes.HasPrefix(head, []byte{0xcf, 0xfa, 0xed, 0xfe}),
		bytes.HasPrefix(head, []byte{0xca, 0xfe, 0xba, 0xbe}):
		return uploadProgram
	case bytes.HasPrefix(head, []byte("#!")):
		return uploadScript
	}
	lower := bytes.ToLower(head)
	// PHP runs from "<?php" or "<?=" anywhere in the file: polyglots put it
	// after an image header ("GIF89a<?php").
	if bytes.Contains(lower, []byte("<?php")) || bytes.Contains(lower, []byte("<?=")) ||
		bytes.Contains(lower, []byte("<!--#exec")) || bytes.Contains(lower, []byte("<script runat=")) || phpInText(lower) {
		return uploadScript
	}
	if printableText(bytes.ToValidUTF8(head, nil)) {
		// JSP and ASP only in text: "<%" is two bytes a binary file holds
		// by chance.
		if bytes.Contains(lower, []byte("<%@")) || bytes.Contains(lower, []byte("<%=")) || bytes.Contains(lower, []byte("<% ")) || serverPageCodeRx.Match(lower) ||
			bytes.Contains(lower, []byte("<jsp:")) || bytes.HasPrefix(bytes.TrimSpace(lower), []byte("<?")) && bytes.Contains(lower, []byte("system(")) {
			return uploadScript
		}
		if (bytes.Contains(lower, []byte("<html")) || bytes.Contains(lower, []byte("<svg")) || bytes.Contains(lower, []byte("<!doctype"))) &&
			xssScore(string(head)) == scoreAttack {
			return uploadActiveHTML
		}
	}
	return uploadData
}

// serverScriptExt are extensions web servers run, or that are programs.
var serverScriptExt = map[string]bool{
	".php": true, ".php3": true, ".php4": true, ".php5": true, ".php7": true, ".php8": true, ".phtml": true,
	".phar": true, ".pht": true, ".phps": true, ".jsp": true, ".jspx": true, ".jsw": true, ".jsv": true,
	".asp": true, ".aspx": true, ".ashx": true, ".asmx": true, ".asa": true, ".cer": true, ".cfm": true,
	".cgi": true, ".pl": true, ".shtml": true, ".stm": true, ".htaccess": true, ".exe": true, ".dll": true,
	".so": true, ".sh": true, ".bat": true, ".cmd": true, ".ps1": true, ".vbs": true, ".war": true, ".jar": true,
}

// activeDocExt are extensions of documents a browser runs script from;
// their content decides.
var activeDocExt = map[string]bool{".html": true, ".htm": true, ".svg": true, ".xhtml": true, ".xml": true}

// declaredPage reports whether a file's name or declared type makes it a
// page a browser renders (HTML, XHTML, SVG), whatever its bytes start
// with.
func declaredPage(name, ctype string) bool {
	ext := uploadExt(name)
	ct := strings.ToLower(strings.TrimSpace(ctype))
	return ext == ".html" || ext == ".htm" || ext == ".xhtml" || ext == ".svg" ||
		strings.HasPrefix(ct, "text/html") || strings.HasPrefix(ct, "application/xhtml+xml") || strings.HasPrefix(ct, "image/svg+xml")
}

// activeFragment reports whether text holds script a browser runs, with
// no document markers: a file declared a page is rendered as one, so an
// HTML fragment ("<img src=x onerror=…>") runs as a whole page would.
func activeFragment(head []byte) bool {
	return printableText(bytes.ToValidUTF8(head, nil)) && xssScore(string(head)) == scoreAttack
}

// claimsInert reports whether a file's name or declared type says it is
// data (an image, a document, an archive, text) rather than a program or
// a page.
func claimsInert(name, ctype string) bool {
	ext := uploadExt(name)
	ct := strings.ToLower(ctype)
	if serverScriptExt[ext] || activeDocExt[ext] {
		return false
	}
	if ext != "" {
		return true
	}
	return strings.HasPrefix(ct, "image/") || strings.HasPrefix(ct, "audio/") || strings.HasPrefix(ct, "video/") ||
		strings.HasPrefix(ct, "text/plain") || strings.HasPrefix(ct, "application/pdf") || strings.HasPrefix(ct, "application/zip")
}

// uploadOp is the moatUpload operator, evaluated once per request (on
// REQUEST_METHOD): it reads every uploaded file Coraza stored and matches
// when one is executable content where it may not be, capturing why.
type uploadOp struct{}

func newUploadOp(plugintypes.OperatorOptions) (plugintypes.Operator, error) { return uploadOp{}, nil }

func (uploadOp) Evaluate(tx plugintypes.TransactionState, _ string) bool {
	if tx == nil {
		return false
	}
	v := tx.Variables()
	tmp := v.FilesTmpNames().Get("")
	if len(tmp) == 0 {
		return false
	}
	allowed := first(v.TX().Get(txExecutableUploads)) == "1"
	names := v.Files().Get("")
	var types []string
	for _, md := range v.MultipartPartHeaders().FindAll() {
		if h, ok := strings.CutPrefix(strings.ToLower(md.Value()), "content-type:"); ok {
			types = append(types, strings.TrimSpace(h))
		}
	}
	for i, f := range tmp {
		head, err := readHead(f)
		if err != nil {
			// A stored file that cannot be read cannot be judged.
			capture(tx, "an uploaded file could not be read back for inspection")
			return true
		}
		name, ctype := "", ""
		if i < len(names) {
			name = names[i]
		}
		if i < len(types) {
			ctype = types[i]
		}
		kind := classifyUpload(head)
		if kind == uploadData && declaredPage(name, ctype) && activeFragment(head) {
			kind = uploadActiveHTML
		}
		if kind == uploadData {
			continue
		}
		switch {
		case claimsInert(name, ctype):
			capture(tx, "executable content in an upload named "+Mask("FILES", name)+" ("+ctype+")")
			return true
		case !allowed:
			capture(tx, "executable content in an upload named "+Mask("FILES", name)+" to a route that takes none")
			return true
		}
	}
	// Names alone: a server script's extension on a route that takes none.
	if !allowed {
		for _, n := range names {
			if serverScriptExt[uploadExt(n)] {
				capture(tx, "an upload named "+Mask("FILES", n)+" to a route that takes no executable files")
				return true
			}
		}
	}
	return false
}

func capture(tx plugintypes.TransactionState, why string) {
	if tx.Capturing() {
		tx.CaptureField(0, why)
	}
}

func readHead(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, uploadHead))
}
