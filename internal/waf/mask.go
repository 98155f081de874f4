package waf

import (
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxMatched is how many runes of matched data a verdict keeps.
const MaxMatched = 96

var (
	// Names of variables whose values are secrets whatever they hold.
	secretName = regexp.MustCompile(`(?i)(pass(word|wd)?|secret|token|auth|api[_-]?key|session|sess_?id|cookie|jwt|bearer|credential|private)`)
	// Values that look like secrets wherever they appear: JWTs, bearer and
	// basic credentials, long hex or base64 runs, card-like digit runs.
	secretValue = regexp.MustCompile(`(?i)(eyJ[a-z0-9_-]{8,}\.[a-z0-9_-]{8,}\.[a-z0-9_-]*|(bearer|basic)\s+[a-z0-9+/=._-]{8,}|[a-f0-9]{32,}|[a-z0-9+/_-]{40,}={0,2}|\b(?:\d[ -]?){13,19}\b)`)
)

// Mask returns value fit for a security event: a value of a variable whose
// name says it is a secret is replaced whole; anything in it that looks like
// a credential is replaced; the result is truncated to MaxMatched runes.
// The event keeps enough to see what the attack was, never the secret.
func Mask(variable, value string) string {
	if secretName.MatchString(variable) {
		return "[masked " + strconv.Itoa(len(value)) + " bytes]"
	}
	if mayHoldSecret(value) {
		value = secretValue.ReplaceAllString(value, "[masked]")
	}
	if !utf8.ValidString(value) {
		value = strings.ToValidUTF8(value, "\uFFFD")
	}
	if utf8.RuneCountInString(value) > MaxMatched {
		r := []rune(value)
		value = string(r[:MaxMatched]) + "…"
	}
	return value
}

// mayHoldSecret reports whether secretValue may match v, from what each of
// its alternatives needs: "eyJ", "bearer" or "basic" in any case, a run of
// 32 or more of [a-z0-9+/_-] (hex and base64 runs), or 13 digits. It says
// yes to any non-ASCII value, where case folding reaches letters outside
// ASCII (U+212A folds to "k", U+017F to "s"). A blocked request's value is
// masked on every verdict and event; most hold no secret, and running the
// pattern on them cost more than the rest of the verdict.
func mayHoldSecret(v string) bool {
	run, digits := 0, 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 0x80:
			return true
		case c >= '0' && c <= '9':
			digits++
			run++
		case c|0x20 >= 'a' && c|0x20 <= 'z', c == '+', c == '/', c == '_', c == '-':
			run++
		default:
			run = 0
		}
		if run >= 32 || digits >= 13 {
			return true
		}
		if c|0x20 == 'e' && i+2 < len(v) && v[i+1]|0x20 == 'y' && v[i+2]|0x20 == 'j' ||
			c|0x20 == 'b' && (hasFoldPrefix(v[i:], "bearer") || hasFoldPrefix(v[i:], "basic")) {
			return true
		}
	}
	return false
}

// hasFoldPrefix reports whether v begins with the ASCII lowercase word w,
// in any case.
func hasFoldPrefix(v, w string) bool {
	if len(v) < len(w) {
		return false
	}
	for i := 0; i < len(w); i++ {
		if v[i]|0x20 != w[i] {
			return false
		}
	}
	return true
}
