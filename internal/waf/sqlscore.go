package waf

import (
	"strings"
)

// This file judges whether a value would do anything as SQL. A value can
// only inject when it breaks out of the place the application puts it: a
// quoted string (it holds the closing quote), a number or a name (it goes
// on after one), or a fragment the attacker means to be appended (it
// starts with an operator or a clause). What follows the break must then
// be SQL that does something: a condition that is always or never true, a
// UNION, a stacked statement, a comment that cuts the rest of the query
// off, or a call to one of the functions injections use to read data,
// wait or raise errors. Prose with SQL words in it ("union select 关键字",
// "7 AND HALF", "DO OR NOT DO") does none of this.

// Verdicts of the scorers (sqlScore, xssScore, shellScore).
const (
	scoreNone   = 0 // nothing of the family: its rules' matches are false positives
	scoreWeak   = 1 // the family's syntax, but nothing it would do: same
	scoreAttack = 2 // it would act: an attack whatever the rules say
)

// Bounds: a value is tokenised up to maxSQLTokens tokens; later tokens
// are not looked at (the rules still read the whole value).
const maxSQLTokens = 512

type sqlTok struct {
	kind byte   // see the sqlTok constants
	text string // lower case for words and operators
	open bool   // a string literal that ran to the end of the value
}

const (
	sqlWord    = 'w' // a name or keyword
	sqlNumber  = '1'
	sqlString  = 's'
	sqlOp      = 'o' // an operator
	sqlPunct   = 'p' // ( ) , ; .
	sqlComment = 'c'
	sqlVar     = 'v' // @name, @@name
	sqlOther   = 'x' // punctuation SQL has no use for
)

// sqlLex tokenises s as SQL. quote, when not 0, is the quote the value is
// placed after: the lexer starts inside a string literal and the first
// token is that literal's end. White space is dropped.
func sqlLex(s string, quote byte) []sqlTok {
	var toks []sqlTok
	i, odbc := 0, 0
	if quote != 0 {
		end, ok := sqlStringEnd(s, 0, quote)
		if !ok {
			return nil // no break out of the string
		}
		toks = append(toks, sqlTok{kind: sqlString, text: s[:end]})
		i = end + 1
	}
	for i < len(s) && len(toks) < maxSQLTokens {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == 0xa0:
			i++
		case c == '\'' || c == '"' || c == '`':
			end, ok := sqlStringEnd(s, i+1, c)
			if !ok {
				toks = append(toks, sqlTok{kind: sqlString, text: s[i+1:], open: true})
				i = len(s)
				break
			}
			kind := byte(sqlString)
			if c == '`' {
				kind = sqlWord
			}
			toks = append(toks, sqlTok{kind: kind, text: strings.ToLower(s[i+1 : end])})
			i = end + 1
		case c == '-' && i+1 < len(s) && s[i+1] == '-', c == '#':
			end := strings.IndexAny(s[i:], "\n\r")
			if end < 0 {
				end = len(s) - i
			}
			// A comment that ends the value or its line is how an
			// injection cuts a query off; "1#tag" and "--flag" are
			// written by people too.
			text := "--"
			if rest := s[i+1 : i+end]; c == '-' {
				rest = rest[1:]
				if rest != "" && rest[0] != ' ' && rest[0] != '\t' && rest[0] != '-' && rest[0] != '+' {
					text = "-x"
				}
			} else if rest != "" && rest[0] != ' ' && rest[0] != '\t' && rest[0] != '#' {
				text = "#x"
			}
			toks = append(toks, sqlTok{kind: sqlComment, text: text})
			i += end
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			end := strings.Index(s[i+2:], "*/")
			body := s[i+2:]
			if end >= 0 {
				body = s[i+2 : i+2+end]
			}
			if strings.HasPrefix(body, "!") {
				// MySQL runs what a /*! … */ comment holds.
				inner := strings.TrimLeft(body[1:], "0123456789")
				toks = append(toks, sqlLex(inner, 0)...)
			} else if end < 0 {
				toks = append(toks, sqlTok{kind: sqlComment, text: "/*"})
			}
			if end < 0 {
				i = len(s)
			} else {
				i += 2 + end + 2
			}
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			j := i + 1
			if c == '0' && j < len(s) && (s[j] == 'x' || s[j] == 'X' || s[j] == 'b' || s[j] == 'B') {
				j++
			}
			hex := j > i+1
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.' || hex && isAlnum(s[j]) ||
				(s[j] == 'e' || s[j] == 'E') && j+1 < len(s) && (s[j+1] >= '0' && s[j+1] <= '9' || s[j+1] == '-' || s[j+1] == '+')) {
				if !hex && (s[j] == 'e' || s[j] == 'E') {
					j++ // the exponent's sign or first digit
				}
				j++
			}
			toks = append(toks, sqlTok{kind: sqlNumber, text: strings.ToLower(s[i:j])})
			i = j
		case c == '@':
			j := i + 1
			for j < len(s) && (s[j] == '@' || isAlnum(s[j]) || s[j] == '_' || s[j] == '.' || s[j] == '$') {
				j++
			}
			toks = append(toks, sqlTok{kind: sqlVar, text: strings.ToLower(s[i:j])})
			i = j
		case isAlnum(c) || c == '_' || c == '$' || c >= 0x80:
			j := i + 1
			for j < len(s) && (isAlnum(s[j]) || s[j] == '_' || s[j] == '$' || s[j] >= 0x80) {
				j++
			}
			toks = append(toks, sqlTok{kind: sqlWord, text: strings.ToLower(s[i:j])})
			i = j
		case strings.IndexByte("(),;.", c) >= 0:
			toks = append(toks, sqlTok{kind: sqlPunct, text: s[i : i+1]})
			i++
		case c == '{' && odbcEscape(s[i+1:]) > 0:
			// ODBC's escapes ("{ts 1}", "{fn x()}"): the braces and
			// the keyword wrap SQL, so they are skipped.
			i += 1 + odbcEscape(s[i+1:])
			odbc++
		case c == '}' && odbc > 0:
			i++
			odbc--
		case strings.IndexByte("{}[]\\?", c) >= 0:
			// Not SQL outside string literals (ODBC's "{fn …}" aside):
			// JSON, paths and prose.
			toks = append(toks, sqlTok{kind: sqlOther, text: s[i : i+1]})
			i++
		default:
			n := 1
			for _, op := range sqlMultiOps {
				if strings.HasPrefix(s[i:], op) {
					n = len(op)
					break
				}
			}
			toks = append(toks, sqlTok{kind: sqlOp, text: s[i : i+n]})
			i += n
		}
	}
	return toks
}

