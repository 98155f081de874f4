package waf

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"strings"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	ahocorasick "github.com/petar-dambovaliev/aho-corasick"
)

// fileNameOp is the moatFileNameFromFile operator: CRS's @pmFromFile for
// lists of file names, matched as whole names. A listed name that starts
// with "/" matches anywhere, as in CRS; any other name only where it is
// not the tail of a longer name, so "config.json" matches
// "/app/config.json", "?f=config.json" and "old.config.json" but not
// "/tsconfig.json" or "/getAppConfig.json", which are other files. A dot
// file's name (".profile", ".htaccess") is the tail of a longer name after
// a letter, digit, "_" or "-" ("unified.profile" in an OAuth scope is
// another file, and Apache guards ".ht*" names, not "old.htaccess"); after
// "." it still counts ("..profile" is a traversal written without its
// slash). A listed name with a second dot is an extension that follows a
// name on purpose (".sql.z" in "backup.sql.zip").
// A name of one part must also end where the file's name does (at the end
// of the value or before a character that cannot go on a name): ".history"
// is not in "jquery.historyPopup.js".
//
// The moatOSFileFromFile operator (rule 90031, CRS 930120's work) keeps
// CRS's matching of names anywhere in the value ("sboot.ini" still counts
// as "boot.ini": lenient decoders turn mangled separators into letters)
// but for the dot-file rule above.
//
// The moatArgFileNameFromFile and moatArgOSFileFromFile operators are the
// same two for values that are not the requested path (parameters,
// cookies, XML, the raw request line): there an application's own file
// named bare ("config.asp", "/package.json", "web.config") is a file name
// in a sentence, a form or a file manager, not a reach for a file the
// server would not serve. It counts only where the value reaches out of
// the application's tree: a traversal, a URL scheme or stream wrapper
// ("file:", "php://filter/…"), a Windows drive, or a NUL that cuts the
// name short. Names with a directory ("etc/passwd", "sites/default/
// settings.php"), dot files (".htpasswd", ".git/", a dump's ".sql.gz")
// and the operating system's own files ("boot.ini", "my.cnf") count
// wherever they are named. The requested path keeps every name (rule
// 90030, CRS 930130's work) as its last segment, and an application's own
// file within maxAppFileDepth directories of the root: there the server
// would serve the site's file.
type fileNameOp struct {
	names   []string
	matcher ahocorasick.AhoCorasick
	// pre answers without allocating whether the value holds a name at
	// all, which most values do not; the matcher then finds where (nil
	// when the list is too big for its table).
	pre *litDFA
	// anywhere matches names anywhere, as CRS does, but for a dot file's
	// name at the tail of a longer name.
	anywhere bool
	// arg: the value is not the requested path; an application's own
	// file counts only where the value reaches out of its tree.
	arg bool
}

// fileNameOpFor returns the constructor of a fileNameOp that matches
// names anywhere (as CRS does) and reads values that are not the
// requested path (arg), as given.
func fileNameOpFor(anywhere, arg bool) func(plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	return func(opts plugintypes.OperatorOptions) (plugintypes.Operator, error) {
		op, err := newFileNameOp(opts)
		if err != nil {
			return nil, err
		}
		op.(*fileNameOp).anywhere, op.(*fileNameOp).arg = anywhere, arg
		return op, nil
	}
}

var (
	newOSFileOp      = fileNameOpFor(true, false)
	newArgFileNameOp = fileNameOpFor(false, true)
	newArgOSFileOp   = fileNameOpFor(true, true)
)

// osFilesByName are the listed names without a directory that are the
// operating system's or a system service's own files wherever they are
// named: Windows' boot and initialisation files, MySQL's server
// configuration.
var osFilesByName = map[string]bool{
	"boot.ini": true, "win.ini": true, "system.ini": true,
	"my.cnf": true, "mysql.cnf": true, "debian.cnf": true, "mysqldump.cnf": true,
}

// maxAppFileDepth is how many directories deep in the requested path an
// application's own file counts as one of the site's ("/app/lib/config.json";
// not "/pkgs/@ali/widget/1.0.2/config.json").
const maxAppFileDepth = 2

// appFile reports whether a listed name is an application's own file
// named bare: no directory, not a dot file, not one of the operating
// system's own files ("config.php", "package.json", "wp-config.").
func appFile(name string) bool {
	name = strings.TrimPrefix(name, "/")
	return name != "" && name[0] != '.' && !strings.ContainsAny(name, "/ ") && !osFilesByName[name]
}

