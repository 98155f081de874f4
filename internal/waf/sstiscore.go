package waf

import (
	"strings"
)

// Server-side template injection. A template engine that renders a value
// as a template runs what its expression syntax holds: "{{…}}" (Jinja,
// Twig, Handlebars, Go), "{%…%}", "${…}" and "#{…}" (Java EL, Spring,
// FreeMarker, Ruby), "<%=…%>" (ERB, EJS, JSP), "#set(…)" and "$x.y"
// (Velocity), "*{…}" (Thymeleaf). A mustache placeholder ("{{ user.name
// }}") is how such templates are written; what injections put there is
// arithmetic to probe the engine ("{{7*7}}"), or a walk from any object to
// the language's runtime (Python's __class__ and __globals__, Java's
// getClass().forName, Runtime.exec, FreeMarker's Execute, Ruby's system).
// CRS covers only some of this from paranoia level 2 (934180).

// sstiMarkers reach from a template's objects to the runtime.
var sstiMarkers = []string{
	"__class__", "__mro__", "__subclasses__", "__globals__", "__builtins__", "__import__", "__init__",
	"__getattribute__", "__dict__", "__base__", "_templatereference", "lipsum.", "cycler.", "joiner.",
	"request.application", "config.items", "self._", "getclass()", "getclass(", ".forname(", "java.lang.runtime",
	"runtime.getruntime", "processbuilder", ".exec(", "freemarker.template.utility", "?new(", "objectconstructor",
	"t(java.", "new java.", "getruntime()", "system(", "popen(", "subprocess", "os.system", "eval(",
	"constructor.constructor", "process.mainmodule", "child_process", "require(", "global.process",
	"$class.inspect", "classloader", "invoke(", "scriptengine", "getmethod(", "instantiate(",
	"_self.env", "registerundefinedfiltercallback", "getfilter(",
}

// phpCallables are the PHP functions that run a command or code, which
// Twig's filters that take a callable ("|map('system')", "|filter",
// "|reduce", "|sort") call by name.
var phpCallables = []string{"system", "exec", "passthru", "shell_exec", "popen", "proc_open", "pcntl_exec", "assert", "call_user_func"}

// callableFilter reports whether b passes a PHP function that runs
// commands to a filter that calls what it is given.
func callableFilter(b string) bool {
	for _, f := range []string{"|map(", "|filter(", "|reduce(", "|sort("} {
		for i := range indexes(b, f) {
			arg := strings.TrimLeft(b[i+len(f):], " \t'\"")
			for _, c := range phpCallables {
				if rest, ok := strings.CutPrefix(arg, c); ok && (rest == "" || strings.IndexByte("'\")", rest[0]) >= 0) {
					return true
				}
			}
		}
	}
	return false
}

// sstiScore judges v: scoreAttack when a template expression in it probes
// the engine with arithmetic or reaches for the runtime, scoreWeak for a
// template expression that only names variables, scoreNone otherwise.
// sstiNeed: a template's opening holds one of these bytes (the gate
// decides a value without them by its bytes).
const sstiNeed = "{<#[%"

func sstiScore(v string) int {
	if !strings.ContainsAny(v, sstiNeed) {
		return scoreNone
	}
	if len(v) > maxNormalizeLen {
		v = v[:maxNormalizeLen]
	}
	l := strings.ToLower(v)
	best := scoreNone
	for _, d := range []struct{ open, close string }{
		{"{{", "}}"}, {"{%", "%}"}, {"${", "}"}, {"#{", "}"}, {"*{", "}"}, {"@{", "}"}, {"<%", "%>"}, {"[[", "]]"}, {"<#", ">"},
	} {
		for i := range indexes(l, d.open) {
			body := l[i+len(d.open):]
			if j := strings.Index(body, d.close); j >= 0 {
				body = body[:j]
			} else if len(body) > 256 {
				body = body[:256]
			}
			if sc := sstiExpr(body); sc > best {
				best = sc
				if best == scoreAttack {
					return best
				}
			}
		}
	}
	// Velocity's directives.
	if strings.Contains(l, "#set(") || strings.Contains(l, "#set (") {
		if sc := sstiExpr(l); sc > best {
			best = sc
		}
		if best < scoreWeak {
			best = scoreWeak
		}
	}
	return best
}

// sstiExpr judges what stands between a template's delimiters.
func sstiExpr(body string) int {
	b := strings.TrimSpace(strings.TrimLeft(body, "=-#"))
	if b == "" {
		return scoreNone
	}
	for _, m := range sstiMarkers {
		if strings.Contains(b, m) {
			return scoreAttack
		}
	}
	if sstiArithmetic(b) || callableFilter(b) {
		return scoreAttack
	}
	return scoreWeak
}

// sstiArithmetic reports an expression made only of numbers and one or
// more arithmetic operators ("7*7", "7*'7'", " 1337 + 1 "): an engine
// probe, which no template placeholder is.
func sstiArithmetic(b string) bool {
	ops, digits := 0, 0
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '*' || c == '+' || c == '-' || c == '/' || c == '%':
			ops++
		case c == ' ' || c == '\'' || c == '"' || c == '(' || c == ')' || c == '.':
		default:
			return false
		}
	}
	return ops > 0 && digits >= 2
}