// sqlKeyword are the words that may follow an operand: operators,
// clauses and statement starts.
var sqlKeyword = map[string]bool{
	"or": true, "and": true, "xor": true, "not": true, "div": true, "mod": true, "like": true, "rlike": true,
	"regexp": true, "sounds": true, "is": true, "in": true, "between": true, "collate": true, "union": true,
	"order": true, "group": true, "having": true, "limit": true, "into": true, "procedure": true, "from": true,
	"where": true, "offset": true, "for": true, "escape": true, "glob": true, "similar": true, "waitfor": true,
	"select": true, "exec": true, "execute": true, "as": true, "join": true, "on": true, "when": true, "then": true,
	"else": true, "end": true, "case": true, "binary": true, "fetch": true,
}

// odbcEscape returns the length of an ODBC escape's keyword at the start
// of s ("ts ", "fn ", "oj "…), or 0.
func odbcEscape(s string) int {
	for _, k := range []string{"ts ", "fn ", "oj ", "d ", "t ", "call ", "escape "} {
		if len(s) >= len(k) && strings.EqualFold(s[:len(k)], k) {
			return len(k)
		}
	}
	return 0
}

// sqlMultiOps are the operators longer than one character, longest
// first.
var sqlMultiOps = []string{"<=>", "<>", "!=", "<=", ">=", "||", "&&", ":=", "!<", "!>", "^=", "=<", "=>", "::"}

