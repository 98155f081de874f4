package waf

import (
	"reflect"
	"regexp"
	"regexp/syntax"
	"strings"
	"unsafe"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types/variables"
)

// Rules that read TX by key regex alone. CRS's 922110 reads
//
//	SecRule TX:/MULTIPART_HEADERS_CONTENT_TYPES_*/ "!@rx ^(?:…)$" "id:922110,phase:2,…"
//
// and Coraza, which lower-cases the regex (TX's keys are), runs it on
// every key of TX on every request, with the rule's bookkeeping: 3-9%
// of a request. A rule with no value does nothing whatever its
// operator, so the gate removes such a rule where it finds that no key
// the rule's regexes match can be in TX when it runs. TX's keys come
// from:
//
//   - the resolver's constants, moat's Go code (txGoWrites), and Coraza
//     itself (the capture keys 0-10, @rbl's httpbl_msg): known at load,
//     and one a regex matches leaves the rule to Coraza; so does a regex
//     that may match a key of digits alone, which every capture writes;
//   - setvars of the rules that run before it (every rule of an earlier
//     phase, those of its own phase before it): a literal key a regex
//     matches, or a key built from a macro (unless each regex is
//     anchored to literal text that the key's own text before the
//     macro rules out), makes that rule a writer,
//     and the reader is decided only on requests where the gate removed
//     each writer in this pass (CRS's 922150, whose key is
//     multipart_headers_content_types_%{tx.multipart_headers_content_counter},
//     on a request without multipart part headers). A writer the pass
//     could not remove (one of an earlier phase, or before the gate)
//     leaves the reader to Coraza on every request;
//   - but a key built as literal text and %{tx.0}, by the first link of
//     a rule that captures with an @rx the gate can ask (CRS's 920450,
//     tx.header_name_920450_%{tx.0} for each request header name, in
//     phase 1): the key each of that link's values would make, its
//     pattern's capture after the link's transformations, is made here
//     and asked of the regexes, as Coraza would lower-case it to set it.
//     A header whose name holds multipart_headers_content_types gives
//     922110 a key to read, and keeps it; without one, whether the
//     writer ran or not, it wrote no key the reader reads.
//
// A reader with a chain, a count (&TX:/re/ is 0 without a value, which
// an operator may match), or another variable is not decided so.

// txKeyReader is the gate's view of such a rule.
type txKeyReader struct {
	rxs   []*regexp.Regexp
	needs []*necessity // each regex's key test (keyneed.go), nil: none
	// writers: the rules that may write a key rxs match, which this
	// pass must have removed.
	writers []int
	// keyed: the writers of literal text and %{tx.0}, whose keys are
	// made here.
	keyed []keyedWriter
}

// keyedWriter is the first link of a rule that captures and writes
// TX:<prefix><TX:0> for each value it matches.
type keyedWriter struct {
	re     *rxOp
	prefix string // lower case ASCII
	sels   []int
	node   int
	// caseOnly: the link's transformations are lowercase alone and its
	// pattern matches every value whole (920450's), so that on an ASCII
	// value the key is prefix and the value but for the case of its
	// letters, which the regexes' key tests read in any case: the value
	// is not lower-cased for them.
	caseOnly bool
}

// corazaTXWrites are the TX keys Coraza writes itself, captures apart.
var corazaTXWrites = []string{"httpbl_msg"}

