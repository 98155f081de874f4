package waf

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	ahocorasick "github.com/petar-dambovaliev/aho-corasick"
)

// pmOp is moat's @pm, @pmFromFile and @pmf, in place of Coraza's. The
// phrases are read exactly as Coraza reads them (the argument lower-cased
// and split on spaces; a file's trimmed lines without blanks and
// comments) and matched in any ASCII case. A rule that only asks whether
// one phrase occurs (no capture: every gated rule and most others) is
// answered by an allocation-free automaton (litDFA); one that captures
// gets Coraza's answer, leftmost-longest matches from the same library
// Coraza uses, up to ten, searched for only in a value the automaton has
// found a phrase in. TestPMEngines compares both answers with Coraza's on
// CRS's phrase lists.
type pmOp struct {
	minLen int
	always bool // an empty phrase: every value of minLen (0) matches
	dfa    *litDFA
	pick   *pickTest // the gate's quick test (nil: none)

	// matcher is the library's leftmost-longest search, as Coraza's @pm
	// runs it, over phrases; for a list without a table (dfa nil) it is
	// built on first use (matcherOnce).
	matcher     ahocorasick.AhoCorasick
	matcherOnce sync.Once
	phrases     []string
}

// buildPM builds the library's matcher over phrases (lower case), in any
// ASCII case; dfa picks its DFA over its NFA (faster, and much larger).
func buildPM(phrases []string, dfa bool) ahocorasick.AhoCorasick {
	b := ahocorasick.NewAhoCorasickBuilder(ahocorasick.Opts{AsciiCaseInsensitive: true, MatchKind: ahocorasick.LeftMostLongestMatch, DFA: dfa})
	return b.Build(phrases)
}

// search is the library's matcher.
func (o *pmOp) search() *ahocorasick.AhoCorasick {
	if o.dfa == nil {
		o.matcherOnce.Do(func() {
			o.matcher = buildPM(o.phrases, true)
		})
	}
	return &o.matcher
}

// pmCache shares the compiled phrase lists between rules and rule sets.
var pmCache sync.Map // string → *pmOp

func newPMOp(opts plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	data := strings.ToLower(opts.Arguments)
	return pmOf("pm:"+data, strings.Split(data, " ")), nil
}

func newPMFromFileOp(opts plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	data, err := phraseFile(opts.Arguments, opts.Path, opts.Root)
	if err != nil {
		return nil, err
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || l[0] == '#' {
			continue
		}
		lines = append(lines, strings.ToLower(l))
	}
	return pmOf("file:"+strings.Join(opts.Path, ",")+opts.Arguments+"\x00"+strings.Join(lines, "\n"), lines), nil
}

func pmOf(key string, phrases []string) *pmOp {
	if o, ok := pmCache.Load(key); ok {
		return o.(*pmOp)
	}
	o := &pmOp{}
	for i, p := range phrases {
		if p == "" {
			o.always = true
		}
		if i == 0 || len(p) < o.minLen {
			o.minLen = len(p)
		}
	}
	if !o.always {
		o.dfa = newLitDFA(phrases, true, maxPhraseCells)
		o.pick = newPickTest(phrases, true, false)
	}
	// Beside a table the library's matcher runs only where the table
	// has found a phrase, to capture, and its NFA does. A list too large
	// for a table is matched by the library alone, on every value, so
	// with its DFA; built on the first value, since the only such list
	// of CRS (php-errors.data, 29 MB of DFA) is a response rule's, which
	// no transaction runs unless responses are inspected. The lists'
	// DFAs held 60 MB of the default rule set's 83 MB of heap, their
	// NFAs beside the tables hold under 3.
	o.phrases = phrases
	if o.dfa != nil {
		o.matcher = buildPM(phrases, false)
	}
	got, _ := pmCache.LoadOrStore(key, o)
	return got.(*pmOp)
}

// phraseFile reads a phrase file as Coraza does: an absolute name from
// the root, a relative one from the first of the rule file's directories
// that holds it.
func phraseFile(name string, dirs []string, root fs.FS) ([]byte, error) {
	if path.IsAbs(name) {
		return fs.ReadFile(root, name)
	}
	if len(dirs) == 0 {
		return nil, errors.New("waf: phrase file " + name + ": no directory to read it from")
	}
	var err error
	for _, d := range dirs {
		var data []byte
		data, err = fs.ReadFile(root, path.Join(d, name))
		if err == nil {
			return data, nil
		}
		if !os.IsNotExist(err) {
			return nil, err
		}
	}
	return nil, err
}

func (o *pmOp) Evaluate(tx plugintypes.TransactionState, value string) bool {
	if len(value) < o.minLen {
		return false
	}
	if !tx.Capturing() {
		if o.always {
			return true
		}
		if o.dfa != nil {
			return o.dfa.contains(value)
		}
		return o.search().Iter(value).Next() != nil
	}
	if o.dfa != nil && !o.dfa.contains(value) {
		return false
	}
	n := 0
	for it := o.search().Iter(value); n < 10; n++ {
		m := it.Next()
		if m == nil {
			break
		}
		tx.CaptureField(n, value[m.Start():m.End()])
	}
	return n > 0
}
