package waf

import (
	"strconv"
	"strings"

	"github.com/corazawaf/coraza/v3/collection"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"
	"github.com/corazawaf/coraza/v3/types/variables"
)

// Context-aware scoring. CRS scores a request by adding up its rules'
// matches; one match on free text (libinjection on a search for "7 AND
// HALF", a NoScript pattern on rich-text markup, a shell word in a stack
// trace) is enough to block. moat keeps CRS's matches as signals and
// asks, for each match of the SQL, XSS, shell, PHP and header-injection
// families, what the matched value would do where it is used (the
// scorers in sqlscore.go, xssscore.go, shellscore.go): a match on a value
// that would do nothing in that family's context is discounted, its score
// taken back before CRS's blocking evaluation (rule 90090 runs
// moatContext just before REQUEST-949). A value that would act is never
// discounted, and what the scorers cannot read as ordinary text keeps the
// rule's score: the discount only ever applies to values the scorers
// understand.

// TX variable listing the discounted rules, "id id …".
const txDiscounted = "moat_discounted"

// A family judges the values a rule of it matched.
type family struct {
	name string
	// score is the family's scorer; understood reports whether a value
	// the scorer found no attack in is text the scorer reads soundly
	// (prose, code, markup, a trace, an address), so that a match on it
	// is discounted.
	score      func(v string) int
	understood func(v string, score int) bool
	// scoreNorm, when not nil, is score with the normalize to use (a
	// transaction's remembered one, txmemo.go).
	scoreNorm func(v string, norm func(string) (string, bool)) int
}

// benign reports whether v would do nothing in the family's context.
func (f *family) benign(v string) bool {
	sc := f.score(v)
	return sc != scoreAttack && f.understood(v, sc)
}

// anyKind: the scorer's verdict holds for any text.
func anyKind(string, int) bool { return true }

// knownKind: the verdict holds for text of a known kind.
func knownKind(v string, _ int) bool { return textKindOf(v) != kindOther }

var (
	familySQL = family{"sql", sqlScore, func(v string, sc int) bool {
		// No SQL at all, whatever the text; SQL that does nothing, in
		// text of a known kind or an e-mail address.
		return sc == scoreNone || textKindOf(v) != kindOther || looksEmail(v)
	}, nil}
	familyXSS    = family{"xss", xssScore, anyKind, xssScoreNorm}
	familyShell  = family{"shell", shellScore, anyKind, shellScoreNorm}
	familyPHP    = family{"php", phpScore, func(v string, sc int) bool { return knownKind(v, sc) || placeholderText(v) }, nil}
	familyNode   = family{"node", nodeScore, knownKind, nil}
	familyMongo  = family{"mongo", mongoScore, anyKind, nil}
	familySSRF   = family{"ssrf", ssrfScore, knownKind, nil}
	familyHeader = family{"header", func(v string) int {
		if isHeaderBlock(v) || !injectsHeader(v) {
			return scoreNone
		}
		return scoreWeak
	}, func(v string, sc int) bool { return sc == scoreNone || textKindOf(v) != kindOther }, nil}
)

// familyOf returns the family whose scorer judges rule id's matches, or
// nil for rules whose matches always stand.
func familyOf(id int) *family {
	switch {
	case id >= 941100 && id < 942000:
		return &familyXSS
	case id == 942290:
		return &familyMongo
	case id >= 942100 && id < 943000:
		return &familySQL
	case id >= 932100 && id < 933000:
		return &familyShell
	case id >= 933100 && id < 934000:
		return &familyPHP
	case id >= 921120 && id <= 921160:
		return &familyHeader
	case id == 934100 || id == 934101:
		return &familyNode
	case id == 934110:
		return &familySSRF
	case id == 934170:
		return &familyDataURI
	case id >= 944100 && id <= 944130:
		return &familyJava
	}
	return nil
}

// contextAction is the moatContext action.
type contextAction struct{}

func newContextAction() plugintypes.Action { return contextAction{} }

func (contextAction) Init(plugintypes.RuleMetadata, string) error { return nil }

func (contextAction) Type() plugintypes.ActionType { return plugintypes.ActionTypeNondisruptive }

// matchedRuler is the part of Coraza's transaction that lists matches.
type matchedRuler interface {
	MatchedRules() []types.MatchedRule
}

