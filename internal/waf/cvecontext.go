package waf

import (
	"bytes"
	"encoding/base64"
	"regexp"
	"strings"
)

// Discounts for the families of exploit shapes (see context.go): what the
// same rules match in ordinary text and data.

// placeholderRx is a template placeholder that names a value and does
// nothing else: "${user.firstName}", "#{order.id}", "%{name}",
// "{{ count }}".
var placeholderRx = regexp.MustCompile(`(?:[$#%]\{\s*[A-Za-z_][\w.]*\s*\}|\{\{\s*[A-Za-z_][\w.]*\s*\}\})`)

// placeholderText reports whether v is text in a known kind (prose, for
// one) once each placeholder that only names a value is read as a word:
// a message template ("Hello ${user.firstName}, your order #{order.id}
// ships today."). A placeholder that calls, indexes or computes
// ("${@system(id)}", "${7*7}") is not one and leaves the text unknown.
func placeholderText(v string) bool {
	if len(v) > maxKindLen || !strings.ContainsAny(v, "{") {
		return false
	}
	w := placeholderRx.ReplaceAllString(v, "value")
	return w != v && textKindOf(w) != kindOther
}

// javaScore judges a value CRS's Java rules (944100-944130) matched for
// naming a Java class ("java.lang.Runtime", "ProcessBuilder"): a class
// named in text with none of the syntax that uses it (a call, OGNL's "@",
// an expression's braces, markup, an assignment, a statement) is a class
// named in documentation, an error report or a search.
func javaScore(v string) int {
	if strings.ContainsAny(v, "(@{}<>$!=;[`\\") {
		return scoreAttack
	}
	return scoreNone
}

// dataImageRx is a data: URI that declares a raster image in Base64.
var dataImageRx = regexp.MustCompile(`(?i)^data:image/(png|jpe?g|gif|webp|bmp|x-icon|vnd\.microsoft\.icon|avif)(?:;[\w=.-]+)*;base64,([A-Za-z0-9+/]{16})`)

// imageMagic are the first bytes of each raster format.
var imageMagic = map[string][]string{
	"png": {"\x89PNG"}, "jpeg": {"\xff\xd8\xff"}, "jpg": {"\xff\xd8\xff"}, "gif": {"GIF87a", "GIF89a"},
	"webp": {"RIFF"}, "bmp": {"BM"}, "x-icon": {"\x00\x00\x01\x00"}, "vnd.microsoft.icon": {"\x00\x00\x01\x00"},
	"avif": {"\x00\x00\x00"},
}

// dataURIScore judges a value CRS's data-scheme rule (934170) matched:
// a data: URI is an inline image, as avatars, pasted screenshots and
// rich-text editors send them, when it declares a raster image and its
// bytes start as that format does; any other data: URI (text, HTML, a
// script, or an "image" whose bytes are PHP) is what PHP's data://
// wrapper and an includer run.
func dataURIScore(v string) int {
	t := strings.TrimSpace(v)
	m := dataImageRx.FindStringSubmatch(t)
	if m == nil || strings.Count(strings.ToLower(t), "data:") != 1 {
		return scoreAttack
	}
	head, err := base64.StdEncoding.DecodeString(m[2])
	if err != nil {
		return scoreAttack
	}
	for _, magic := range imageMagic[strings.ToLower(m[1])] {
		if bytes.HasPrefix(head, []byte(magic)) {
			return scoreNone
		}
	}
	return scoreAttack
}

var (
	familyJava    = family{"java", javaScore, knownKind, nil}
	familyDataURI = family{"data-uri", dataURIScore, anyKind, nil}
)

// whereOperator reports whether v uses MongoDB's $where as an operator:
// the value opens with it, or a key, a name or an assignment follows it
// ("$where: …", "\"$where\":", "[$where]=", "$where=").
func whereOperator(v string) bool {
	for i := range indexes(v, "$where") {
		if strings.TrimSpace(v[:i]) == "" {
			return true
		}
		rest := strings.TrimLeft(v[i+len("$where"):], " \t\"'")
		if rest != "" && strings.IndexByte(":=]", rest[0]) >= 0 {
			return true
		}
	}
	return false
}

// osFileInProse reports whether an operating system file's name (one
// without a directory, "win.ini") is named in a sentence: four words or
// more, prose, and no separator of a path anywhere. A file read is
// given a path or the bare name; a question about where Windows keeps
// win.ini reads nothing.
func osFileInProse(value, name string) bool {
	return !strings.ContainsAny(name, "/\\") && !strings.ContainsAny(value, "/\\") &&
		len(strings.Fields(value)) >= 4 && textKindOf(value) == kindProse
}
