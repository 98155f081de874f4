package waf

import (
	"errors"
	"reflect"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf8"

	"github.com/corazawaf/coraza/v3/experimental/plugins/macro"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types/variables"
)

// Chains whose first link writes TX variables named after what it
// captured, for its second link to read back (CRS's 920450 and 920451,
// the restricted headers):
//
//	SecRule REQUEST_HEADERS_NAMES "@rx ^.*$" "capture,t:lowercase,
//	    setvar:'tx.header_name_920450_%{tx.0}=/%{tx.0}/',chain"
//	    SecRule TX:/^header_name_920450_/ "@within %{tx.restricted_headers_basic}"
//
// The first link matches every header, so the chain is not quiet
// (gatechain.go) and Coraza evaluated it on every request: a capture and
// a setvar per header, then a key regex over all of TX. The gate decides
// it instead when what the first link leaves behind is read by no one
// but the second link, and that link answers false:
//
//   - per value of the first link, the gate runs its pattern, takes the
//     capture (TX:0, the pattern having no group) and makes the key and
//     value the setvar would write; the second link's operator (one the
//     gate may ask: on a constant TX macro) is asked about each value;
//   - the keys written: no other rule writes a key the second link reads
//     (a literal prefix, checked at load against every setvar and the
//     resolver's constants), and no other rule reads one, by key (at
//     load) or by key regex (per request, on the key made: CRS's 922110
//     reads TX:/MULTIPART_HEADERS_CONTENT_TYPES_*/, which a header of
//     such a name would feed), nor TX whole;
//   - TX:0, which the head's capture leaves holding its last value's
//     match: the gate sets it so when it removes the chain, on requests
//     where no rule between the gate and the chain may write TX:0
//     (placeCaptured), so every rule after the chain reads what it would
//     have;
//   - MATCHED_VAR* and the RULE collection: as for any chain decided by a
//     later link (chainSafe).
//
// Where a key would be read or the second link answers true, the chain
// is left to Coraza for that request.
//
// The same goes for a chain whose first link captures into one constant
// key, and whose second link reads that key, transformed (CRS's 920420,
// the allowed content types):
//
//	SecRule REQUEST_HEADERS:Content-Type "@rx ^[^;\s]+" "capture,
//	    setvar:'tx.content_type=|%{tx.0}|',chain"
//	    SecRule TX:content_type "!@within %{tx.allowed_request_content_type}" "t:lowercase"
//
// No other rule may write, read (by key, macro or key regex) that key;
// the gate asks the second link about each value the setvar would write
// (Coraza's link sees the last one only), and leaves TX:0 as the head
// would. It lets the gate decide the chains after it that need the rules
// between the gate and them removed (920450 on a request with a
// Content-Type).

// capturedChain is the gate's view of such a chain.
type capturedChain struct {
	re        *rxOp
	keyPrefix string   // the setvar's key before %{tx.0}, lower case
	val       []string // the setvar's value: literal text, TX:0 between each two
	// constKey: the setvar's key is keyPrefix alone, which the second
	// link reads by name.
	constKey bool
	op       plugintypes.Operator
	neg      bool
	// ts: the second link's transformations.
	ts []plugintypes.Transformation
	// readers: the key regexes of the other rules that read TX.
	readers []*regexp.Regexp
	// before: the rules between the gate and the chain that may write
	// TX:0 (placeCaptured).
	before []*gateRule
}

// tx0Macro is the macro of TX:0, as CRS writes it in any case;
// tx0Named finds TX:0 named in a rule's (lower-case) text in any way.
var (
	tx0Macro = regexp.MustCompile(`(?i)%\{tx[.:]0\}`)
	tx0Named = regexp.MustCompile(`tx[.:]0([^0-9]|$)`)
)

