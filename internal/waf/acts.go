package waf

import (
	"reflect"
	"runtime"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// What the gate knows of Coraza's transformations (gateNode): the bytes a
// transformation acts on, and the bytes it needs to report a change.
// TestGateTransformationActs checks both against the functions.

// removeWhitespaceActs are the bytes Coraza's removeWhitespace acts on:
// it maps each rune through unicode.IsSpace, which in ASCII holds only
// these six, and strings.Map returns a string none of whose runes it
// changed as it was. Every byte past ASCII is among them (a rune past
// ASCII, U+0085 and U+00A0 among them, or invalid UTF-8, which
// strings.Map rewrites).
var removeWhitespaceActs = byteSetOf("\t\n\v\f\r ", 0x80, 0xff)

// removeWhitespaceChanges are the bytes removeWhitespace needs to report
// a change, which it does when it drops a rune unicode.IsSpace holds: the
// six ASCII spaces, and the first bytes of the others' UTF-8 (U+0085 and
// U+00A0: C2; U+1680: E1; U+2000-U+200A, U+2028, U+2029, U+202F,
// U+205F: E2; U+3000: E3). An invalid byte it rewrites as U+FFFD, which
// is no space, without reporting it.
var removeWhitespaceChanges = byteSetOf("\t\n\v\f\r \xc2\xe1\xe2\xe3", 0, -1)

// replaceCommentsActs: replaceComments changes only what follows a "/*",
// and returns a copy of any other value, reporting no change.
var replaceCommentsActs = byteSetOf("*", 0, -1)

// removeCommentsCharActs: removeCommentsChar drops "/*", "*/", "<!--",
// "-->", "--" and "#", and copies every other byte: each of those holds
// a '*', a '-' or a '#'.
var removeCommentsCharActs = byteSetOf("*-#", 0, -1)

// The bytes Coraza's decoding and normalising transformations act on;
// on a value holding none of them each returns the value itself,
// reporting no change, so these are also the bytes they need to report
// one:
//
//   - urlDecodeUni: an escape's "%" or a "+";
//   - jsDecode and cssDecode: a "\\";
//   - htmlEntityDecode: html.UnescapeString, a "&";
//   - removeNulls: a NUL;
//   - utf8toUnicode: a rune past ASCII, or an invalid byte (read as
//     U+FFFD): any byte past ASCII;
//   - lowercase: strings.ToLower, an upper-case ASCII letter or a byte
//     past ASCII;
//   - compressWhitespace: the six ASCII spaces, U+0085 and U+00A0 (C2
//     and a byte past ASCII) or a raw A0: any byte past ASCII;
//   - cmdLine: what needsTransform names: an upper-case ASCII letter or
//     one of the punctuation and spaces it deletes, replaces or moves;
//   - normalizePath: filepath.Clean changes a name only at a "/" or a
//     "."; it keeps the empty value as it is, and a trailing "/" needs one;
//   - normalizePathWin: normalizePath after "\\" is "/", and then the
//     Windows cuts: a ":" (a drive or a data stream) and a trailing "." or
//     " " of a segment;
//   - moatDecodeEvasions: what its own first test looks for ("%", ".",
//     "\\", "/", a byte past ASCII, "0x").
var (
	urlDecodeUniActs       = byteSetOf("%+", 0, -1)
	backslashActs          = byteSetOf("\\", 0, -1)
	ampersandActs          = byteSetOf("&", 0, -1)
	nulActs                = byteSetOf("\x00", 0, -1)
	pastASCIIActs          = byteSetOf("", 0x80, 0xff)
	lowercaseActs          = byteSetOf("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 0x80, 0xff)
	compressWhitespaceActs = byteSetOf("\t\n\v\f\r ", 0x80, 0xff)
	cmdLineActs            = byteSetOf("ABCDEFGHIJKLMNOPQRSTUVWXYZ\"'\\^ ,;\t\r\n/(", 0, -1)
	normalisePathActs      = byteSetOf("/.", 0, -1)
	normalisePathWinActs   = byteSetOf("\\/.: ", 0, -1)
	decodeEvasionsActs     = byteSetOf("%.\\/0", 0x80, 0xff)
)

// byteSetOf is the bytes of s and those from lo to hi.
func byteSetOf(s string, lo, hi int) *byteSet {
	var b byteSet
	for i := 0; i < len(s); i++ {
		b.add(s[i])
	}
	for c := lo; c <= hi; c++ {
		b.add(byte(c))
	}
	return &b
}

// transformationActs are the transformations whose bytes the gate knows,
// by their function's name: acts (gateNode.acts) and changes
// (gateNode.changes).
var transformationActs = map[string]struct{ acts, changes *byteSet }{
	corazaTransformations + "removeWhitespace":   {removeWhitespaceActs, removeWhitespaceChanges},
	corazaTransformations + "replaceComments":    {replaceCommentsActs, replaceCommentsActs},
	corazaTransformations + "removeCommentsChar": {removeCommentsCharActs, removeCommentsCharActs},
	corazaTransformations + "urlDecodeUni":       {urlDecodeUniActs, urlDecodeUniActs},
	corazaTransformations + "jsDecode":           {backslashActs, backslashActs},
	corazaTransformations + "cssDecode":          {backslashActs, backslashActs},
	corazaTransformations + "htmlEntityDecode":   {ampersandActs, ampersandActs},
	corazaTransformations + "removeNulls":        {nulActs, nulActs},
	corazaTransformations + "utf8ToUnicode":      {pastASCIIActs, pastASCIIActs},
	corazaTransformations + "lowerCase":          {lowercaseActs, lowercaseActs},
	corazaTransformations + "compressWhitespace": {compressWhitespaceActs, compressWhitespaceActs},
	corazaTransformations + "cmdLine":            {cmdLineActs, cmdLineActs},
	corazaTransformations + "normalisePath":      {normalisePathActs, normalisePathActs},
	corazaTransformations + "normalisePathWin":   {normalisePathWinActs, normalisePathWinActs},
	"moat/internal/waf.decodeEvasions":           {decodeEvasionsActs, decodeEvasionsActs},
}

func transformationName(t plugintypes.Transformation) string {
	if f := runtime.FuncForPC(reflect.ValueOf(t).Pointer()); f != nil {
		return f.Name()
	}
	return ""
}

// actsOf is the bytes transformation t acts on (gateNode.acts).
func actsOf(t plugintypes.Transformation) *byteSet {
	return transformationActs[transformationName(t)].acts
}

// changesOf is the bytes t needs to report a change (gateNode.changes).
func changesOf(t plugintypes.Transformation) *byteSet {
	return transformationActs[transformationName(t)].changes
}
