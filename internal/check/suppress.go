package check

import (
	"bytes"
	"strings"
)

// A suppression is a comment in the source:
//
//	# moat:ignore AWS-NET-001 the bastion is meant to take SSH from the office
//
// (or with // for HCL). It applies to findings of that rule on the block
// that follows it (comments and blank lines between are fine) or the block
// that contains it; in YAML, to the key on the same or the next line. The
// reason is required: a suppression without one is not honoured and is
// itself reported (CHECK-002).
type suppression struct {
	line   int
	rule   string
	reason string
}

const ignoreMarker = "moat:ignore"

type fileSups struct {
	lines [][]byte
	sups  []suppression
}

func parseSuppressions(src []byte) fileSups {
	fs := fileSups{lines: bytes.Split(src, []byte("\n"))}
	for i, l := range fs.lines {
		s := string(l)
		at := strings.Index(s, ignoreMarker)
		if at < 0 {
			continue
		}
		before := strings.TrimSpace(s[:at])
		if !strings.HasSuffix(before, "#") && !strings.HasSuffix(before, "//") && !strings.HasSuffix(before, "/*") {
			continue
		}
		fields := strings.Fields(strings.TrimSuffix(strings.TrimSpace(s[at+len(ignoreMarker):]), "*/"))
		sp := suppression{line: i + 1}
		if len(fields) > 0 {
			sp.rule = fields[0]
			sp.reason = strings.Join(fields[1:], " ")
		}
		fs.sups = append(fs.sups, sp)
	}
	return fs
}

// top returns the first line of the comment (and blank line) run directly
// above line.
func (fs fileSups) top(line int) int {
	t := line
	for t > 1 {
		l := strings.TrimSpace(string(fs.lines[t-2]))
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "//") {
			t--
			continue
		}
		break
	}
	return t
}

// suppress marks the findings that a suppression in their file covers, and
// adds a finding for each suppression that lacks a rule or a reason.
func suppress(list []Finding, files map[string][]byte) []Finding {
	parsed := map[string]fileSups{}
	get := func(name string) (fileSups, bool) {
		if p, ok := parsed[name]; ok {
			return p, true
		}
		src, ok := files[name]
		if !ok {
			return fileSups{}, false
		}
		p := parseSuppressions(src)
		parsed[name] = p
		return p, true
	}
	for i := range list {
		f := &list[i]
		fs, ok := get(f.File)
		if !ok || len(fs.sups) == 0 || f.Line == 0 {
			continue
		}
		lo, hi := fs.top(f.Line), f.end
		if hi < f.Line {
			hi = f.Line
		}
		for _, s := range fs.sups {
			if s.line >= lo && s.line <= hi && strings.EqualFold(s.rule, f.RuleID) && s.reason != "" {
				f.Suppressed = s.reason
				break
			}
		}
	}
	for name := range files {
		fs, _ := get(name)
		for _, s := range fs.sups {
			if s.rule == "" || s.reason == "" {
				list = append(list, Finding{RuleID: RuleBadSuppression, Severity: Medium, File: name, Line: s.line, end: s.line,
					Message: "moat:ignore needs a rule ID and a reason; it is not honoured"})
			}
		}
	}
	return list
}
