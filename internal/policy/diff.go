package policy

import (
	"fmt"
	"net/netip"
	"reflect"
	"sort"
	"strings"
)

// Edge is one (source, destination, port) triple, such as a flow seen
// recently.
type Edge struct {
	Src  string `json:"src"`
	Dst  string `json:"dst"`
	Port int    `json:"port"`
}

func (e Edge) String() string { return fmt.Sprintf("%s → %s:%d", e.Src, e.Dst, e.Port) }

// RuleChange is a rule whose name stayed and whose content changed.
type RuleChange struct {
	Old, New Rule
}

// EdgeChange is a recent flow whose decision changes.
type EdgeChange struct {
	Edge     Edge
	Old, New Decision
}

// Delta is what applying a new policy would change.
type Delta struct {
	OldVersion, NewVersion string
	Added, Removed         []Rule
	Changed                []RuleChange
	// PeerModes lists services whose peer mode changes, as "name: old → new".
	PeerModes []string
	// ModeChange is "enforce → audit" or similar, or "".
	ModeChange string
	// EgressAdded and EgressRemoved are egress rules that appear or go (a
	// changed one is both).
	EgressAdded, EgressRemoved []EgressRule
	// NowDenied lists recent flows that were let through and would now be
	// refused; NowAllowed the reverse; NowAudited flows that would now pass
	// only because of audit mode.
	NowDenied, NowAllowed, NowAudited []EdgeChange
}

// Empty reports whether nothing changes.
func (d Delta) Empty() bool {
	return len(d.Added)+len(d.Removed)+len(d.Changed)+len(d.PeerModes)+len(d.NowDenied)+len(d.NowAllowed)+len(d.NowAudited)+len(d.EgressAdded)+len(d.EgressRemoved) == 0 && d.ModeChange == ""
}

// Diff compares two policies (old may be nil: nothing applied, deny all) and
// replays recent flows against both.
func Diff(old, new *Table, recent []Edge) Delta {
	d := Delta{OldVersion: old.Version(), NewVersion: new.Version()}
	oldRules := map[string]Rule{}
	for _, r := range old.Rules() {
		oldRules[r.Name] = r
	}
	newNames := map[string]bool{}
	for _, r := range new.Rules() {
		newNames[r.Name] = true
		o, ok := oldRules[r.Name]
		switch {
		case !ok:
			d.Added = append(d.Added, r)
		case !reflect.DeepEqual(o, r):
			d.Changed = append(d.Changed, RuleChange{Old: o, New: r})
		}
	}
	for _, r := range old.Rules() {
		if !newNames[r.Name] {
			d.Removed = append(d.Removed, r)
		}
	}
	oldEgress := map[string]EgressRule{}
	for _, r := range old.EgressRules() {
		oldEgress[r.Name] = r
	}
	newEgress := map[string]bool{}
	for _, r := range new.EgressRules() {
		newEgress[r.Name] = true
		if o, ok := oldEgress[r.Name]; !ok || !reflect.DeepEqual(o, r) {
			d.EgressAdded = append(d.EgressAdded, r)
		}
		if o, ok := oldEgress[r.Name]; ok && !reflect.DeepEqual(o, r) {
			d.EgressRemoved = append(d.EgressRemoved, o)
		}
	}
	for _, r := range old.EgressRules() {
		if !newEgress[r.Name] {
			d.EgressRemoved = append(d.EgressRemoved, r)
		}
	}
	if old.Mode() != new.Mode() {
		d.ModeChange = fmt.Sprintf("%s → %s", old.Mode(), new.Mode())
	}
	svcs := map[string]bool{}
	if old != nil {
		for s := range old.services {
			svcs[s] = true
		}
	}
	if new != nil {
		for s := range new.services {
			svcs[s] = true
		}
	}
	for s := range svcs {
		if o, n := old.PeerMode(s), new.PeerMode(s); o != n {
			d.PeerModes = append(d.PeerModes, fmt.Sprintf("%s: %s → %s", s, o, n))
		}
	}
	sort.Strings(d.PeerModes)
	seen := map[Edge]bool{}
	for _, e := range recent {
		if seen[e] {
			continue
		}
		seen[e] = true
		o, n := old.Decide(e.Src, e.Dst, e.Port), new.Decide(e.Src, e.Dst, e.Port)
		c := EdgeChange{Edge: e, Old: o, New: n}
		switch {
		case o.Allow && !n.Allow:
			d.NowDenied = append(d.NowDenied, c)
		case !o.Allow && n.Allow && !n.Audit:
			d.NowAllowed = append(d.NowAllowed, c)
		case !o.Audit && n.Audit:
			d.NowAudited = append(d.NowAudited, c)
		}
	}
	return d
}