// sqlStringEnd finds the quote that ends a string literal begun before
// s[from], skipping doubled quotes and backslash escapes.
func sqlStringEnd(s string, from int, q byte) (int, bool) {
	for i := from; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case q:
			if i+1 < len(s) && s[i+1] == q {
				i++
				continue
			}
			return i, true
		}
	}
	return 0, false
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// SQL words by role.
var (
	sqlBool = map[string]bool{"or": true, "and": true, "xor": true, "||": true, "&&": true, "div": false}
	// Statements an injected ";" can start.
	sqlStatement = map[string]bool{
		"select": true, "insert": true, "update": true, "delete": true, "drop": true, "create": true,
		"alter": true, "exec": true, "execute": true, "declare": true, "shutdown": true, "waitfor": true,
		"truncate": true, "grant": true, "revoke": true, "set": true, "use": true, "call": true,
		"copy": true, "load": true, "handler": true, "rename": true, "replace": true, "merge": true,
		"begin": true, "show": true, "union": true, "with": true, "if": true, "sp_executesql": true,
	}
	// Functions injections call to wait, read the server's secrets, raise
	// errors that carry data, or build strings the filters do not see.
	sqlTechniqueFuncs = map[string]bool{
		"sleep": true, "benchmark": true, "pg_sleep": true, "randomblob": true, "load_file": true,
		"extractvalue": true, "updatexml": true, "xp_cmdshell": true, "xp_dirtree": true, "sp_executesql": true,
		"version": true, "database": true, "schema": true, "user": true, "current_user": true,
		"system_user": true, "session_user": true, "@@version": true, "name_const": true,
		"char": true, "chr": true, "concat": true, "concat_ws": true, "group_concat": true,
		"substring": true, "substr": true, "mid": true, "ascii": true, "ord": true, "hex": true, "unhex": true,
		"if": true, "iif": true, "elt": true, "make_set": true, "exp": true, "floor": true, "rand": true,
		"count": true, "length": true, "len": true, "cast": true, "convert": true, "exists": true,
		"utl_inaddr.get_host_address": true, "utl_http.request": true, "dbms_pipe.receive_message": true,
		"dbms_lock.sleep": true, "ctxsys.drithsx.sn": true, "lower": true, "upper": true,
		"polygon": true, "geometrycollection": true, "multipoint": true, "linestring": true,
		"json_keys": true, "row_count": true, "found_rows": true, "last_insert_id": true,
		"to_char": true, "sqlite_version": true, "pg_read_file": true, "lo_import": true,
		"openrowset": true, "opendatasource": true, "is_srvrolemember": true, "db_name": true,
		"host_name": true, "suser_name": true, "benchmark2": false,
	}
	// Functions that take no argument and only reveal the server.
	sqlInfoFuncs = map[string]bool{
		"version": true, "database": true, "schema": true, "user": true, "current_user": true,
		"system_user": true, "session_user": true, "db_name": true, "host_name": true,
		"suser_name": true, "sqlite_version": true, "row_count": true, "found_rows": true, "last_insert_id": true,
	}
	// Names that exist only in a database's catalogue.
	sqlCatalog = map[string]bool{
		"information_schema": true, "sysobjects": true, "syscolumns": true, "sysdatabases": true,
		"pg_catalog": true, "pg_shadow": true, "pg_user": true, "sqlite_master": true, "all_tables": true,
		"all_users": true, "user_tables": true, "dba_users": true, "msysobjects": true, "mysql": false,
		"sys": false, "dual": true, "master": false, "pg_database": true, "sqlite_schema": true,
		"all_tab_columns": true, "user_tab_columns": true, "dba_tables": true, "v$version": true,
		"v$instance": true, "v$database": true, "gv$version": true,
	}
	sqlCompare = map[string]bool{
		"=": true, "<>": true, "!=": true, "<": true, ">": true, "<=": true, ">=": true, "<=>": true,
		"like": true, "rlike": true, "regexp": true, "is": true, "in": true, "between": true,
		"sounds": true, "glob": true, "similar": true, "^=": true, "=<": true, "=>": true,
	}
	// Words that may follow a complete condition or operand.
	sqlClause = map[string]bool{
		"order": true, "group": true, "having": true, "limit": true, "union": true, "into": true,
		"procedure": true, "offset": true, "for": true, "from": true, "where": true, "fetch": true,
	}
)

// sqlScore judges v as SQL: scoreAttack when in some context it breaks
// out and does something, scoreWeak when it breaks out into SQL that does
// nothing an attacker wants or uses SQL words without breaking out,
// scoreNone otherwise. It looks at v as given, and at its SQL normal form
// (comments removed, see normalize).
// sqlNeed: a value sqlScore finds more than one word or number in holds
// one of these bytes (the gate decides the rest by the value's bytes).
const sqlNeed = " \t\n\r'\"`#-/;()=<>|&!*+@%"

func sqlScore(v string) int {
	if !strings.ContainsAny(v, sqlNeed) {
		// One word or number: no SQL beyond the value itself.
		return scoreNone
	}
	best := scoreNone
	forms := []string{v}
	// The value without its line comments and outer space, when that is
	// another string (the lexer's answer on an equal one is the same).
	if u := strings.TrimSpace(stripSQLLineComments(v)); u != v {
		forms = append(forms, u)
	}
	if strings.IndexByte(v, '<') >= 0 && strings.IndexByte(v, '>') >= 0 {
		forms = append(forms, markupText(v)...)
	}
	for _, s := range forms {
		if len(s) > maxNormalizeLen {
			s = s[:maxNormalizeLen]
		}
		for _, q := range []byte{0, '\'', '"'} {
			toks := sqlLex(s, q)
			if toks == nil {
				continue
			}
			sc := sqlContext(toks, q != 0)
			if sc > best {
				best = sc
			}
			if best == scoreAttack {
				return best
			}
		}
	}
	return best
}

// markupText returns the runs of text between the tags of v (at most
// 64), where a value carried in XML or HTML sits.
func markupText(v string) []string {
	var out []string
	for len(v) > 0 && len(out) < 64 {
		i := strings.IndexByte(v, '>')
		if i < 0 {
			break
		}
		v = v[i+1:]
		j := strings.IndexByte(v, '<')
		if j < 0 {
			j = len(v)
		}
		if t := strings.TrimSpace(v[:j]); t != "" {
			out = append(out, t)
		}
		v = v[j:]
	}
	return out
}

