package waf

import (
	"bufio"
	"bytes"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
)

// This file judges whether a value would run a command in a shell. A
// value runs one only where a shell starts a command: at its start (when
// the application hands it to a shell whole), or after a separator the
// application did not mean (";", "|", "&&", "||", "&", a line break) or
// inside a substitution ("$(…)", backquotes). What stands there must be a
// command, and what follows it must read as a command's arguments (a
// path, an option, an address, a redirection) or as nothing at all. An
// XPath ("//*[@id=app]/div[2]"), a route pattern ("/[...slug]"), a cookie
// string or "zsh is the best!" starts no command anyone wants run.

// shellCommands are the command names CRS lists (unix-shell.data, read
// from the embedded rule set) plus the Windows commands attacks run.
var (
	shellOnce     sync.Once
	shellCommands map[string]bool
	// windowsOnly are the Windows commands no Unix shell has ("cmd",
	// "ipconfig"): a POSIX substitution ("$(cmd)") runs nothing by them.
	windowsOnly map[string]bool
)

// windowsCommands are Windows command-line programs and cmd built-ins
// that injections run.
var windowsCommands = []string{
	"cmd", "powershell", "pwsh", "whoami", "ipconfig", "systeminfo", "tasklist", "taskkill", "net", "netsh",
	"netstat", "nslookup", "ping", "dir", "type", "copy", "del", "certutil", "bitsadmin", "wmic", "reg",
	"sc", "schtasks", "rundll32", "regsvr32", "mshta", "cscript", "wscript", "echo", "ver",
	"findstr", "hostname", "nltest", "quser", "arp", "tracert", "curl", "ftp", "tftp",
}

// attackCommands are what injections run first, whatever CRS's list
// holds.
var attackCommands = []string{
	"id", "whoami", "uname", "ifconfig", "ip", "nc", "ncat", "netcat", "bash", "sh", "zsh", "ksh", "csh", "dash",
	"wget", "curl", "python", "python3", "perl", "php", "ruby", "lua", "node", "telnet", "ssh", "socat",
	"ls", "cat", "pwd", "ps", "env", "printenv", "chmod", "chown", "rm", "cp", "mv", "touch", "mkdir",
	"sleep", "ping", "nslookup", "dig", "host", "awk", "sed", "grep", "xterm", "base64", "xxd", "tftp",
}

// needsOperand are commands that do nothing without an operand: they
// print their usage and exit.
var needsOperand = map[string]bool{
	"sleep": true, "ping": true, "nslookup": true, "dig": true, "host": true, "wget": true, "curl": true,
	"nc": true, "ncat": true, "netcat": true, "telnet": true, "ssh": true, "socat": true, "chmod": true,
	"chown": true, "rm": true, "cp": true, "mv": true, "touch": true, "mkdir": true, "grep": true,
	"sed": true, "awk": true, "tftp": true, "kill": true, "timeout": true,
}

// proseCommands are command names that are also everyday words: after a
// separator they count only with arguments that read as a command's.
var proseCommands = map[string]bool{
	"cat": true, "find": true, "sort": true, "head": true, "tail": true, "more": true, "less": true,
	"time": true, "date": true, "kill": true, "who": true, "which": true, "file": true, "print": true,
	"type": true, "set": true, "copy": true, "echo": true, "dir": true, "make": true, "man": true,
	"top": true, "last": true, "look": true, "join": true, "split": true, "wall": true, "write": true,
	"read": true, "test": true, "true": true, "false": true, "yes": true, "links": true, "mail": true,
	"at": true, "cut": true, "paste": true, "tr": true, "nl": true, "od": true, "pr": true, "go": true,
	"ex": true, "ed": true, "vi": true, "sh": false, "net": true, "route": true, "query": true,
	"ping": false, "ver": true, "vol": true, "arp": true, "sc": true, "reg": true, "w": true, "as": true,
	"ld": true, "cc": true, "du": true, "df": true, "su": true, "ln": true, "cp": true, "mv": true, "rm": true,
	"php": false, "perl": false, "python": false, "ruby": false, "node": false, "nc": false, "env": true,
	"exec": true, "eval": true, "history": true, "export": true, "alias": true, "function": true,
	"done": true, "fi": true, "repeat": true, "source": true, "whatis": true, "grep": false, "id": false,
	"script": true, "login": true, "logout": true, "users": true, "groups": true, "free": true, "watch": true,
	"clear": true, "reset": true, "stat": true, "info": true, "host": true, "open": true, "start": true,
	"stop": true, "run": true, "shutdown": true, "reboot": true, "halt": true, "mount": true, "install": true,
	"tar": true, "zip": true, "unzip": true, "diff": true, "patch": true, "expand": true, "fold": true,
	"uniq": true, "comm": true, "tee": true, "sum": true, "units": true, "chat": true, "ssh": false,
}