// String renders the delta for a terminal.
func (d Delta) String() string {
	var b strings.Builder
	short := func(v string) string {
		if len(v) > 12 {
			return v[:12]
		}
		if v == "" {
			return "(none)"
		}
		return v
	}
	fmt.Fprintf(&b, "policy %s → %s\n", short(d.OldVersion), short(d.NewVersion))
	if d.Empty() {
		b.WriteString("no changes\n")
		return b.String()
	}
	if d.ModeChange != "" {
		fmt.Fprintf(&b, "~ mode: %s\n", d.ModeChange)
	}
	for _, r := range d.Added {
		fmt.Fprintf(&b, "+ rule %s\n", r)
	}
	for _, r := range d.Removed {
		fmt.Fprintf(&b, "- rule %s\n", r)
	}
	for _, c := range d.Changed {
		fmt.Fprintf(&b, "~ rule %s\n    now %s\n", c.Old, c.New)
	}
	for _, s := range d.PeerModes {
		fmt.Fprintf(&b, "~ service %s\n", s)
	}
	for _, r := range d.EgressRemoved {
		fmt.Fprintf(&b, "- egress %s\n", r)
	}
	for _, r := range d.EgressAdded {
		fmt.Fprintf(&b, "+ egress %s\n", r)
	}
	for _, c := range d.NowDenied {
		fmt.Fprintf(&b, "! recent flow %s would now be DENIED (was %s by %s)\n", c.Edge, c.Old.Verdict(), c.Old.Rule)
	}
	for _, c := range d.NowAudited {
		fmt.Fprintf(&b, "! recent flow %s would now pass only by audit mode (was %s by %s)\n", c.Edge, c.Old.Verdict(), c.Old.Rule)
	}
	for _, c := range d.NowAllowed {
		fmt.Fprintf(&b, "  recent flow %s would now be allowed by %s\n", c.Edge, c.New.Rule)
	}
	return b.String()
}

// Explain says in words which rule decides src → dst:port and why. A src
// that is an IP address is a plaintext caller at that address; for a
// service src the answer also says who reaches dst in plaintext.
func (t *Table) Explain(src, dst string, port int) string {
	if addr, err := netip.ParseAddr(src); err == nil {
		return t.explainPlaintext(addr, dst, port)
	}
	d := t.Decide(src, dst, port)
	var b strings.Builder
	fmt.Fprintf(&b, "%s → %s:%d: %s (rule %s)\n", src, dst, port, strings.ToUpper(d.Verdict()), d.Rule)
	if d.Allow && !d.Audit {
		r := t.rules[t.ruleIndex(d.Rule)]
		via := src
		if !contains(r.From, src) {
			via = "\"*\" (any authenticated service)"
		}
		fmt.Fprintf(&b, "  rule %q allows %s to reach %s on port %d\n", r.Name, via, dst, port)
		t.plaintextReach(&b, dst, port)
		return b.String()
	}
	if src == "" {
		b.WriteString("  the caller has no identity; no rule can match it\n")
	}
	near := 0
	for _, r := range t.Rules() {
		if r.To != dst || len(r.From) == 0 {
			continue
		}
		near++
		srcOK := contains(r.From, src) || (src != "" && contains(r.From, Wildcard))
		switch {
		case srcOK && !containsInt(r.Ports, port):
			fmt.Fprintf(&b, "  rule %q lets %s reach %s, but only on ports %v\n", r.Name, src, dst, r.Ports)
		case !srcOK:
			fmt.Fprintf(&b, "  rule %q covers %s but only from %v\n", r.Name, dst, r.From)
		}
	}
	if near == 0 {
		fmt.Fprintf(&b, "  no rule names %s as a destination for service callers\n", dst)
	}
	b.WriteString("  nothing allows it, so the default (deny) decides\n")
	t.explainAudit(&b, d, dst)
	t.plaintextReach(&b, dst, port)
	return b.String()
}

