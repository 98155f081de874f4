package waf

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unsafe"
)

// Serialized objects. A value that is an object graph in a language's
// native serialization, handed to a deserializer, builds whatever classes
// it names and runs their code (gadget chains: Java's, .NET's
// BinaryFormatter, Python's pickle, PHP's unserialize, YAML loaders that
// build objects from tags, Ruby's Marshal). Rule 90018 reads Java's
// stream magic at the start of a value; serializedKind reads the others,
// raw, in Base64 (standard or URL alphabet, as cookies and view states
// carry them) or in hex. What marks an object rather than data is each
// format's own: BinaryFormatter's header record, a pickle's opcode that
// looks a class up by name, PHP's "O:<n>:" object, a YAML tag naming a
// language class, a Marshal stream naming a RubyGems class. A pickle or
// a PHP array of plain values builds nothing and is not one.

// maxSerializedRead bounds what is decoded of a value.
const maxSerializedRead = 16 << 10

var (
	// PHP's serialized object or custom-serialized class: O:8:"stdClass":1:{.
	phpObjectRx = regexp.MustCompile(`(?:^|[;{:])[OC]:\+?\d{1,4}:"[A-Za-z_\\][\w\\]*":\d{1,6}:\{`)
	// YAML tags that make a loader build a language object.
	yamlTagRx = regexp.MustCompile(`(?i)!!(?:python/(?:object|name|module)\b|ruby/(?:object|hash|struct|class|module)\b|(?:java|javax|jdk|sun|com\.sun)\.[\w$]+)|!ruby/(?:object|hash|struct):`)
	// A pickle's GLOBAL opcode, c<module>\n<name>\n, and protocol 0's
	// INST, i<module>\n<name>\n, at the end of a pickle.
	pickleGlobalRx = regexp.MustCompile(`c[A-Za-z_][\w.]*\n[A-Za-z_][\w.]*\n`)
	pickleInstRx   = regexp.MustCompile(`\ni[A-Za-z_][\w.]*\n[A-Za-z_][\w.]*\n\.$`)
)

// serializedKind names the serialization whose object v is, or "".
func serializedKind(v string) string {
	if len(v) > maxSerializedRead {
		v = v[:maxSerializedRead]
	}
	// serializedRaw only reads its bytes: v's own, not a copy of them.
	if k := serializedRaw(unsafe.Slice(unsafe.StringData(v), len(v))); k != "" {
		return k
	}
	if javaStreamInside(v) {
		return "Java serialization"
	}
	t := strings.TrimSpace(v)
	if len(t) < 8 {
		return ""
	}
	// The decodings are read here and not kept: one buffer serves them
	// (t is at most maxSerializedRead long, its decodings shorter).
	bp := serializedBuf.Get().(*[]byte)
	defer serializedBuf.Put(bp)
	if b, ok := decodeBase64Value((*bp)[:0], t); ok {
		*bp = b[:0] // grown, kept for the next
		if k := serializedRaw(b); k != "" {
			return k
		}
	}
	if len(t)%2 == 0 && isHexText(t) {
		tb := unsafe.Slice(unsafe.StringData(t), len(t))
		b := slices.Grow((*bp)[:0], len(t)/2)[:len(t)/2]
		*bp = b
		if n, err := hex.Decode(b, tb); err == nil {
			return serializedRaw(b[:n])
		}
	}
	return ""
}

var serializedBuf = sync.Pool{New: func() any { return new([]byte) }}

// serializedRaw names the serialization whose object b is, or "".
func serializedRaw(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("\x00\x01\x00\x00\x00\xff\xff\xff\xff")):
		return ".NET BinaryFormatter"
	case picklesObject(b):
		return "Python pickle"
	case len(b) > 2 && b[0] == 4 && b[1] == 8 && bytes.Contains(b, []byte("Gem::")):
		return "Ruby Marshal"
	}
	// Each pattern runs only on a value holding a literal every match
	// of it holds: a PHP object's `:"` (before its class name), a YAML
	// tag's "!" followed by "!" or the "r" of "ruby" (either case: no
	// other character folds to r).
	switch {
	case bytes.Contains(b, []byte(`:"`)) && phpObjectRx.Match(b):
		return "PHP object"
	case mayHoldYAMLTag(b) && yamlTagRx.Match(b):
		return "YAML object tag"
	}
	return ""
}

