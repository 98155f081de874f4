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
	value = secretValue.ReplaceAllString(value, "[masked]")
	if !utf8.ValidString(value) {
		value = strings.ToValidUTF8(value, "\uFFFD")
	}
	if utf8.RuneCountInString(value) > MaxMatched {
		r := []rune(value)
		value = string(r[:MaxMatched]) + "…"
	}
	return value
}