func (contextAction) Evaluate(_ plugintypes.RuleMetadata, tx plugintypes.TransactionState) {
	mr, ok := tx.(matchedRuler)
	if !ok {
		return
	}
	txv := tx.Variables().TX()
	var discounted []string
	j := newContextJudge(tx)
	for _, m := range mr.MatchedRules() {
		counter, taken, added := j.judge(m)
		if taken == 0 {
			continue
		}
		cur, _ := strconv.Atoi(first(txv.Get(counter)))
		txv.Set(counter, []string{strconv.Itoa(max(0, cur-taken))})
		if taken == added {
			// Wholly discounted: the rule counts for nothing in the
			// verdict and is listed apart.
			discounted = append(discounted, strconv.Itoa(m.Rule().ID()))
		}
	}
	if len(discounted) > 0 {
		txv.Set(txDiscounted, []string{strings.Join(discounted, " ")})
	}
}

// contextJudge judges matched rules as the context pass does, for one
// pass over a transaction: the pass itself, or the stop (evalstop.go)
// asking what the pass would take back of the matches so far.
type contextJudge struct {
	v     plugintypes.TransactionVariables
	cache map[memoKey]bool
	orig  originalsSeen
	sc    *txMemo
}

func newContextJudge(tx plugintypes.TransactionState) *contextJudge {
	sc := memoOf(tx)
	if sc == nil {
		sc = newTxMemo()
	}
	return &contextJudge{v: tx.Variables(), cache: map[memoKey]bool{}, sc: sc}
}

// judge returns what the context pass takes back of matched rule m's
// score (taken, from TX variable counter) and what m added to it; taken
// is 0 for a rule whose matches always stand, and never more than added.
// What it reads (m's matches, the request's values, the severity
// scores) does not change once m is matched but for the severity
// scores, which no rule set the stop plans for writes.
func (j *contextJudge) judge(m types.MatchedRule) (counter string, taken, added int) {
	r := m.Rule()
	fam := familyOf(r.ID())
	if fam == nil {
		return "", 0, 0
	}
	mds := m.MatchedDatas()
	if len(mds) == 0 {
		return "", 0, 0
	}
	// A chain adds its score in its last link, once per match of
	// that link; it is taken back only when every value any link
	// matched is benign.
	last := 0
	for _, md := range mds {
		last = max(last, md.ChainLevel())
	}
	txv := j.v.TX()
	score := severityScore(txv, r.Severity())
	counter = txLevelScore + strconv.Itoa(paranoiaOf(r.Tags()))
	chainBenign := true
	for _, md := range mds {
		vals, ok := j.orig.of(j.v, md)
		if !ok || len(vals) == 0 {
			chainBenign = false
			continue
		}
		benign := true
		for _, val := range vals {
			val = percentDecodeAll(val)
			key := memoKey{fam, val}
			b, seen := j.cache[key]
			if !seen {
				b = j.sc.benign(fam, val)
				if !b && plusSpaced(val) && j.sc.score(fam, val) != scoreAttack {
					// A query value whose spaces are still "+": judged
					// as the words it stands for.
					b = j.sc.benign(fam, strings.ReplaceAll(val, "+", " "))
				}
				j.cache[key] = b
			}
			if !b && normalOfBenign(fam, val, vals, j.cache, j.sc, 3) {
				b = true
			}
			if !b {
				benign = false
				break
			}
		}
		if !benign {
			chainBenign = false
		} else if last == 0 {
			taken += score
		}
	}
	// What the rule added: one score per match of its last link.
	for _, md := range mds {
		if md.ChainLevel() == last {
			added += score
		}
	}
	if last > 0 {
		taken = 0
		if chainBenign {
			taken = added
		}
	}
	return counter, taken, added
}

// maxNormalLinks bounds the values of one name normalOfBenign compares.
const maxNormalLinks = 8

// normalOfBenign reports whether val, which the family does not read as
// understood text, is the normal form (see normalize) of another value
// of the same name that is prose the family reads as harmless, and acts
// no more than it: the prose "He said 'and' -- twice" has the normal
// form "He said 'and' --", its dash read as a comment, which is text of
// no known kind. A value of another kind keeps its normal form's verdict:
// what normalizing reveals (comments for spaces, escapes) is what the
// normal form is for. The inspection pass also normalizes normal forms;
// up to depth of them are followed back to the prose.
func normalOfBenign(fam *family, val string, vals []string, cache map[memoKey]bool, sc *txMemo, depth int) bool {
	if depth == 0 || len(vals) > maxNormalLinks || sc.score(fam, val) == scoreAttack {
		// Many values of one name are no value and its normal forms.
		return false
	}
	for _, u := range vals {
		u = percentDecodeAll(u)
		if u == val {
			continue
		}
		if n, ok := sc.normalize(u); !ok || dropControls(n) != val {
			continue
		}
		if textKindOf(u) != kindProse {
			// Itself the normal form of prose?
			if normalOfBenign(fam, u, vals, cache, sc, depth-1) {
				return true
			}
			continue
		}
		key := memoKey{fam, u}
		b, seen := cache[key]
		if !seen {
			b = sc.benign(fam, u)
			cache[key] = b
		}
		if b {
			return true
		}
	}
	return false
}

