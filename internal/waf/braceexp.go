package waf

import (
	"regexp"
	"strings"
)

// braceCommandRx is a brace expansion in a command position, after a
// separator or inside a substitution: bash expands "{cat,/etc/passwd}"
// to the words "cat /etc/passwd" and runs them, a command written
// without one space.
var braceCommandRx = regexp.MustCompile("([;|&\n`]|\\$\\()\\s*\\{([a-z0-9_./-]+(?:,[^{},\\s;|&]*)+)\\}")

// expandBraceCommands writes each brace expansion in a command position
// of s (lower-cased) as the words bash makes of it.
func expandBraceCommands(s string) string {
	if !strings.Contains(s, "{") || !strings.Contains(s, ",") {
		return s
	}
	return braceCommandRx.ReplaceAllStringFunc(s, func(m string) string {
		sub := braceCommandRx.FindStringSubmatch(m)
		return sub[1] + " " + strings.ReplaceAll(sub[2], ",", " ") + " "
	})
}