// sqlContext scores one tokenisation. quoted says the first token is the
// end of the string the value was placed in.
func sqlContext(toks []sqlTok, quoted bool) int {
	if sqlHasTechnique(toks) {
		return scoreAttack
	}
	i, literal := 0, false
	if quoted {
		i, literal = 1, true
	} else {
		// A value placed as a number or a name: the first operand is
		// the value proper, what follows it is the injection. A value
		// that starts with an operator or a clause is a fragment meant
		// to follow one.
		if sqlStatementAt(toks, 0) {
			// A whole statement: SQL, though nothing breaks out of
			// anything ("select id from users where"); what it is
			// depends on the text around it (a search for "select 1
			// from a" is prose).
			return scoreWeak
		}
		i = sqlOperandEnd(toks, 0)
		literal = i > 0 && (toks[i-1].kind == sqlNumber || toks[i-1].kind == sqlString || toks[i-1].text == ")")
	}
	if i >= len(toks) {
		if quoted && len(toks) == 1 {
			return scoreWeak
		}
		return scoreNone
	}
	return sqlTailFrom(toks[i:], quoted, literal, !quoted || toks[0].text != "")
}

// sqlOperandEnd returns the index after the operand that starts at i (a
// literal, a name, a signed number, a parenthesised list), or i when no
// operand starts there.
func sqlOperandEnd(toks []sqlTok, i int) int {
	if i < len(toks) && toks[i].kind == sqlOp && (toks[i].text == "-" || toks[i].text == "+") {
		i++
	}
	if i >= len(toks) {
		return i
	}
	switch t := toks[i]; t.kind {
	case sqlNumber, sqlString, sqlVar:
		return i + 1
	case sqlWord:
		if sqlBool[t.text] || sqlClause[t.text] || t.text == "not" {
			return i
		}
		if i+1 < len(toks) && toks[i+1].text == "(" {
			return sqlParenEnd(toks, i+1)
		}
		return i + 1
	case sqlPunct:
		if t.text == "(" {
			return sqlParenEnd(toks, i)
		}
	}
	return i
}

// sqlParenEnd returns the index after the parenthesis that closes the one
// at i, or len(toks) when it stays open.
// sqlCallArgs reports whether the parenthesis at toks[i] opens a call's
// arguments: expressions, compared or joined by boolean operators,
// separated by commas, up to the closing parenthesis or the end of the
// value (a payload cut off). "sleep (see attached)" holds two words in a
// row, which no argument is.
func sqlCallArgs(toks []sqlTok, i int) bool {
	i++
	for n := 0; i < len(toks) && n < 64; n++ {
		for i < len(toks) && (toks[i].text == "not" || toks[i].text == "!") {
			i++
		}
		end, ok := sqlExpr(toks, i)
		if !ok {
			return false
		}
		i = end
		if i >= len(toks) {
			return true
		}
		switch t := toks[i]; {
		case t.text == ")", t.kind == sqlComment:
			return true
		case t.text == ",", sqlCompare[t.text], sqlBool[t.text]:
			i++
		default:
			return false
		}
	}
	return true
}

