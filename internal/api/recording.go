package api

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// A session's recording is an asciicast v2 file. Besides what the terminal
// showed, the agent writes markers ("m" events) about the programs the
// session's processes executed, as the kernel reported them. Their labels
// begin with one of these, and hold printable text only: every value that
// came from the session (arguments, paths) is quoted by QuoteArg first.
const (
	// MarkProgramsRecorded: every program the session's processes
	// execute from here on is recorded (a MarkProgram each).
	MarkProgramsRecorded = "programs recorded: "
	// MarkProgramsNotRecorded: from here on, the programs run are not
	// (all) recorded; the rest of the label says why. A recording holding
	// one, or no MarkProgramsRecorded at all, does not record its programs.
	MarkProgramsNotRecorded = "programs NOT recorded: "
	// MarkProgram records one program executed: "program: pid P ppid Q
	// uid U [euid E] exe PATH argv ARG...", or what is known of one that
	// ended before it could be read.
	MarkProgram = "program: "
	// ProgramEndedFirst is in the label of a program that ended before
	// its arguments could be read.
	ProgramEndedFirst = "ended before its arguments were read"
)

// QuoteArg writes s so that it prints as itself and nothing else: a word
// of letters, digits and the punctuation of paths and options stays as it
// is; anything else is a double-quoted Go string literal, in which control
// characters, invalid UTF-8 and characters that do not print (bidirectional
// overrides among them) are escapes. The result holds no control character
// and no space outside its quotes.
func QuoteArg(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool { return !plainRune(r) }) < 0 {
		return s
	}
	return strconv.Quote(s)
}

func plainRune(r rune) bool {
	return r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+=:,@%", r))
}