func loadShellCommands() {
	shellCommands = map[string]bool{}
	data, err := fs.ReadFile(coreruleset.FS, "@owasp_crs/unix-shell.data")
	if err == nil {
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			l := strings.TrimSpace(sc.Text())
			if l == "" || l[0] == '#' || l[0] == '$' {
				continue
			}
			if i := strings.LastIndexByte(l, '/'); i >= 0 {
				l = l[i+1:]
			}
			if l != "" {
				shellCommands[strings.ToLower(l)] = true
			}
		}
	}
	unix := map[string]bool{}
	for c := range shellCommands {
		unix[c] = true
	}
	for _, c := range attackCommands {
		unix[c] = true
	}
	windowsOnly = map[string]bool{}
	for _, c := range windowsCommands {
		shellCommands[c] = true
		if !unix[c] {
			windowsOnly[c] = true
		}
	}
	for _, c := range attackCommands {
		shellCommands[c] = true
	}
	// lwp-request's aliases are HTTP methods: "GET https://…" is a
	// request line in a log, not a command; JSON's and JavaScript's
	// literals are no commands either.
	for _, m := range []string{"get", "post", "head", "put", "delete", "options", "patch", "null", "true", "false", "undefined", "none", "nan"} {
		delete(shellCommands, m)
	}
}

// shellScore judges v: scoreAttack when a command would run with
// arguments that read as a command's, or right after a separator or
// inside a substitution; scoreWeak when a command name stands where a
// command could start but reads as a word in text; scoreNone otherwise.
// shellNeed: a value shellScore finds more than one word in holds one of
// these bytes (the gate decides the rest by the value's bytes).
const shellNeed = " \t;|&\n\r`$<>(){}/\\%"

func shellScore(v string) int { return shellScoreNorm(v, normalize) }

// shellScoreNorm is shellScore with norm for normalize.
func shellScoreNorm(v string, norm func(string) (string, bool)) int {
	if !strings.ContainsAny(v, shellNeed) {
		// One word: a command name alone is no injection.
		return scoreNone
	}
	shellOnce.Do(loadShellCommands)
	best := scoreNone
	v = stripStackFrames(v)
	if text, code := shownCode(v); code != nil {
		// A document showing code: its text is judged as any value, the
		// code it shows as code shown (mdcode.go).
		for _, c := range code {
			best = max(best, shellShownCode(c))
		}
		if best == scoreAttack {
			return best
		}
		v = text
	}
	forms := []string{v}
	if rest, ok := strings.CutPrefix(strings.TrimLeft(v, " \t"), "-c "); ok {
		// The arguments of "sh -c" (an appliance's utility that hands
		// them to bash): the command string runs as a command line.
		forms = append(forms, ";"+rest)
	}
	if n, ok := norm(v); ok {
		forms = append(forms, n)
	}
	for _, s := range forms {
		if len(s) > maxNormalizeLen {
			s = s[:maxNormalizeLen]
		}
		if sc := shellForm(strings.ToLower(blankFences(refsAsWords(s)))); sc > best {
			best = sc
			if best == scoreAttack {
				return best
			}
		}
	}
	return best
}

// shellSpacing writes out the shell's spellings of a space ($IFS), drops
// its line continuations, and writes cmd.exe's variable that names cmd.exe
// itself (%COMSPEC%) as the command.
var shellSpacing = strings.NewReplacer("${ifs}", " ", "$ifs", " ", "\\\n", "", "%comspec%", "cmd")