// plusSpaced reports whether v writes spaces as "+", as a query value
// taken from inside another URL does: "+" between letters or digits.
func plusSpaced(v string) bool {
	word := func(c byte) bool { return isAlnum(c) || c >= 0x80 || c == '"' || c == '\'' }
	for i := 1; i+1 < len(v); i++ {
		if v[i] == '+' && word(v[i-1]) && word(v[i+1]) {
			return true
		}
	}
	return false
}

// percentDecodeAll undoes percent escapes until none is left (at most
// maxNormalizeRounds layers): a value is judged by what it says, not by
// how it was escaped.
func percentDecodeAll(v string) string {
	for range maxNormalizeRounds {
		if strings.IndexByte(v, '%') < 0 {
			return v
		}
		next := percentDecodeOnce(v)
		if next == v {
			return v
		}
		v = next
	}
	return v
}

func first(vals []string) string {
	if len(vals) == 0 {
		return ""
	}
	return vals[0]
}

// severityScore is the anomaly score CRS adds for a match of severity s,
// as the transaction's TX variables set it.
func severityScore(txv collection.Map, s types.RuleSeverity) int {
	name := severityKey(s)
	if name == "" {
		return 0
	}
	n, _ := strconv.Atoi(first(txv.Get(name)))
	return n
}

// severityKey is the TX variable holding the anomaly score of severity
// s; "" for a severity that scores nothing.
func severityKey(s types.RuleSeverity) string {
	switch s {
	case types.RuleSeverityEmergency, types.RuleSeverityAlert, types.RuleSeverityCritical:
		return txCriticalScore
	case types.RuleSeverityError:
		return txErrorScore
	case types.RuleSeverityWarning:
		return txWarningScore
	case types.RuleSeverityNotice:
		return txNoticeScore
	}
	return ""
}

// paranoiaOf reads a rule's "paranoia-level/N" tag; 1 when it has none.
func paranoiaOf(tags []string) int {
	for _, t := range tags {
		if n, ok := strings.CutPrefix(t, "paranoia-level/"); ok {
			if pl, err := strconv.Atoi(n); err == nil {
				return pl
			}
		}
	}
	return 1
}

// originals returns the values a match was made on, as the request gave
// them (before the rule's transformations): every value under the matched
// name, so that a discount holds only if all of them are benign. It
// reports false for variables whose values it does not look up.
func originals(v plugintypes.TransactionVariables, md types.MatchData) ([]string, bool) {
	key := md.Key()
	switch md.Variable() {
	case variables.Args, variables.ArgsGet, variables.ArgsPost, variables.ArgsPath:
		var out []string
		for _, m := range []collection.Map{v.ArgsGet(), v.ArgsPost(), v.ArgsPath()} {
			out = append(out, m.Get(key)...)
		}
		return out, true
	case variables.ArgsNames, variables.ArgsGetNames, variables.ArgsPostNames, variables.RequestCookiesNames:
		return []string{key}, key != ""
	case variables.RequestCookies:
		return v.RequestCookies().Get(key), true
	case variables.RequestHeaders:
		return v.RequestHeaders().Get(key), true
	case variables.RequestFilename:
		return []string{v.RequestFilename().Get()}, true
	case variables.MatchedVars:
		// A chain's later link reads what the earlier one matched,
		// named "ARGS:name".
		name, k, ok := strings.Cut(key, ":")
		if !ok {
			return nil, false
		}
		switch name {
		case "ARGS", "ARGS_GET", "ARGS_POST", "ARGS_PATH":
			var out []string
			for _, m := range []collection.Map{v.ArgsGet(), v.ArgsPost(), v.ArgsPath()} {
				out = append(out, m.Get(k)...)
			}
			return out, true
		case "REQUEST_COOKIES":
			return v.RequestCookies().Get(k), true
		case "REQUEST_HEADERS":
			return v.RequestHeaders().Get(k), true
		}
	}
	return nil, false
}

// originalsSeen remembers originals' answers for one pass: a value
// matched by several rules (the attack's argument and its normal forms,
// by each SQL rule) is looked up, and its list built, once. The
// collections originals reads do not change while the pass runs.
type originalsSeen []originalsOf