// keyReader returns the gate's view of rule r (the rule set's at-th, in
// phase) when it reads TX by key regex alone, nil when it does not or
// when it may find a key the gate cannot know of.
func (p *gatePlan) keyReader(r reflect.Value, at, phase int, nodeOf map[[2]uintptr]int, selOf map[gateSelector]int) (*gateRule, error) {
	id, err := intField(r, "ID_")
	if err != nil || id <= 0 || at >= len(p.all) || p.all[at].v.UnsafeAddr() != r.UnsafeAddr() {
		return nil, err
	}
	if r.FieldByName("HasChain").Bool() || r.FieldByName("operator").IsNil() {
		return nil, nil
	}
	vars := r.FieldByName("variables")
	if vars.Len() == 0 {
		return nil, nil
	}
	kr := &txKeyReader{}
	for i := range vars.Len() {
		v := vars.Index(i)
		krx := v.FieldByName("KeyRx")
		if v.FieldByName("Count").Bool() || variables.RuleVariable(v.FieldByName("Variable").Uint()) != variables.TX || krx.IsNil() {
			return nil, nil
		}
		rx := exported(krx).Interface().(*regexp.Regexp)
		need := newKeyNecessity(rx)
		if need == nil || !nonDigitLiterals(need) {
			return nil, nil
		}
		kr.rxs, kr.needs = append(kr.rxs, rx), append(kr.needs, need)
	}
	for _, keys := range [][]string{p.constKeys, txGoWrites, corazaTXWrites} {
		for _, k := range keys {
			if kr.reads(k) {
				return nil, nil
			}
		}
	}
	for _, prefix := range txGoWriteLevels {
		if kr.mayReadNumbered(prefix) {
			return nil, nil
		}
	}
	for j, w := range p.all {
		if w.phase < 1 || w.phase > phase || w.phase == phase && j >= at {
			continue
		}
		if ok, err := kr.addWriter(p, w, nodeOf, selOf); !ok || err != nil {
			return nil, err
		}
	}
	return &gateRule{id: id, keys: kr}, nil
}

// nonDigitLiterals reports whether every key need passes holds a byte
// that is neither a digit nor a minus sign (the capture keys and the
// numbers moat's code writes are made of those): need has literals,
// each holding such a byte.
func nonDigitLiterals(need *necessity) bool {
	if len(need.lits) == 0 {
		return false
	}
	for _, l := range need.lits {
		if strings.Trim(l, "-0123456789") == "" {
			return false
		}
	}
	return true
}

// mayReadNumbered reports whether one of k's regexes may match a key of
// prefix (lower case) and a number: whether one of its key test's
// literals may be found in such a key (nonDigitLiterals has made sure
// that none is found within the number alone).
func (k *txKeyReader) mayReadNumbered(prefix string) bool {
	number := func(s string) bool { return strings.Trim(s, "-0123456789") == "" }
	for _, need := range k.needs {
		for _, l := range need.lits {
			if need.fold {
				l = strings.ToLower(l)
			}
			if strings.Contains(prefix, l) {
				return true
			}
			for j := range len(prefix) {
				if rest, ok := strings.CutPrefix(l, prefix[j:]); ok && number(rest) {
					return true
				}
			}
		}
	}
	return false
}

// mayReadPrefixed reports whether one of k's regexes may match a key
// that begins with prefix (lower case): each that may not is anchored
// at the start of the key to literal text that neither begins prefix
// nor is begun by it.
func (k *txKeyReader) mayReadPrefixed(prefix string) bool {
	for _, rx := range k.rxs {
		lit, ok := startLiteral(rx)
		if !ok || strings.HasPrefix(prefix, lit) || strings.HasPrefix(lit, prefix) {
			return true
		}
	}
	return false
}

// startLiteral returns the literal text (matched as written) that
// every match of rx begins with at the start of the input, when rx is
// anchored there (^ without the m flag, or \A) and then begins with
// such text.
func startLiteral(rx *regexp.Regexp) (string, bool) {
	re, err := syntax.Parse(rx.String(), syntax.Perl)
	if err != nil || re.Op != syntax.OpConcat || len(re.Sub) < 2 || re.Sub[0].Op != syntax.OpBeginText {
		return "", false
	}
	if l := re.Sub[1]; l.Op == syntax.OpLiteral && l.Flags&syntax.FoldCase == 0 {
		return string(l.Rune), true
	}
	return "", false
}

// reads reports whether one of k's regexes matches key as TX holds it.
func (k *txKeyReader) reads(key string) bool {
	for _, rx := range k.rxs {
		if rx.MatchString(key) {
			return true
		}
	}
	return false
}

