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
// Coraza uses, up to ten. TestPMEngines compares the two on CRS's
// phrase lists.
type pmOp struct {
	minLen  int
	always  bool // an empty phrase: every value of minLen (0) matches
	dfa     *litDFA
	matcher ahocorasick.AhoCorasick
	pick    *pickTest // the gate's quick test (nil: none)
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
	b := ahocorasick.NewAhoCorasickBuilder(ahocorasick.Opts{AsciiCaseInsensitive: true, MatchKind: ahocorasick.LeftMostLongestMatch, DFA: true})
	o.matcher = b.Build(phrases)
	if !o.always {
		o.dfa = newLitDFA(phrases, true, maxPhraseCells)
		o.pick = newPickTest(phrases, true, false)
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
		return o.matcher.Iter(value).Next() != nil
	}
	n := 0
	for it := o.matcher.Iter(value); n < 10; n++ {
		m := it.Next()
		if m == nil {
			break
		}
		tx.CaptureField(n, value[m.Start():m.End()])
	}
	return n > 0
}