type originalsOf struct {
	v    variables.RuleVariable
	key  string
	vals []string
	ok   bool
}

// of is originals(v, md), from an earlier answer for the same variable
// and key when there is one.
func (s *originalsSeen) of(v plugintypes.TransactionVariables, md types.MatchData) ([]string, bool) {
	for _, o := range *s {
		if o.v == md.Variable() && o.key == md.Key() {
			return o.vals, o.ok
		}
	}
	vals, ok := originals(v, md)
	*s = append(*s, originalsOf{md.Variable(), md.Key(), vals, ok})
	return vals, ok
}

// looksEmail reports whether v is an e-mail address.
func looksEmail(v string) bool {
	at := strings.LastIndexByte(v, '@')
	if at < 1 || at > 64 || len(v)-at < 4 || strings.ContainsAny(v, " \t\r\n'\"<>()[];,\\") {
		return false
	}
	domain := v[at+1:]
	return strings.Contains(domain, ".") && !strings.HasPrefix(domain, ".") && !strings.HasSuffix(domain, ".")
}

// isHeaderBlock reports whether v is a block of HTTP header lines, as a
// client reports a response's headers: every line "Name: value", at least
// two. A value that only ends in one (the text before a CR LF that starts
// a header) is the injection CRS looks for, and is not a block.
func isHeaderBlock(v string) bool {
	lines := strings.FieldsFunc(v, func(r rune) bool { return r == '\r' || r == '\n' })
	if len(lines) < 2 {
		return false
	}
	for _, l := range lines {
		name, _, ok := strings.Cut(l, ":")
		if !ok || name == "" || len(name) > 64 {
			return false
		}
		for i := 0; i < len(name); i++ {
			if !(nameByte(name[i])) {
				return false
			}
		}
	}
	return true
}

// injectsHeader reports whether a value would add a header or a
// response line if written into a header: a line break followed by
// "Name:" or by an HTTP status line, the value's first line included
// when the value opens with the line break. Text that merely has line
// breaks (a multi-line search) adds none.
func injectsHeader(v string) bool {
	lines := strings.FieldsFunc(v, func(r rune) bool { return r == '\r' || r == '\n' })
	if len(lines) == 0 {
		return false
	}
	if v[0] != '\r' && v[0] != '\n' {
		// The first line continues the header the value is written
		// into; one that opens with a line break starts a line of its
		// own ("\r\nSet-Cookie: a=1").
		lines = lines[1:]
	}
	for _, l := range lines {
		l = strings.TrimLeft(l, " \t")
		if strings.HasPrefix(strings.ToUpper(l), "HTTP/") {
			return true
		}
		name, _, ok := strings.Cut(l, ":")
		if ok && name != "" && len(name) <= 64 && strings.IndexFunc(name, func(r rune) bool { return r > 0x7f || !nameByte(byte(r)) }) < 0 {
			return true
		}
	}
	return false
}

// ssrfScore judges v as server-side request forgery, which works only
// where the server fetches a URL: the whole value or a line of it is one,
// it is the value of a key, or it stands in an attribute or a CSS url() of
// markup a server may render
// ("src=\"http://169.254.169.254/…\""). A URL to localhost mentioned in
// the text of a page, a message or a stack trace is fetched by no one.
func ssrfScore(v string) int {
	for off := 0; off < len(v); {
		i := strings.Index(v[off:], ":")
		if i < 0 {
			break
		}
		i += off
		off = i + 1
		// The scheme before the colon.
		j := i
		for j > 0 && (isAlnum(v[j-1]) || strings.IndexByte("+.-", v[j-1]) >= 0) {
			j--
		}
		scheme := strings.ToLower(v[j:i])
		if j == i || !strings.HasPrefix(v[i+1:], "/") && scheme != "http" && scheme != "https" {
			// No URL: "Note: …", "12:30".
			continue
		}
		before := strings.TrimRight(v[:j], " \t")
		if before == "" {
			return scoreAttack
		}
		switch before[len(before)-1] {
		case '=', ':', '"', '\'', '(', '`', '[', '{', ',', '\n', '\r':
			// An attribute's or a parameter's value ("url: http://…"
			// in a text body of key-value lines), a url(), a list, a
			// line of its own.
			return scoreAttack
		}
	}
	return scoreNone
}

// nodeScore judges v as Node.js code injection: scoreAttack when it
// reaches for modules, the process or constructors that run code.
func nodeScore(v string) int {
	l := strings.ToLower(v)
	for _, m := range []string{"child_process", "process.mainmodule", "process.binding", "global.process", "constructor.constructor",
		"require('", "require(\"", "require(`", "execsync(", "spawnsync(", ".exec(", "fs.readfile", "fs.writefile", "__proto__", "process.env", "new function("} {
		if strings.Contains(l, m) {
			return scoreAttack
		}
	}
	return scoreNone
}