// capturedChain returns gr (the gate's view of chain head r) deciding the
// chain as above, or gr unchanged when the chain is not of that form or
// its effects may be read.
func (p *gatePlan) capturedChain(r reflect.Value, gr *gateRule) (*gateRule, error) {
	if !p.chains || p.all == nil || gr == nil || gr.op == nil || gr.neg || gr.multiMatch || len(gr.links) > 0 || gr.unclocked {
		return gr, nil
	}
	re, ok := gr.op.(*rxOp)
	if !ok || re.std == nil || re.std.NumSubexp() != 0 || !r.FieldByName("Capture").Bool() {
		return gr, nil
	}
	next := r.FieldByName("Chain")
	if next.Kind() != reflect.Pointer || next.IsNil() {
		return gr, nil
	}
	link := next.Elem()
	if after := link.FieldByName("Chain"); after.Kind() != reflect.Pointer || !after.IsNil() || link.FieldByName("MultiMatch").Bool() {
		return gr, nil
	}
	c := &capturedChain{re: re}
	// The head: quiet actions, and one setvar of TX named after TX:0.
	acts := r.FieldByName("actions")
	setvars := 0
	for i := range acts.Len() {
		a := acts.Index(i)
		fn, ok := exported(a.FieldByName("Function")).Interface().(plugintypes.Action)
		if !ok || fn == nil {
			return nil, errors.New("waf: gate: Coraza rule actions not found")
		}
		name := strings.ToLower(a.FieldByName("Name").String())
		if fn.Type() != plugintypes.ActionTypeNondisruptive || quietActions[name] {
			continue
		}
		if name != "setvar" || setvars > 0 {
			return gr, nil
		}
		setvars++
		prefix, named, val, ok := tx0Setvar(fn)
		if !ok {
			return gr, nil
		}
		c.keyPrefix, c.constKey, c.val = prefix, !named, val
	}
	if setvars == 0 {
		return gr, nil
	}
	// The second link: TX by a regex that is a literal prefix of every
	// key the head writes (by the key itself when it is constant), an
	// operator the gate may ask.
	vars, ts := link.FieldByName("variables"), link.FieldByName("transformations")
	if vars.Kind() != reflect.Slice || vars.Len() != 1 || ts.Kind() != reflect.Slice {
		return gr, nil
	}
	for i := range ts.Len() {
		t, _, err := transformationAt(ts, i)
		if err != nil {
			return nil, err
		}
		if t == nil {
			return gr, nil
		}
		c.ts = append(c.ts, t)
	}
	v := vars.Index(0)
	krx := v.FieldByName("KeyRx")
	if v.FieldByName("Count").Bool() || variables.RuleVariable(v.FieldByName("Variable").Uint()) != variables.TX {
		return gr, nil
	}
	var lit string
	if c.constKey {
		lit = c.keyPrefix
		if !krx.IsNil() || !strings.EqualFold(v.FieldByName("KeyStr").String(), lit) || lit == "" || captureKey(lit) {
			return gr, nil
		}
	} else {
		if krx.IsNil() {
			return gr, nil
		}
		own := exported(krx).Interface().(*regexp.Regexp)
		l, ok := anchoredLiteral(own.String())
		if !ok || l == "" || !strings.HasPrefix(c.keyPrefix, l) || captureKey(l[:1]) {
			return gr, nil
		}
		lit = l
	}
	op, neg, err := p.askableOp(link)
	if op == nil || err != nil {
		return gr, err
	}
	if _, ok := op.(budgetOp); ok {
		return gr, nil
	}
	c.op, c.neg = op, neg
	head := r.UnsafeAddr()
	for _, rr := range p.all {
		// The chain's own second link writes only when it matches,
		// when the chain is Coraza's.
		if rr.v.UnsafeAddr() != head && !p.othersSpare(rr, lit, c) {
			return gr, nil
		}
	}
	// A ctl that removes the chain or its targets would leave TX:0
	// otherwise; so would an exception to its variables.
	for i := range r.FieldByName("variables").Len() {
		if r.FieldByName("variables").Index(i).FieldByName("Exceptions").Len() > 0 {
			return gr, nil
		}
	}
	for _, rr := range p.all {
		if rr.v.UnsafeAddr() != head {
			continue
		}
		for _, other := range p.all {
			for _, ctl := range other.ctlRm {
				if ctlHits(ctl.kind, ctl.target, rr) {
					return gr, nil
				}
			}
		}
	}
	for _, k := range p.constKeys {
		if strings.HasPrefix(k, lit) && (!c.constKey || k == lit) {
			return gr, nil
		}
	}
	if c.constKey {
		// The one key is known: the key regexes are asked here.
		for _, rx := range c.readers {
			if rx.MatchString(lit) {
				return gr, nil
			}
		}
		c.readers = nil
	}
	gr.captured = c
	return gr, nil
}

