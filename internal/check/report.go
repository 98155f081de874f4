package check

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strings"

	"moat/internal/flow"
)

// The text of a report is the checked repository's as much as moat's:
// addresses, file names, messages naming values, suppression reasons.
// A repository is untrusted input, and its text reaches a terminal or a
// CI log, so every piece of it is shown through flow.PrintableText (the
// JSON formats through flow.PrintableJSON): a control character or a
// direction override in a resource's name cannot rewrite or reorder what
// the reader sees.

// Formats names the output formats Write accepts.
var Formats = []string{"text", "json", "sarif", "junit"}

// Write renders the report in format.
func Write(w io.Writer, rep *Report, format string) error {
	switch format {
	case "text", "":
		return writeText(w, rep)
	case "json":
		return writeJSON(w, rep)
	case "sarif":
		return WriteSARIF(w, rep)
	case "junit":
		return writeJUnit(w, rep)
	}
	return fmt.Errorf("check: unknown format %q (want one of %s)", format, strings.Join(Formats, ", "))
}

// pathLine names a path's hops by address; a path that does not arrive
// ends with where it stopped and why, apart from the hops it crossed.
func pathLine(path []Hop) string {
	var parts []string
	stop := ""
	for _, h := range path {
		switch {
		case h.Blocked && h.Addr != "":
			stop = ", stopped at " + flow.PrintableText(h.Addr) + " (" + flow.PrintableText(h.Detail) + ")"
		case h.Blocked:
			stop = ", stopped: " + flow.PrintableText(h.Detail)
		case h.Kind == "source":
			parts = append(parts, flow.PrintableText(h.Detail))
		case h.Addr != "":
			parts = append(parts, flow.PrintableText(h.Addr))
		default:
			parts = append(parts, flow.PrintableText(h.Detail))
		}
	}
	return strings.Join(parts, " → ") + stop
}

// pathLines writes a finding's paths by address, one line each: one for
// the finding, or one per set of its ports whose paths cross different
// resources, led by those ports.
func pathLines(f Finding) []string {
	if len(f.Paths) < 2 {
		if len(f.Path) == 0 {
			return nil
		}
		return []string{"path: " + pathLine(f.Path)}
	}
	var lines, ports []string
	for _, pp := range f.Paths {
		l := pathLine(pp.Path)
		j := slices.Index(lines, l)
		if j < 0 {
			lines, ports = append(lines, l), append(ports, pp.Ports)
			continue
		}
		ports[j] += "; " + pp.Ports
	}
	if len(lines) == 1 {
		return []string{"path: " + lines[0]}
	}
	for i := range lines {
		lines[i] = "path for " + flow.PrintableText(ports[i]) + ": " + lines[i]
	}
	return lines
}

func counts(rep *Report) (map[Severity]int, int) {
	c := map[Severity]int{}
	sup := 0
	for _, f := range rep.Findings {
		if f.Suppressed != "" {
			sup++
			continue
		}
		c[f.Severity]++
	}
	return c, sup
}