func shellForm(s string) int {
	// A Replacer copies what it is given even where nothing is replaced:
	// without a dollar sign, a backslash or a percent sign there is
	// nothing to replace.
	if strings.ContainsAny(s, "$\\%") {
		s = shellSpacing.Replace(s)
	}
	s = expandBraceCommands(s)
	if strings.Contains(s, "/dev/tcp/") || strings.Contains(s, "/dev/udp/") || strings.Contains(s, "$((") ||
		strings.HasPrefix(strings.TrimSpace(s), "() {") {
		// Reverse shells, arithmetic expansion and Shellshock's function
		// definition are shell and nothing else.
		return scoreAttack
	}
	best := scoreNone
	// Command positions: the start, and after each separator.
	positions := []int{0}
	substs, lines := map[int]bool{}, map[int]bool{}
	for i := 0; i < len(s) && len(positions) < 256; i++ {
		switch c := s[i]; c {
		case ';', '|', '&':
			positions = append(positions, -(i + 1)) // negative: after a separator
		case '\n', '\r':
			positions = append(positions, -(i + 1))
			lines[i+1] = true
		case '`':
			// Backquotes also mark code in prose and Markdown: what
			// stands inside is judged as after any separator.
			positions = append(positions, -(i + 1))
		case '$', '<', '>':
			if i+1 < len(s) && s[i+1] == '(' {
				positions = append(positions, -(i + 2))
				substs[i+2] = true
			}
		}
	}
	for _, p := range positions {
		afterSep := p < 0
		if afterSep {
			p = -p
		}
		var sc int
		if lines[p] {
			// A line break separates commands in a script and lines in
			// any text: a line counts as a command only as one would be
			// written whole, or as a bare command in a value of a line
			// or two ("%0aid%0a"), not as a word in a list.
			sc = commandAt(s, p, false)
			if sc == scoreWeak && shortText(s) {
				sc = commandAt(s, p, true)
			}
		} else {
			sc = commandAt(s, p, afterSep)
			if sc == scoreWeak && afterSep && leadingSeparator(s, p) {
				// A value that starts with ";", "&" or "&&" has nothing
				// before it to separate: it was written to end the
				// application's command and start its own (";echo
				// vulnerable"). A "|" may open a Markdown table row.
				sc = scoreAttack
			}
		}
		if substs[p] && sc == scoreWeak {
			// A command inside "$(…)": substitution is shell syntax,
			// whatever the command, but for a Windows program, which
			// no shell that substitutes runs ("prefer $(cmd) over
			// backticks").
			if w, _ := shellWord(strings.TrimLeft(s[p:], " \t")); !windowsOnly[w] {
				sc = scoreAttack
			}
		}
		if sc > best {
			best = sc
			if best == scoreAttack {
				return best
			}
		}
	}
	if redirectsToScript(s) {
		return scoreAttack
	}
	return best
}

// commandAt judges the command that would start at s[i].
func commandAt(s string, i int, afterSep bool) int {
	// Skip white space, a repeated separator, a subshell's "(" or "{",
	// and variable assignments ("a=b cmd").
	for i < len(s) && strings.IndexByte(" \t\r\n;|&({!", s[i]) >= 0 {
		i++
	}
	for i < len(s) {
		w, n := shellWord(s[i:])
		if n == 0 || !strings.Contains(w, "=") || strings.HasPrefix(w, "=") {
			break
		}
		i += n
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
	}
	w, n := shellWord(s[i:])
	if w == "" || strings.Contains(w, "://") || strings.HasPrefix(w, "+") {
		// A URL is no command, whatever its last segment.
		return scoreNone
	}
	binPath := strings.Contains(w, "/bin/") || strings.Contains(w, "/sbin/") || strings.Contains(w, "system32\\") || strings.HasPrefix(w, "bin/")
	if j := strings.LastIndexAny(w, "/\\"); j >= 0 && j < len(w)-1 {
		w = w[j+1:]
	}
	w = strings.TrimSuffix(strings.TrimSuffix(w, ".exe"), ".com")
	for _, prefix := range []string{"sudo", "nohup", "command", "busybox", "timeout"} {
		if w == prefix {
			if sc := commandAt(s, i+n, afterSep); sc > scoreNone {
				return max(scoreWeak, sc)
			}
			// No command after it: the word is judged as a command
			// itself (Windows' "timeout /t 10" waits, as blind
			// injections do).
			break
		}
	}
	if !shellCommands[w] {
		g, ok := globCommand(w)
		if !ok {
			return scoreNone
		}
		w = g
	}
	if binPath {
		// "/usr/bin/id", "/bin/sh": a program named by where it lives.
		return scoreAttack
	}
	args := s[i+n:]
	if end := strings.IndexAny(args, ";|&\n\r`"); end >= 0 {
		args = args[:end]
	}
	// A "#" that starts a word starts a comment: what follows is no
	// argument ("| sh # a.zip").
	for j := 0; j < len(args); j++ {
		if args[j] == '#' && (j == 0 || args[j-1] == ' ' || args[j-1] == '\t') {
			args = args[:j]
			break
		}
	}
	argsShell, argsProse := shellArgs(args, !proseCommands[w])
	if !argsShell && subcommandOf(w, args) {
		// "net user", "reg query HKLM\…": a program's own subcommand
		// is a command's argument, not a word of text.
		argsShell, argsProse = true, false
	}
	switch {
	case argsShell && !argsProse:
		return scoreAttack
	case argsShell && afterSep:
		return scoreAttack
	case argsProse:
		return scoreWeak
	case strings.TrimSpace(args) == "" && needsOperand[w]:
		// "eat | sleep": a command that does nothing without what
		// it works on (a time, a host, a file) is a word.
		return scoreWeak
	case afterSep && !proseCommands[w]:
		// "; id", "| whoami", "`uname`".
		return scoreAttack
	case afterSep && strings.TrimSpace(args) == "" && len(s) <= 256 && endsOrCommands(s[i+n:]):
		// "; cat" at the very end, "|ls|"; not a word between the
		// bars of a table in a page of text, nor a word of a list
		// ("1;O'Brien;cat & dog").
		return scoreAttack
	case !afterSep && !proseCommands[w] && strings.TrimSpace(args) == "" && len(strings.TrimSpace(s)) == len(w):
		// The whole value is one command name that is no word.
		return scoreWeak
	}
	return scoreWeak
}