// tx0Setvar reads a setvar of TX whose key is literal text, then
// %{tx.0} when named, and whose value is literal text (not empty, and not
// starting as an arithmetic one) and TX:0.
func tx0Setvar(fn plugintypes.Action) (prefix string, named bool, val []string, ok bool) {
	prefix, named, ok = tx0Key(fn)
	if !ok {
		return "", false, nil, false
	}
	vv := setvarField(fn, "value")
	if vv.Kind() != reflect.Interface {
		return "", false, nil, false
	}
	vm, _ := exported(vv).Interface().(macro.Macro)
	if vm == nil {
		return "", false, nil, false
	}
	val = tx0Macro.Split(vm.String(), -1)
	for _, part := range val {
		if strings.Contains(part, "%{") {
			return "", false, nil, false
		}
	}
	if len(val[0]) == 0 || val[0][0] == '+' || val[0][0] == '-' {
		return "", false, nil, false
	}
	return prefix, named, val, true
}

// tx0Key reads the key of a setvar of TX that is literal text, then
// %{tx.0} when named; prefix is the text, lower case.
func tx0Key(fn plugintypes.Action) (prefix string, named, ok bool) {
	k, col := setvarField(fn, "key"), setvarField(fn, "collection")
	if k.Kind() != reflect.Interface || col.Kind() != reflect.Uint8 || variables.RuleVariable(col.Uint()) != variables.TX {
		return "", false, false
	}
	km, _ := exported(k).Interface().(macro.Macro)
	if km == nil {
		return "", false, false
	}
	key := km.String()
	end := len(key)
	if loc := tx0Macro.FindStringIndex(key); loc != nil {
		if loc[1] != len(key) {
			return "", false, false
		}
		end, named = loc[0], true
	}
	if strings.Contains(key[:end], "%{") {
		return "", false, false
	}
	return strings.ToLower(key[:end]), named, true
}

// setvarField is field name of setvar action fn (Coraza's setvarFn),
// invalid when fn has none.
func setvarField(fn plugintypes.Action, name string) reflect.Value {
	f := reflect.ValueOf(fn)
	if f.Kind() == reflect.Pointer {
		f = f.Elem()
	}
	if f.Kind() != reflect.Struct {
		return reflect.Value{}
	}
	return f.FieldByName(name)
}

// anchoredLiteral returns lit when re is "^" and the literal text lit.
func anchoredLiteral(re string) (string, bool) {
	rest, ok := strings.CutPrefix(re, "^")
	if !ok {
		return "", false
	}
	x, err := syntax.Parse(rest, syntax.Perl)
	if err != nil {
		return "", false
	}
	switch x.Op {
	case syntax.OpLiteral:
		if x.Flags&syntax.FoldCase != 0 {
			return "", false
		}
		return string(x.Rune), true
	case syntax.OpEmptyMatch:
		return "", true
	}
	return "", false
}

// othersSpare reports whether rule rr (not the chain's) neither writes a
// TX key beginning with lit nor reads one beginning with c.keyPrefix but
// by a key regex, which it adds to c.readers. For a constant key, lit
// and c.keyPrefix are that key, and only it counts.
func (p *gatePlan) othersSpare(rr *rrule, lit string, c *capturedChain) bool {
	hits := func(key, prefix string) bool {
		if c.constKey {
			return key == prefix
		}
		return strings.HasPrefix(key, prefix)
	}
	for _, sv := range rr.setvars {
		if hits(sv.key, lit) {
			return false
		}
	}
	for _, q := range rr.dynKeys {
		if !c.constKey && strings.HasPrefix(q, lit) || strings.HasPrefix(lit, q) {
			return false
		}
	}
	for _, m := range macroRx.FindAllStringSubmatch(rr.raw, -1) {
		if col, key, ok := strings.Cut(m[1], "."); ok && col == "tx" && hits(key, c.keyPrefix) {
			return false
		}
	}
	for link := rr.v; ; {
		vars := link.FieldByName("variables")
		for i := range vars.Len() {
			v := vars.Index(i)
			if variables.RuleVariable(v.FieldByName("Variable").Uint()) != variables.TX {
				continue
			}
			switch krx := v.FieldByName("KeyRx"); {
			case !krx.IsNil():
				c.readers = append(c.readers, exported(krx).Interface().(*regexp.Regexp))
			case v.FieldByName("KeyStr").String() == "":
				return false
			case hits(strings.ToLower(v.FieldByName("KeyStr").String()), c.keyPrefix):
				return false
			}
		}
		next := link.FieldByName("Chain")
		if next.IsNil() {
			return true
		}
		link = next.Elem()
	}
}

// capture0 is TX:0 as re's Evaluate sets it on a capturing match of
// value, with the engine it would use.
func (o *rxOp) capture0(value string) (string, bool) {
	if o.whole {
		return value, true
	}
	if !o.need.mayMatch(value) {
		return "", false
	}
	var m []int
	switch {
	case o.bin != nil:
		m = o.bin.FindStringIndex(value)
	case o.re2 != nil && len(value) >= re2MinLen && utf8.ValidString(value):
		m = o.re2.FindStringIndex(value)
	default:
		m = o.std.FindStringIndex(value)
	}
	if m == nil {
		return "", false
	}
	return value[m[0]:m[1]], true
}