// reachesOut reports whether a value names a file outside the
// application's tree or through something other than a plain name: a
// traversal ("../", "..\"), a URL scheme or stream wrapper at the start
// ("file:", "php://", "phar:", "zip:"; not a web address, whose files are
// the other site's), a Windows drive ("c:\", "c:/") or a NUL byte.
func reachesOut(v string) bool {
	if strings.Contains(v, "../") || strings.Contains(v, "..\\") || strings.IndexByte(v, 0) >= 0 {
		return true
	}
	v = strings.TrimLeft(v, " \t")
	for i := 0; i < len(v) && i < 32; i++ {
		c := v[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			continue
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '.' || c == '-'):
			continue
		case c == ':' && i > 0:
			// "c:" is a drive only with a separator after it.
			if i == 1 {
				return len(v) > 2 && (v[2] == '/' || v[2] == '\\')
			}
			// A scheme is followed by its address, not by a space
			// ("Note: see config.php").
			s := strings.ToLower(v[:i])
			return i+1 < len(v) && v[i+1] != ' ' && v[i+1] != '\t' && s != "http" && s != "https"
		}
		return false
	}
	return false
}

func newFileNameOp(opts plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	if opts.Root == nil {
		return nil, fmt.Errorf("waf: moatFileNameFromFile %q: no rule file system", opts.Arguments)
	}
	data, err := fs.ReadFile(opts.Root, opts.Arguments)
	if err != nil {
		return nil, fmt.Errorf("waf: moatFileNameFromFile: %w", err)
	}
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || l[0] == '#' {
			continue
		}
		names = append(names, strings.ToLower(l))
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("waf: moatFileNameFromFile %q: no names", opts.Arguments)
	}
	b := ahocorasick.NewAhoCorasickBuilder(ahocorasick.Opts{
		AsciiCaseInsensitive: true,
		MatchKind:            ahocorasick.StandardMatch,
	})
	return &fileNameOp{names: names, matcher: b.Build(names), pre: newLitDFA(names, true, maxPhraseCells)}, nil
}

func (o *fileNameOp) Evaluate(tx plugintypes.TransactionState, value string) bool {
	if o.pre != nil && !o.pre.contains(value) {
		return false
	}
	it := o.matcher.IterOverlapping(value)
	out := 0 // reachesOut(value), once: 0 not yet known, 1 yes, 2 no
	for m := it.Next(); m != nil; m = it.Next() {
		name := o.names[m.Pattern()]
		// A dot file's name (".profile", not the extension ".sql.z" of a
		// database dump, which follows a name on purpose) after a name
		// byte is the tail of another file's name.
		dotFile := name[0] == '.' && !strings.Contains(name[1:], ".")
		if m.Start() > 0 && nameByte(value[m.Start()-1]) && (dotFile || !o.anywhere && name[0] != '/' && name[0] != '.') {
			continue
		}
		if last := name[len(name)-1]; !o.anywhere && m.End() < len(value) && nameByte(last) && nameByte(value[m.End()]) && !strings.Contains(name[1:], ".") {
			// The name goes on: ".history" in ".historyPopup.js",
			// ".pass" in "www.passport". (Names with an extension of
			// their own are prefixes on purpose: ".sql.z" stands for
			// ".sql.zip" and ".sql.zst".)
			continue
		}
		if !o.arg && !o.anywhere && appFile(name) && (m.End() < len(value) && value[m.End()] == '/' || strings.Count(value[:m.Start()], "/") > maxAppFileDepth+1) {
			// In the requested path, an application's own file is the
			// file served only as the last segment: followed by more
			// path it is a directory's name or a route's parameter
			// ("/files/config.asp/view"). And only near the web root,
			// where a project's root is served when it should not be
			// and where scanners look for it: deeper, it is one package's
			// manifest among many served as static content (a CDN's
			// "/npm/pkg@1.0.2/package.json", an extension gallery's).
			continue
		}
		if o.arg && appFile(name) {
			if out == 0 {
				out = 2
				if reachesOut(value) {
					out = 1
				}
			}
			if out == 2 {
				continue
			}
		}
		if o.arg && osFileInProse(value, name) {
			continue
		}
		if tx != nil && tx.Capturing() {
			tx.CaptureField(0, value[m.Start():m.End()])
		}
		return true
	}
	return false
}

func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}
