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