// capturedMayMatch reports whether chain r (see capturedChain) may match
// or leave something another rule reads: whether a rule before it that
// may write TX:0 may match, or for one of the head's values its pattern
// matches and the key its setvar would write is one another rule's key
// regex reads, or the second link's operator answers true for the value
// written. When it reports false (the gate removes the chain), it sets
// TX:0 to the head's last capture, as Coraza's evaluation would have
// left it: the head's values are read in the order the collection hands
// them out (a map's, which differs from one reading to the next, for the
// gate as for Coraza).
func (s *gateState) capturedMayMatch(r *gateRule) bool {
	c := r.captured
	for _, b := range c.before {
		// Each was decided earlier in this pass.
		if !s.removedHere(b.id) {
			return true
		}
	}
	var b strings.Builder
	last, captured := "", false
	for _, k := range r.sels {
		for _, vi := range s.values(k) {
			c0, ok := c.re.capture0(s.transformed(r.node, vi))
			if !ok {
				continue
			}
			last, captured = c0, true
			if len(c.readers) > 0 {
				key := strings.ToLower(c.keyPrefix + c0)
				for _, rx := range c.readers {
					if rx.MatchString(key) {
						return true
					}
				}
			}
			b.Reset()
			for i, part := range c.val {
				if i > 0 {
					b.WriteString(c0)
				}
				b.WriteString(part)
			}
			if c.op.Evaluate(s.tx, c.transform(b.String())) != c.neg {
				return true
			}
		}
	}
	if captured {
		s.tx.Variables().TX().SetIndex("0", 0, last)
	}
	return false
}

// transform is v after the second link's transformations, as Coraza's
// executeTransformations makes it (an erroring step leaves the value as
// it was).
func (c *capturedChain) transform(v string) string {
	for _, t := range c.ts {
		if out, _, err := t(v); err == nil {
			v = out
		}
	}
	return v
}

// placeCaptured finds, for each chain decided with what its first link
// would write, the rules of its phase between the gate and it that may
// write TX:0 (a capture of any link, a setvar) or read it: each must be one the
// gate decides, and the chain is decided only on requests where the gate
// removes them all, so that the TX:0 the gate writes for it
// (capturedMayMatch) is what its place in the phase would see. A chain
// with such a rule the gate does not decide is left to Coraza.
func (p *gatePlan) placeCaptured() {
	index := map[int]int{} // rule ID → place in p.all
	for i, rr := range p.all {
		if rr.id > 0 {
			index[rr.id] = i
		}
	}
	for g, list := range p.after {
		gi, ok := index[g]
		for i := range list {
			c := list[i].captured
			if c == nil {
				continue
			}
			hi, found := index[list[i].id]
			if !ok || !found || hi < gi {
				list[i].captured = nil
				continue
			}
			at := map[int]int{}
			for b := range list[:i] {
				at[list[b].id] = b
			}
			for _, rr := range p.all[gi+1 : hi] {
				if rr.phase != p.all[hi].phase || !capturesAny(rr) && !writesKey(rr, "0") && !tx0Named.MatchString(rr.raw) {
					continue
				}
				b, ok := at[rr.id]
				if !ok || rr.id <= 0 {
					c = nil
					break
				}
				c.before = append(c.before, &list[b])
			}
			list[i].captured = c
		}
	}
}

// capturesAny reports whether a link of rule rr captures.
func capturesAny(rr *rrule) bool {
	for link := rr.v; ; {
		if link.FieldByName("Capture").Bool() {
			return true
		}
		next := link.FieldByName("Chain")
		if next.IsNil() {
			return false
		}
		link = next.Elem()
	}
}

// capturedHeads returns the IDs of the chains decided as capturedChain
// says.
func (p *gatePlan) capturedHeads() []int {
	var ids []int
	for _, list := range p.after {
		for _, r := range list {
			if r.captured != nil {
				ids = append(ids, r.id)
			}
		}
	}
	return ids
}

// dropCaptured leaves those chains to Coraza: for a rule set whose
// route exclusions apply to it directly, which could remove one.
func (p *gatePlan) dropCaptured() {
	for _, list := range p.after {
		for i := range list {
			list[i].captured = nil
		}
	}
}