func (t *Table) explainAudit(b *strings.Builder, d Decision, dst string) {
	if !d.Audit {
		return
	}
	if t.mode == Audit {
		b.WriteString("  the policy is in audit mode: the connection is let through and logged as would-deny\n")
		return
	}
	i := t.auditDst[dst]
	fmt.Fprintf(b, "  %s is in audit mode (rule %q): the connection is let through and logged as would-deny\n", dst, t.rules[i].Name)
}

// explainPlaintext explains a plaintext caller at addr.
func (t *Table) explainPlaintext(addr netip.Addr, dst string, port int) string {
	var b strings.Builder
	src := "plaintext " + addr.String()
	if t.PeerMode(dst) != Permissive {
		fmt.Fprintf(&b, "%s → %s:%d: DENY (peer mode strict)\n", src, dst, port)
		fmt.Fprintf(&b, "  %s is strict: it accepts mutual TLS only, and no rule can admit a plaintext caller\n", dst)
		return b.String()
	}
	d := t.DecidePlaintext(addr, dst, port)
	fmt.Fprintf(&b, "%s → %s:%d: %s (rule %s)\n", src, dst, port, strings.ToUpper(d.Verdict()), d.Rule)
	if d.Allow && !d.Audit {
		r := t.rules[t.ruleIndex(d.Rule)]
		fmt.Fprintf(&b, "  %s is permissive, and rule %q admits plaintext callers from %s on port %d\n", dst, r.Name, strings.Join(r.FromPlaintext, ", "), port)
		return b.String()
	}
	fmt.Fprintf(&b, "  %s is permissive, but plaintext has no identity: only a rule's from_plaintext can admit it\n", dst)
	t.plaintextReach(&b, dst, port)
	b.WriteString("  nothing admits this address, so the default (deny) decides\n")
	t.explainAudit(&b, d, dst)
	return b.String()
}

// plaintextReach says who reaches dst:port without mutual TLS.
func (t *Table) plaintextReach(b *strings.Builder, dst string, port int) {
	if t.PeerMode(dst) != Permissive {
		fmt.Fprintf(b, "  plaintext: %s is strict; plaintext callers are refused\n", dst)
		return
	}
	any := false
	for _, r := range t.Rules() {
		if r.To == dst && len(r.FromPlaintext) > 0 && containsInt(r.Ports, port) {
			any = true
			fmt.Fprintf(b, "  plaintext: %s is permissive; rule %q admits plaintext callers from %s on port %d\n", dst, r.Name, strings.Join(r.FromPlaintext, ", "), port)
		}
	}
	if !any {
		fmt.Fprintf(b, "  plaintext: %s is permissive, but no rule admits plaintext callers on port %d\n", dst, port)
	}
}

func (t *Table) ruleIndex(name string) int {
	for i, r := range t.rules {
		if r.Name == name {
			return i
		}
	}
	return 0
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func containsInt(xs []int, v int) bool {
	for _, x := range xs {
		if x == v {
			return true
		}
	}
	return false
}