func sqlParenEnd(toks []sqlTok, i int) int {
	depth := 0
	for ; i < len(toks); i++ {
		switch toks[i].text {
		case "(":
			depth++
		case ")":
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return len(toks)
}

// sqlTail scores what follows the break. literal says the value broke
// out after a literal (a quote, a number), rather than after a name.
func sqlTail(toks []sqlTok, quoted, literal bool) int {
	return sqlTailFrom(toks, quoted, literal, true)
}

// sqlTailFrom is sqlTail; leftNonEmpty says the broken-out value has text
// of its own before the break (a comparison of an empty string, as in
// "\"LIKE\"+STAMP", compares nothing the attacker chose).
func sqlTailFrom(toks []sqlTok, quoted, literal, leftNonEmpty bool) int {
	i := 0
	// Closing parentheses the injection needs to leave a call or group.
	for i < len(toks) && toks[i].text == ")" {
		i++
	}
	if i >= len(toks) {
		return scoreWeak
	}
	if toks[i].kind == sqlComment {
		// The rest of the query cut off right after the break
		// ("admin'--", "1)#", "1 --"), not after a name ("x/*") nor by
		// a comment that reads as a tag ("140#abc").
		if literal && (toks[i].text == "--" || toks[i].text == "/*") {
			return scoreAttack
		}
		// A comment that ends at a line break, with SQL after it, hides
		// what follows from a pattern ("-1#x\nunion select").
		for i < len(toks) && toks[i].kind == sqlComment {
			i++
		}
		if i >= len(toks) || !literal {
			return scoreNone
		}
	}
	if t := toks[i]; t.kind == sqlWord && (t.text == "div" || t.text == "mod") {
		// An arithmetic operator written as a word goes on with the
		// broken-out value ("0 div 1 union").
		i++
		if i >= len(toks) {
			return scoreWeak
		}
		if end, ok := sqlExpr(toks, i); ok && end > i {
			return sqlTailFrom(toks[end:], quoted, false, leftNonEmpty)
		}
		return scoreWeak
	}
	if toks[i].kind == sqlOther {
		// JSON, a path, a template: nothing SQL goes on with.
		return scoreNone
	}
	if t := toks[i]; quoted && (t.kind == sqlWord && !sqlKeyword[t.text] || t.kind == sqlNumber || t.kind == sqlString) {
		// A second operand right after the broken-out string ("x' y"):
		// no query parses so.
		return scoreNone
	}
	// An expression may continue the broken-out value ("-1 union",
	// "'-@a or '1", "0 div 1 union"); what the injection does comes
	// after it.
	j, wellFormed := sqlExpr(toks, i)
	afterExpr := j > i
	if !wellFormed {
		// "John+or@var": an operator with nothing to operate on.
		return scoreWeak
	}
	if j >= len(toks) {
		if quoted {
			return scoreWeak
		}
		// A name followed by more names and punctuation
		// ("User(foo),junk"): no SQL beyond the value itself.
		return scoreNone
	}
	t := toks[j]
	switch {
	case t.kind == sqlComment:
		// "x' -a -b --c": arithmetic, then the rest cut off. It changes
		// nothing an attacker wants.
		return scoreWeak
	case t.text == ";":
		if sqlStatementAt(toks, j+1) {
			return scoreAttack
		}
		if quoted && !afterExpr && (j+1 == len(toks) || toks[j+1].kind == sqlComment) {
			return scoreAttack
		}
	case t.kind == sqlWord && t.text == "union":
		k := j + 1
		if k < len(toks) && (toks[k].text == "all" || toks[k].text == "distinct") {
			k++
		}
		paren := false
		for k < len(toks) && toks[k].text == "(" {
			k++
			paren = true
		}
		if k < len(toks) && toks[k].text == "select" && (paren || sqlSelectList(toks[k+1:])) {
			return scoreAttack
		}
	case t.kind == sqlWord && (t.text == "order" || t.text == "group"):
		if j+2 < len(toks) && toks[j+1].text == "by" {
			if end, ok := sqlExpr(toks, j+2); ok && end > j+2 && sqlCleanEnd(toks, end, quoted) {
				return scoreAttack
			}
		}
	case t.kind == sqlWord && (t.text == "having" || t.text == "where"):
		if sqlCondition(toks, j+1, quoted) {
			return scoreAttack
		}
	case t.kind == sqlWord && t.text == "into" && j+1 < len(toks) && (toks[j+1].text == "outfile" || toks[j+1].text == "dumpfile"):
		return scoreAttack
	case t.kind == sqlWord && t.text == "procedure" && j+1 < len(toks) && toks[j+1].text == "analyse":
		return scoreAttack
	case (t.kind == sqlWord || t.kind == sqlOp) && sqlBool[t.text]:
		if sqlCondition(toks, j+1, quoted) {
			return scoreAttack
		}
	case sqlCompare[t.text] && quoted:
		// A comparison of the broken-out string with a literal ("x'
		// like 'y", "a'='b", "aa' / 1 like '0"): the WHERE clause's
		// meaning is the attacker's.
		k := j + 1
		if (t.text == "sounds" || t.text == "not") && k < len(toks) && (toks[k].text == "like" || toks[k].text == "in" || toks[k].text == "between") {
			k++
		}
		end := sqlOperandEnd(toks, k)
		if end > k && leftNonEmpty && (toks[k].kind == sqlString || toks[k].kind == sqlNumber || toks[k].kind == sqlOp || toks[k].text == "(") && sqlCleanEnd(toks, end, quoted) {
			return scoreAttack
		}
		fallthrough
	case sqlCompare[t.text]:
		// A comparison that goes on into a clause or a condition
		// ("1001 rlike (1) union select …").
		if k := sqlExprEnd(toks, j+1); k > j+1 && k < len(toks) && !sqlCompare[toks[k].text] {
			return sqlTail(toks[k:], quoted, false)
		}
	}
	if t.kind == sqlPunct || t.kind == sqlOther {
		// "User(foo),junk": punctuation no SQL continues with.
		return scoreNone
	}
	return scoreWeak
}

// sqlStatementAt reports whether a statement an injection stacks starts
// at i: a statement keyword followed by what that statement takes
// ("drop table", "select 1", "insert into", "exec xp_…", "declare @",
// "waitfor delay"), not a word that happens to be one ("; set the
// table").
func sqlStatementAt(toks []sqlTok, i int) bool {
	if i >= len(toks) || toks[i].kind != sqlWord {
		return false
	}
	next := func(k int) sqlTok {
		if i+k < len(toks) {
			return toks[i+k]
		}
		return sqlTok{}
	}
	n := next(1)
	switch toks[i].text {
	case "select":
		return n.kind == sqlNumber || n.kind == sqlString || n.kind == sqlVar || n.text == "*" || n.text == "(" || n.text == "null" || sqlFind(toks[i:], "from") >= 0
	case "insert", "replace":
		return n.text == "into"
	case "update":
		return sqlFind(toks[i:min(len(toks), i+4)], "set") >= 0
	case "delete":
		return n.text == "from" || n.text == "quick" || n.text == "low_priority" || n.text == "ignore"
	case "drop", "create", "alter", "truncate":
		return n.kind == sqlWord && (n.text == "table" || n.text == "database" || n.text == "user" || n.text == "procedure" || n.text == "function" || n.text == "view" || n.text == "login" || n.text == "index" || n.text == "schema" || n.text == "trigger")
	case "exec", "execute":
		return n.text == "(" || n.kind == sqlVar || n.kind == sqlWord && (strings.HasPrefix(n.text, "xp_") || strings.HasPrefix(n.text, "sp_") || strings.HasPrefix(n.text, "master"))
	case "declare", "set":
		return n.kind == sqlVar
	case "shutdown":
		return n.kind == 0 || n.kind == sqlComment || n.text == "with" || n.text == ";"
	case "waitfor":
		return n.text == "delay" || n.text == "time"
	case "grant", "revoke":
		return sqlFind(toks[i:], "to") >= 0 || sqlFind(toks[i:], "from") >= 0
	case "load":
		return n.text == "data" || n.text == "xml" || n.text == "file"
	case "union":
		return n.text == "select" || n.text == "all"
	case "sp_executesql", "xp_cmdshell":
		return true
	case "begin":
		return n.kind == sqlWord && (sqlStatement[n.text] && n.text != "begin" || n.text == "declare")
	case "if":
		return n.text == "(" || n.text == "exists" || n.text == "not"
	}
	return false
}

// sqlExprEnd returns the index after the expression (operands joined by
// arithmetic, bit and concatenation operators, calls, parentheses) that
// starts at i, or i when none does. It stops at a boolean operator, a
// comparison, a clause, ";" and a comment.
func sqlExprEnd(toks []sqlTok, i int) int {
	end, _ := sqlExpr(toks, i)
	return end
}

// sqlExpr is sqlExprEnd that also reports whether the expression is well
// formed. Operands (literals, names, calls, parenthesised expressions) and
// operators alternate; the expression ends before a second operand in a
// row ("35 POLY" ends after 35), and is malformed when it ends on an
// operator ("John +").
func sqlExpr(toks []sqlTok, i int) (int, bool) {
	needOperand := true
	start := i
	for i < len(toks) {
		t := toks[i]
		switch {
		case t.kind == sqlComment, t.text == ";", sqlBool[t.text], sqlCompare[t.text], t.text == "not":
			return i, !needOperand || i == start
		case t.kind == sqlWord && (sqlClause[t.text] || sqlStatement[t.text]):
			return i, !needOperand || i == start
		case t.kind == sqlString && t.open:
			return i, true
		case t.kind == sqlOther:
			return i, false
		}
		if needOperand {
			switch {
			case t.kind == sqlOp || t.text == "~" || t.text == "!":
				// A unary operator: still an operand to come.
				i++
				continue
			case t.text == "(":
				i = sqlParenEnd(toks, i)
			case t.text == ")" || t.text == "," || t.text == ".":
				return i, i == start
			default:
				i++
				if t.kind == sqlWord && i < len(toks) && toks[i].text == "(" {
					i = sqlParenEnd(toks, i)
				}
			}
			needOperand = false
			continue
		}
		switch {
		case t.kind == sqlOp, t.text == ".", t.text == ",", t.kind == sqlWord && (t.text == "div" || t.text == "mod" || t.text == "collate" || t.text == "escape"):
			needOperand = true
			i++
		default:
			// A second operand in a row: the expression ended.
			return i, true
		}
	}
	return i, !needOperand || i == start
}

// sqlSelectList reports whether toks, after SELECT, are a select list
// an injection writes: literals, calls, "*", variables, several columns,
// or a FROM. A single bare word ("union select 关键字") is not.
func sqlSelectList(toks []sqlTok) bool {
	if len(toks) > 1 && toks[0].kind != sqlWord {
		return true
	}
	for i, t := range toks {
		switch {
		case t.kind == sqlNumber, t.kind == sqlString, t.kind == sqlVar, t.text == "*", t.text == ",", t.text == "(":
			return true
		case t.kind == sqlWord && (t.text == "from" || t.text == "null" || t.text == "all" || t.text == "distinct"):
			return true
		case t.kind == sqlComment:
			return i > 0
		}
	}
	return false
}

// sqlCondition reports whether a condition an injection uses starts at i
// and the query stays valid after it: a comparison with a literal on one
// side ("1=1", "'a'='a", "x like '%", "column*0 like '0"), a literal ("or
// 1", "or true"), a call, a subquery, or NOT of one of these, followed by
// the end of the value, a comment, a clause or another condition.
func sqlCondition(toks []sqlTok, i int, quoted bool) bool {
	negated := false
	for i < len(toks) && (toks[i].text == "not" || toks[i].text == "!" || toks[i].text == "(") {
		negated = negated || toks[i].text != "("
		i++
	}
	if i >= len(toks) {
		return false
	}
	if t := toks[i]; t.kind == sqlString && t.open && quoted {
		// "' or '1": a string the application's own quote closes. As a
		// condition of its own it decides the query only when SQL
		// reads it as true (or it is negated); "the 'or' operator"
		// ORs in a string of words, which is false, and changes
		// nothing.
		return negated || sqlTruthy(t.text)
	}
	end := sqlExprEnd(toks, i)
	if end == i {
		return false
	}
	left := sqlLiteralish(toks[i:end])
	if end < len(toks) && sqlCompare[toks[end].text] {
		j := end + 1
		for j < len(toks) && (toks[j].text == "not" || toks[j].text == "like" && toks[end].text == "sounds") {
			j++
		}
		rend := sqlExprEnd(toks, j)
		if rend < len(toks) && toks[rend].kind == sqlString && toks[rend].open {
			rend++
		}
		if rend == j {
			return false
		}
		if toks[end].text == "between" && rend+1 < len(toks) && toks[rend].text == "and" {
			rend = sqlExprEnd(toks, rend+1)
		}
		return (left || sqlLiteralish(toks[j:rend])) && sqlCleanEnd(toks, rend, quoted)
	}
	if !negated && end == i+1 && toks[i].kind == sqlString && !sqlTruthy(toks[i].text) {
		// A string of words alone as the condition ("1 or 'abc'",
		// "\"O'Neil\" OR \"ONeil\""): false, as a string the
		// application's quote closes is above, and changes nothing.
		return false
	}
	return left && sqlCleanEnd(toks, end, quoted)
}

// sqlTruthy reports whether a string SQL reads as a condition is true:
// MySQL and SQLite read its leading number ("1", "1abc", " 2"), which must
// not be zero; PostgreSQL reads boolean words ("t", "true", "yes", "on").
func sqlTruthy(s string) bool {
	s = strings.ToLower(strings.TrimSpace(s))
	switch s {
	case "t", "true", "y", "yes", "on":
		return true
	}
	s = strings.TrimLeft(s, "+-")
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '1' && c <= '9':
			return true
		case c == '0' || c == '.':
		default:
			return false
		}
	}
	return false
}