// endsOrCommands reports whether rest, what follows a command, is
// separators and white space to the end of its line, a separator
// against the command ("script&gt;"), or a separator and another command
// ("; cat | nc …"). A separator set apart by spaces before a word that
// is no command separates words of a list ("cat & dog").
func endsOrCommands(rest string) bool {
	t := strings.TrimLeft(rest, " \t;|&")
	if t == "" || strings.IndexByte(";|&", rest[0]) >= 0 || t[0] == '\n' || t[0] == '\r' || t[0] == '#' || t[0] == '`' || t[0] == ')' {
		return true
	}
	if len(t) == len(rest) {
		return false
	}
	w, _ := shellWord(t)
	if j := strings.LastIndexAny(w, "/\\"); j >= 0 && j < len(w)-1 {
		w = w[j+1:]
	}
	return shellCommands[w]
}

// leadingSeparator reports whether the separator that ends at s[p] is
// the value's first character but for white space, and is ";" or "&"
// (alone or doubled) or "||".
func leadingSeparator(s string, p int) bool {
	pre := strings.TrimLeft(s[:p], " \t")
	return pre == ";" || pre == "&" || pre == "&&" || pre == "||"
}

// subcommands are the subcommands of command names that are also words
// (Windows' net, reg and sc): the first argument makes them commands.
var subcommands = map[string][]string{
	"net": {"user", "users", "localgroup", "group", "share", "view", "use", "accounts", "session", "start", "stop", "config"},
	"reg": {"query", "add", "delete", "save", "export", "import", "load"},
	"sc":  {"query", "queryex", "qc", "create", "config", "start", "stop", "delete"},
}

// subcommandOf reports whether args start with one of w's subcommands.
func subcommandOf(w, args string) bool {
	f := strings.Fields(args)
	return len(f) > 0 && slices.Contains(subcommands[w], f[0])
}

// shellWord returns the word at the start of s with the quotes,
// backslashes and carets shells remove ("c”at", "c\at", `w"h"oami`,
// "who^ami") taken out, and
// how many bytes it spans.
func shellWord(s string) (string, int) {
	var b strings.Builder
	i := 0
	for i < len(s) {
		c := s[i]
		if strings.IndexByte(" \t\r\n;|&<>()`{}", c) >= 0 {
			break
		}
		switch c {
		case '\'', '"', '\\', '^':
			// "^" is cmd.exe's escape, which it removes: c^m^d.
			i++
			continue
		case '$':
			// "$@", "$*" and empty expansions join words: c$@at.
			if i+1 < len(s) && (s[i+1] == '@' || s[i+1] == '*') {
				i += 2
				continue
			}
		}
		b.WriteByte(c)
		i++
	}
	return b.String(), i
}