// mongoScore judges v as a MongoDB operator injection, which works only
// where the backend reads an operator as a key: in a parameter's name
// ("user[$ne]"), a JSON object's ("{\"$gt\": \"\"}") or a flattened
// JSON key's ("json.password.$ne"). "$type" inside a flat value is text.
func mongoScore(v string) int {
	if strings.Contains(v, "[$") || strings.Contains(v, "{$") || strings.Contains(v, "{\"$") || strings.Contains(v, ",\"$") || whereOperator(v) {
		return scoreAttack
	}
	// A JSON body's keys, flattened ("json.password.$ne"): an operator
	// is a key of its own after a ".".
	for i := range indexes(v, ".$") {
		if i+2 < len(v) && v[i+2] >= 'a' && v[i+2] <= 'z' {
			return scoreAttack
		}
	}
	return scoreNone
}

// phpScore judges v as PHP: scoreAttack for an opening tag, a call of a
// function that runs commands, code or files, a superglobal, or a PHP
// stream wrapper; scoreNone otherwise.
func phpScore(v string) int {
	l := strings.ToLower(v)
	if strings.Contains(l, "<?php") || strings.Contains(l, "<?=") || strings.Contains(l, "$_get") || strings.Contains(l, "$_post") ||
		strings.Contains(l, "$_request") || strings.Contains(l, "$_cookie") || strings.Contains(l, "$_server") || strings.Contains(l, "$_files") ||
		strings.Contains(l, "php://") || strings.Contains(l, "phar://") || strings.Contains(l, "expect://") || strings.Contains(l, "zlib://") {
		return scoreAttack
	}
	for _, f := range []string{"system", "exec", "shell_exec", "passthru", "popen", "proc_open", "pcntl_exec", "eval", "assert",
		"create_function", "include", "require", "include_once", "require_once", "file_get_contents", "file_put_contents",
		"fopen", "fwrite", "base64_decode", "gzinflate", "gzuncompress", "str_rot13", "phpinfo", "preg_replace", "call_user_func",
		"call_user_func_array", "unserialize", "move_uploaded_file", "readfile", "show_source", "highlight_file", "chr"} {
		for i := range indexes(l, f) {
			rest := strings.TrimLeft(l[i+len(f):], " \t")
			if !nameAt(l, i, i+len(f), ".") || !strings.HasPrefix(rest, "(") {
				continue
			}
			// A call with nothing in its parentheses runs nothing the
			// caller chose ("the system() call in C"), but for
			// phpinfo(), which needs nothing.
			if f == "phpinfo" || strings.TrimLeft(rest[1:], " \t") != "" && strings.TrimLeft(rest[1:], " \t")[0] != ')' {
				return scoreAttack
			}
		}
	}
	return scoreNone
}

// scoreOp is the moatSQLi, moatXSS and moatShell operator: it matches
// when the family's scorer finds that the value would act (scoreAttack),
// whatever CRS's rules found, and captures the value. The transaction
// remembers the scorer's answer (txmemo.go): the gate, Coraza on a kept
// rule and the context pass ask it once.
type scoreOp struct {
	fam *family
	// need: bytes of which a value the scorer finds an attack holds one
	// (nil: not known); the gate decides a value holding none without
	// the scorer.
	need *byteSet
}

// scorerOnly is a family for an operator's scorer alone, which the
// context pass does not judge by.
func scorerOnly(name string, score func(string) int) *family {
	return &family{name: name, score: score}
}

func newScoreOp(f *family) func(plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	return func(plugintypes.OperatorOptions) (plugintypes.Operator, error) { return scoreOp{fam: f}, nil }
}

// newNeedScoreOp is newScoreOp for a scorer that finds no attack in a
// value holding none of the bytes of need.
func newNeedScoreOp(f *family, need string) func(plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	set := bytesOf(need)
	return func(plugintypes.OperatorOptions) (plugintypes.Operator, error) {
		return scoreOp{fam: f, need: &set}, nil
	}
}

func (o scoreOp) Evaluate(tx plugintypes.TransactionState, value string) bool {
	if len(value) > maxNormalizeLen || memoOf(tx).score(o.fam, value) != scoreAttack {
		return false
	}
	if tx != nil && tx.Capturing() {
		tx.CaptureField(0, value)
	}
	return true
}