// sqlLiteralish reports whether an expression holds a literal, a
// variable, a call or a subquery: something whose value the attacker
// chose, rather than a lone column name.
func sqlLiteralish(toks []sqlTok) bool {
	for i, t := range toks {
		switch {
		case t.kind == sqlNumber, t.kind == sqlString, t.kind == sqlVar:
			return true
		case t.kind == sqlWord && (t.text == "true" || t.text == "false" || t.text == "null" || t.text == "select"):
			return true
		case t.kind == sqlWord && i+1 < len(toks) && toks[i+1].text == "(":
			return true
		}
	}
	return false
}

// sqlCleanEnd reports whether the query stays valid from i: nothing
// left, a comment, ";", a clause, closing parentheses, another boolean
// condition, or (after a quote break) a string left open for the
// application's closing quote.
func sqlCleanEnd(toks []sqlTok, i int, quoted bool) bool {
	for i < len(toks) && toks[i].text == ")" {
		i++
	}
	if i >= len(toks) {
		return true
	}
	t := toks[i]
	switch {
	case t.kind == sqlComment, t.text == ";":
		return true
	case t.kind == sqlWord && sqlClause[t.text]:
		return true
	case sqlBool[t.text]:
		return i+1 < len(toks) && sqlOperandEnd(toks, i+1) > i+1 && sqlChainEnds(toks, i+1, quoted, 64)
	case t.kind == sqlString && t.open && quoted:
		return true
	}
	return false
}