// mayHoldYAMLTag reports whether b holds "!!", "!r" or "!R", which every
// match of yamlTagRx does.
func mayHoldYAMLTag(b []byte) bool {
	for i := bytes.IndexByte(b, '!'); i >= 0 && i+1 < len(b); {
		if c := b[i+1]; c == '!' || c == 'r' || c == 'R' {
			return true
		}
		j := bytes.IndexByte(b[i+1:], '!')
		if j < 0 {
			return false
		}
		i += 1 + j
	}
	return false
}

// picklesObject reports whether b is a pickle that looks a callable up by
// name and calls it, ending in STOP: protocol 2 or more (\x80 and the
// protocol) with STACK_GLOBAL (\x93) or GLOBAL and a call (REDUCE,
// INST, OBJ, NEWOBJ, NEWOBJ_EX); protocol 0 that opens with a GLOBAL and
// ends in REDUCE ("cos\nsystem\n(S'id'\ntR."), or opens a mark and ends
// in an INST.
func picklesObject(b []byte) bool {
	b = bytes.TrimRight(b, "\r\n ")
	if len(b) < 8 || b[len(b)-1] != '.' {
		return false
	}
	switch {
	case b[0] == 0x80 && b[1] >= 2 && b[1] <= 5:
		return (bytes.IndexByte(b, 0x93) >= 0 || pickleGlobalRx.Match(b)) && bytes.ContainsAny(b, "Rio\x81\x92")
	case b[0] == 'c':
		return bytes.HasSuffix(b, []byte("R.")) && pickleGlobalRx.FindIndex(b) != nil && pickleGlobalRx.FindIndex(b)[0] == 0
	case b[0] == '(':
		return pickleInstRx.Match(b)
	}
	return false
}

// decodeBase64Value decodes v into buf (grown as needed) when the whole
// of it is Base64, in the standard or the URL alphabet, padded or not.
func decodeBase64Value(buf []byte, v string) ([]byte, bool) {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(isAlnum(c) || c == '+' || c == '/' || c == '-' || c == '_' || c == '=') {
			return nil, false
		}
	}
	s := strings.TrimRight(v, "=")
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	b := slices.Grow(buf[:0], enc.DecodedLen(len(s)))[:enc.DecodedLen(len(s))]
	n, err := enc.Decode(b, unsafe.Slice(unsafe.StringData(s), len(s)))
	if err != nil {
		return nil, false
	}
	return b[:n], true
}

func isHexText(s string) bool {
	for i := 0; i < len(s); i++ {
		if _, ok := unhex(s[i]); !ok {
			return false
		}
	}
	return true
}

// attackIf is scoreAttack when b holds, scoreNone otherwise: a test as a
// scorer, for newScoreOp.
func attackIf(b bool) int {
	if b {
		return scoreAttack
	}
	return scoreNone
}

// javaStreamInside reports whether v carries a serialized Java object
// after a prefix of its own ("HexAsciiSerializedMap:ACED0005737200…",
// a Base64 field inside a document): the stream's magic and an object
// (TC_OBJECT, TC_CLASSDESC) in hex, or their Base64 ("rO0ABXNy",
// "rO0ABXQ" for a string). Rule 90018 reads a stream at the start.
func javaStreamInside(v string) bool {
	return strings.Contains(v, "rO0ABXNy") || strings.Contains(v, "rO0ABXN9") || containsFold(v, "aced00057372") || containsFold(v, "aced00057e72")
}

func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		// sub opens with an ASCII letter other than k and s (which
		// Unicode's Kelvin and long s fold into): only that letter, in
		// either case, opens a match. sub is ASCII, so a window of its
		// length holding a rune past ASCII holds fewer runes and
		// matches nothing: a match's second byte is sub's, or sub's in
		// the other case, and has the same bits but 0x20.
		if s[i]|0x20 == sub[0]|0x20 && s[i+1]|0x20 == sub[1]|0x20 && strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}