// addWriter adds rule w to k's writers (or keyed writers) when one of
// its setvars may write a key k reads; false when w is such a writer
// with no ID (the gate removes none), which leaves k's rule to Coraza.
func (k *txKeyReader) addWriter(p *gatePlan, w *rrule, nodeOf map[[2]uintptr]int, selOf map[gateSelector]int) (bool, error) {
	writer := false
	for link, head := w.v, true; ; head = false {
		acts := link.FieldByName("actions")
		for i := range acts.Len() {
			a := acts.Index(i)
			if a.FieldByName("Name").String() != "setvar" {
				continue
			}
			fn, _ := exported(a.FieldByName("Function")).Interface().(plugintypes.Action)
			sv, prefix, err := readSetvar(fn)
			if err != nil {
				return false, err
			}
			switch {
			case sv != nil:
				writer = writer || k.reads(sv.key)
			case !k.mayReadPrefixed(prefix):
			case head:
				kw, err := keyedWriterOf(p, w, fn, nodeOf, selOf)
				if err != nil {
					return false, err
				}
				if kw == nil {
					writer = true
				} else {
					k.keyed = append(k.keyed, *kw)
				}
			default:
				writer = true
			}
		}
		next := link.FieldByName("Chain")
		if next.IsNil() {
			break
		}
		link = next.Elem()
	}
	if !writer {
		return true, nil
	}
	k.writers = append(k.writers, w.id)
	return w.id > 0, nil
}

// keyedWriterOf returns the keyed writer that setvar fn of rule w's first
// link makes, or nil when it is not of that form: the key literal ASCII
// text and %{tx.0}, the link a capturing, unnegated @rx the gate asks
// (TX:0 is then its match on the value the setvar runs for), reading no
// count, not multiMatch.
func keyedWriterOf(p *gatePlan, w *rrule, fn plugintypes.Action, nodeOf map[[2]uintptr]int, selOf map[gateSelector]int) (*keyedWriter, error) {
	prefix, named, ok := tx0Key(fn)
	if !ok || !named || hasNonASCII(prefix) || w.id <= 0 || !w.v.FieldByName("Capture").Bool() {
		return nil, nil
	}
	gr, err := gateTest(w.v, w.id, w.phase, p, nodeOf, selOf)
	if gr == nil || err != nil {
		return nil, err
	}
	re, ok := gr.op.(*rxOp)
	if !ok || gr.neg || gr.multiMatch || re.std == nil || re.std.NumSubexp() != 0 {
		return nil, nil
	}
	for _, s := range gr.sels {
		if p.selectors[s].count {
			return nil, nil
		}
	}
	caseOnly := re.whole
	for n := gr.node; n != 0; n = p.nodes[n].parent {
		caseOnly = caseOnly && transformationName(p.nodes[n].fn) == corazaTransformations+"lowerCase"
	}
	return &keyedWriter{re: re, prefix: prefix, sels: gr.sels, node: gr.node, caseOnly: caseOnly}, nil
}

// keysMayMatch reports whether a key k reads may be in TX when its rule
// runs: a writer this pass left in the transaction, or a key a keyed
// writer would make from one of its values.
func (s *gateState) keysMayMatch(k *txKeyReader) bool {
	for _, id := range k.writers {
		if !s.removedHere(id) {
			return true
		}
	}
	for i := range k.keyed {
		w := &k.keyed[i]
		for _, sel := range w.sels {
			for _, vi := range s.values(sel) {
				if v := s.vals[vi]; w.caseOnly && !hasNonASCII(v) && !s.keyRead(k, w.prefix, v, false) {
					continue
				}
				c0, ok := w.re.capture0(s.transformed(w.node, vi))
				if ok && s.keyRead(k, w.prefix, c0, true) {
					return true
				}
			}
		}
	}
	return false
}

// keyRead reports whether one of k's regexes matches the key prefix+c0
// as Coraza's setvar lower-cases it and TX keeps it; each regex's key
// test is asked first, of the key as made (it reads literals in any
// case). Without exact, only the key tests are asked.
func (s *gateState) keyRead(k *txKeyReader, prefix, c0 string, exact bool) bool {
	s.kbuf = append(append(s.kbuf[:0], prefix...), c0...)
	key := unsafe.String(unsafe.SliceData(s.kbuf), len(s.kbuf))
	for i, rx := range k.rxs {
		if k.needs[i].mayMatchKey(key) && (!exact || rx.MatchString(strings.ToLower(strings.ToLower(key)))) {
			return true
		}
	}
	return false
}