// sqlChainEnds reports whether the condition that starts at i, after a
// boolean operator, parses: a [NOT] operand, optionally compared with
// another, then what sqlCleanEnd accepts. "1 or 2 or 3 items" ends in a
// second operand in a row, which no query parses; "1 or 2 or 3" does
// not. depth bounds the chain's length; past it the chain is taken as
// parsing.
func sqlChainEnds(toks []sqlTok, i int, quoted bool, depth int) bool {
	if depth == 0 {
		return true
	}
	for i < len(toks) && (toks[i].text == "not" || toks[i].text == "!" || toks[i].text == "(") {
		i++
	}
	end := sqlExprEnd(toks, i)
	if end == i {
		return true
	}
	if end < len(toks) && sqlCompare[toks[end].text] {
		j := end + 1
		for j < len(toks) && (toks[j].text == "not" || toks[j].text == "like") {
			j++
		}
		e := sqlExprEnd(toks, j)
		if e == j {
			return true
		}
		end = e
	}
	for end < len(toks) && toks[end].text == ")" {
		end++
	}
	if end >= len(toks) {
		return true
	}
	t := toks[end]
	switch {
	case t.kind == sqlComment, t.text == ";", t.kind == sqlWord && sqlClause[t.text]:
		return true
	case t.kind == sqlString && t.open && quoted:
		return true
	case sqlBool[t.text]:
		return sqlChainEnds(toks, end+1, quoted, depth-1)
	}
	return false
}