// shellArgs reports whether args read as a command's arguments (a path,
// an option, an address, a redirection, a variable) and whether they read
// as words of text.
func shellArgs(args string, urls bool) (shell, prose bool) {
	fields := strings.Fields(args)
	for i, w := range fields {
		w = strings.Trim(w, "'\"")
		if (w == ">" || w == ">>" || w == "<") && i+1 < len(fields) {
			// A redirection is only one with a file after it: "mysql>
			// grant" is a prompt.
			w += fields[i+1]
		}
		switch {
		case w == "":
		case strings.HasPrefix(w, "-") && len(w) > 1 && w[1] != '-' && (len(w) <= 12 && isLetters(w[1:]) || strings.ContainsAny(w, "/\\")) || strings.HasPrefix(w, "--") && len(w) > 3 && isLetters(strings.ReplaceAll(w[2:], "-", "")):
			shell = true
		case strings.HasPrefix(w, "/") || strings.HasPrefix(w, "~/") || strings.HasPrefix(w, "./") || strings.HasPrefix(w, "../"):
			shell = true
		case len(w) >= 3 && isAlnum(w[0]) && w[1] == ':' && (w[2] == '\\' || w[2] == '/'):
			shell = true // C:\Users
		case strings.HasPrefix(w, "\\\\"), strings.HasPrefix(w, "%") && strings.HasSuffix(w, "%") && len(w) > 2:
			shell = true
		case strings.HasPrefix(w, "<") || strings.HasPrefix(w, ">") || strings.HasPrefix(w, "2>"):
			target := strings.TrimLeft(w, "<>2&")
			if strings.ContainsAny(target, "./~") || target == "1" || target == "2" {
				shell = true
			} else {
				prose = true
			}
		case shellVar(w):
			shell = true
		case strings.HasPrefix(w, "http://") || strings.HasPrefix(w, "https://") || strings.HasPrefix(w, "ftp://"):
			// A URL is what curl and wget take; after "at" or "time"
			// it is a stack frame or a log line.
			shell = shell || urls
			prose = prose || !urls
		case isIPv4(w), isNumber(w):
			shell = shell || isIPv4(w)
		case isHostname(w):
			// "nslookup x.example.net": a host is what network commands
			// take, as they take a URL.
			shell = shell || urls
			prose = prose || !urls
		default:
			prose = true
		}
	}
	return shell, prose
}

// shortText reports whether s has at most two non-empty lines.
func shortText(s string) bool {
	n := 0
	for _, l := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
		if strings.TrimSpace(l) != "" {
			n++
		}
	}
	return n <= 2
}

func isNumber(w string) bool {
	for i := 0; i < len(w); i++ {
		if w[i] < '0' || w[i] > '9' {
			return false
		}
	}
	return w != ""
}

// shellVar reports a shell expansion: "${…}", "$(…)", or an environment
// variable in capitals ("$HOME"); "$appId" is a template's variable.
func shellVar(w string) bool {
	if !strings.HasPrefix(w, "$") || len(w) < 2 {
		return false
	}
	if w[1] == '{' || w[1] == '(' {
		return true
	}
	for i := 1; i < len(w); i++ {
		if c := w[i]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return i > 2 && !isAlnum(c)
		}
	}
	return true
}

// isHostname reports a DNS name of two labels or more whose last label is
// letters ("x.example.net", "x.example.net." written whole, not "v1.2" or
// "e.g.").
func isHostname(s string) bool {
	if t := strings.TrimSuffix(s, "."); strings.Contains(t, ".") {
		s = t // a fully qualified name's root
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 || len(s) > 253 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	tld := labels[len(labels)-1]
	return len(tld) >= 2 && isLetters(tld)
}

func isIPv4(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return false
	}
	for _, p := range parts {
		if p == "" || len(p) > 3 {
			return false
		}
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return false
			}
		}
	}
	return true
}

// redirectsToScript reports output redirected into a file a web server
// would run ("id>shell.php", "> /var/www/x.jsp").
func redirectsToScript(s string) bool {
	for i := range indexes(s, ">") {
		w, _ := shellWord(strings.TrimLeft(s[i+1:], "> \t"))
		for _, ext := range []string{".php", ".phtml", ".jsp", ".jspx", ".asp", ".aspx", ".ashx", ".cgi", ".pl", ".sh", ".py"} {
			if strings.HasSuffix(w, ext) && len(w) > len(ext) {
				return true
			}
		}
	}
	return false
}

// globCommand returns the command a word with shell wildcards names
// ("c?t", "/???/n?", "wh*mi"), when the shell would expand it to the
// path of one: the word must keep at least two literal characters, so
// that "??" or "*" alone name nothing, and the match is taken over the
// commands attacks run, never prose words. The first match in the
// list's order is the one judged.
func globCommand(w string) (string, bool) {
	if !strings.ContainsAny(w, "?*[") || len(w) > 32 {
		return "", false
	}
	literal := 0
	for i := 0; i < len(w); i++ {
		if c := w[i]; c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			literal++
		}
	}
	if literal < 2 {
		return "", false
	}
	for _, c := range attackCommands {
		if ok, err := path.Match(w, c); err == nil && ok {
			return c, true
		}
	}
	return "", false
}