func writeText(w io.Writer, rep *Report) error {
	c, sup := counts(rep)
	total := len(rep.Findings) - sup
	var parts []string
	for s := Critical; s >= Info; s-- {
		if c[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c[s], s))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "moat check: %s", plural(total, "finding", "findings"))
	if len(parts) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(parts, ", "))
	}
	if sup > 0 {
		fmt.Fprintf(&b, ", %d suppressed", sup)
	}
	b.WriteString("\n")
	rules := newFindings().rules
	cur := Severity(-1)
	for _, f := range rep.Findings {
		if f.Suppressed != "" {
			continue
		}
		if f.Severity != cur {
			cur = f.Severity
			fmt.Fprintf(&b, "\n%s\n", strings.ToUpper(cur.String()))
		}
		fmt.Fprintf(&b, "  %s  %s  (%s)\n", f.RuleID, orDash(f.Address), where(f))
		fmt.Fprintf(&b, "    %s: %s\n", rules[f.RuleID].Title, flow.PrintableText(f.Message))
		for _, l := range pathLines(f) {
			fmt.Fprintf(&b, "    %s\n", l)
		}
		if f.Severity > Info {
			fix := f.Fix
			if fix == "" {
				fix = rules[f.RuleID].Remediation
			}
			fmt.Fprintf(&b, "    fix: %s\n", fix)
		}
	}
	if sup > 0 {
		b.WriteString("\nSUPPRESSED\n")
		for _, f := range rep.Findings {
			if f.Suppressed != "" {
				fmt.Fprintf(&b, "  %s  %s  (%s): %s\n", f.RuleID, orDash(f.Address), where(f), flow.PrintableText(f.Suppressed))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// orDash shows an address, "-" for none.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return flow.PrintableText(s)
}

// where shows a finding's file and line.
func where(f Finding) string {
	if f.Line > 0 {
		return fmt.Sprintf("%s:%d", flow.PrintableText(f.File), f.Line)
	}
	return flow.PrintableText(f.File)
}

// Explain writes everything known about id: a rule ID (the rule and every
// finding of it, with whole paths) or a finding ID (RULE@address).
func Explain(w io.Writer, rep *Report, id string) error {
	var b strings.Builder
	ruleID, addr, byFinding := strings.Cut(id, "@")
	r, ok := RuleByID(ruleID)
	if !ok {
		return fmt.Errorf("check: no rule %q (see the rule list with --explain RULES)", ruleID)
	}
	fmt.Fprintf(&b, "%s  %s  [%s]\n\n%s\n\nFix: %s\n", r.ID, r.Title, r.Severity, r.Description, r.Remediation)
	n := 0
	for _, f := range rep.Findings {
		if !strings.EqualFold(f.RuleID, r.ID) || byFinding && f.Address != addr {
			continue
		}
		n++
		fmt.Fprintf(&b, "\n%s  (%s)\n  %s\n", flow.PrintableText(f.ID()), where(f), flow.PrintableText(f.Message))
		if f.Fix != "" {
			fmt.Fprintf(&b, "  fix: %s\n", f.Fix)
		}
		if f.Suppressed != "" {
			fmt.Fprintf(&b, "  suppressed: %s\n", flow.PrintableText(f.Suppressed))
		}
		if len(f.Paths) < 2 {
			for i, h := range f.Path {
				fmt.Fprintf(&b, "  %d. %-8s %s\n", i+1, h.Kind, flow.PrintableText(h.String()))
			}
		}
		for _, pp := range f.Paths {
			fmt.Fprintf(&b, "  path for %s:\n", flow.PrintableText(pp.Ports))
			for i, h := range pp.Path {
				fmt.Fprintf(&b, "    %d. %-8s %s\n", i+1, h.Kind, flow.PrintableText(h.String()))
			}
		}
	}
	if n == 0 {
		if byFinding {
			return fmt.Errorf("check: no finding %q in the checked paths", id)
		}
		b.WriteString("\nNo findings of this rule in the checked paths.\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteRules lists the rule catalogue.
func WriteRules(w io.Writer) error {
	var b strings.Builder
	for _, r := range Rules() {
		fmt.Fprintf(&b, "%-12s %-9s %s\n", r.ID, r.Severity, r.Title)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

type jsonReport struct {
	Findings []Finding      `json:"findings"`
	Summary  map[string]int `json:"summary"`
}

func writeJSON(w io.Writer, rep *Report) error {
	c, sup := counts(rep)
	out := jsonReport{Findings: rep.Findings, Summary: map[string]int{"suppressed": sup}}
	if out.Findings == nil {
		out.Findings = []Finding{}
	}
	for s := Info; s <= Critical; s++ {
		out.Summary[s.String()] = c[s]
	}
	return encodeJSON(w, out)
}

// encodeJSON writes v as indented JSON, what does not print in its text
// escaped (flow.PrintableJSON): the same value.
func encodeJSON(w io.Writer, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(flow.PrintableJSON(b.Bytes()))
	return err
}

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Class   string        `xml:"classname,attr"`
	Name    string        `xml:"name,attr"`
	Failure *junitFailure `xml:"failure,omitempty"`
	Skipped *junitSkipped `xml:"skipped,omitempty"`
}

type junitFailure struct {
	Type    string `xml:"type,attr"`
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

// writeJUnit writes one test suite per rule: a failing case per finding, a
// skipped case per suppressed finding, and one passing case for a rule
// without findings.
func writeJUnit(w io.Writer, rep *Report) error {
	out := junitSuites{Name: "moat check"}
	for _, r := range Rules() {
		s := junitSuite{Name: r.ID + " " + r.Title}
		for _, f := range rep.Findings {
			if f.RuleID != r.ID {
				continue
			}
			c := junitCase{Class: r.ID, Name: orDash(f.Address) + " (" + where(f) + ")"}
			if f.Suppressed != "" {
				c.Skipped = &junitSkipped{Message: "suppressed: " + flow.PrintableText(f.Suppressed)}
				s.Skipped++
			} else {
				msg := flow.PrintableText(f.Message)
				text := msg
				for _, l := range pathLines(f) {
					text += "\n" + l
				}
				c.Failure = &junitFailure{Type: f.Severity.String(), Message: msg, Text: text}
				s.Failures++
			}
			s.Cases = append(s.Cases, c)
		}
		if len(s.Cases) == 0 {
			s.Cases = append(s.Cases, junitCase{Class: r.ID, Name: "no findings"})
		}
		s.Tests = len(s.Cases)
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Suites = append(out.Suites, s)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