// sqlDistinctive are functions and names that appear in injections and
// hardly anywhere else: waiting, reading files and the server's catalogue,
// raising errors that carry data, running commands.
var sqlDistinctive = map[string]bool{
	"sleep": true, "benchmark": true, "pg_sleep": true, "randomblob": true, "load_file": true,
	"extractvalue": true, "updatexml": true, "xp_cmdshell": true, "xp_dirtree": true, "sp_executesql": true,
	"name_const": true, "utl_inaddr.get_host_address": true, "utl_http.request": true,
	"dbms_pipe.receive_message": true, "dbms_lock.sleep": true, "ctxsys.drithsx.sn": true,
	"pg_read_file": true, "lo_import": true, "openrowset": true, "opendatasource": true,
	"is_srvrolemember": true, "geometrycollection": true, "multipoint": true, "make_set": true,
}

// sqlFind returns the index of the first word text in toks, or -1.
func sqlFind(toks []sqlTok, text string) int {
	for i, t := range toks {
		if t.kind == sqlWord && t.text == text {
			return i
		}
	}
	return -1
}

// sqlServerVars are the server variables injections read (@@version).
var sqlServerVars = map[string]bool{
	"version": true, "datadir": true, "basedir": true, "hostname": true, "servername": true, "tmpdir": true,
	"version_compile_os": true, "version_comment": true, "port": true, "identity": true, "rowcount": true,
	"spid": true, "language": true, "error": true, "microsoftversion": true, "servicename": true,
	"secure_file_priv": true, "plugin_dir": true, "log_error": true, "innodb_version": true,
}

// sqlHasTechnique reports whether toks call a function only injections
// call, name a catalogue table or server variable, call a function that
// reveals the server with nothing inside ("version()", "user()"), or
// divide by zero to raise an error.
func sqlHasTechnique(toks []sqlTok) bool {
	for i, t := range toks {
		next := ""
		if i+1 < len(toks) {
			next = toks[i+1].text
		}
		switch t.kind {
		case sqlWord:
			if next == "(" && (sqlDistinctive[t.text] || i >= 2 && toks[i-1].text == "." && toks[i-2].kind == sqlWord && sqlDistinctive[toks[i-2].text+"."+t.text]) && sqlCallArgs(toks, i+1) {
				// "sleep(", and a package's function, "utl_http.request(",
				// which the lexer gives as three tokens.
				return true
			}
			if next == "(" && sqlInfoFuncs[t.text] && i+2 < len(toks) && toks[i+2].text == ")" {
				return true
			}
			if sqlCatalog[t.text] && i > 0 && (toks[i-1].text == "from" || toks[i-1].text == "join") {
				return true
			}
			if (t.text == "information_schema" || t.text == "sysobjects" || t.text == "pg_catalog" || t.text == "sqlite_master" || t.text == "syscolumns") && next == "." {
				return true
			}
			if t.text == "waitfor" && (next == "delay" || next == "time") {
				return true
			}
			if t.text == "select" && i > 0 && toks[i-1].text == "(" && (sqlFind(toks[i:], "from") >= 0 || i+1 < len(toks) && (toks[i+1].kind == sqlNumber || toks[i+1].kind == sqlString || toks[i+1].kind == sqlVar)) {
				// A subquery: "(select id from users)", "(select 1)".
				return true
			}
			if t.text == "case" {
				// CASE … WHEN … THEN: no prose says that.
				if w := sqlFind(toks[i+1:], "when"); w >= 0 && w <= 8 && sqlFind(toks[i+1+w:], "then") >= 0 {
					return true
				}
			}
		case sqlVar:
			if name, ok := strings.CutPrefix(t.text, "@@"); ok && sqlServerVars[strings.TrimPrefix(strings.TrimPrefix(name, "global."), "session.")] {
				return true
			}
		case sqlNumber:
			if next == "/" && i+2 < len(toks) && toks[i+2].text == "0" && i > 0 && toks[i-1].text == "(" {
				return true
			}
		}
	}
	return false
}
