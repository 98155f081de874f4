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
}

func newOSFileOp(opts plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	op, err := newFileNameOp(opts)
	if err != nil {
		return nil, err
	}
	op.(*fileNameOp).anywhere = true
	return op, nil
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
