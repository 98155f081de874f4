//go:build linux

package firewall

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"

	"moat/internal/flow"
)

// Config configures a Manager.
type Config struct {
	// NetNS, when set, is the path of the network namespace to manage
	// (/run/netns/NAME); empty means the process's own.
	NetNS string
	// Node names this node in flow records.
	Node string
	// Flows receives a record for each logged would-drop (or dropped)
	// connection; nil discards them.
	Flows flow.Writer
	// Owner names the local service a uid runs, to attribute outbound
	// drops to a source identity; nil attributes none.
	Owner func(uid int) string
	// LogGroup is the NFLOG group Run reads; zero means DefaultLogGroup.
	// Specs applied should name the same.
	LogGroup uint16
	// Now is the clock of records and pins; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// BypassesChanged, if set, is called when the rules Bypasses returns
	// changed; it must not block.
	BypassesChanged func()
}

// Manager applies Specs to the node's "inet moat" table and reads its log.
// Its methods are safe for concurrent use.
type Manager struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex // guards the fields below
	applied *Spec
	pins    map[netip.AddrPort]time.Time // pinned address → expiry
	// bypasses are the other tables' rules that take packets round the
	// table, as the guard last found them.
	bypasses []Bypass
}

// New returns a Manager; it does not touch the table until Apply.
func New(cfg Config) (*Manager, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{cfg: cfg, log: cfg.Logger, pins: map[netip.AddrPort]time.Time{}}
	c, closeNS, err := m.conn()
	if err != nil {
		return nil, err
	}
	defer closeNS()
	if _, err := c.ListTablesOfFamily(nftables.TableFamilyINet); err != nil {
		return nil, fmt.Errorf("firewall: nftables: %w", err)
	}
	return m, nil
}

// conn opens an nftables connection in the managed namespace.
func (m *Manager) conn() (*nftables.Conn, func(), error) {
	return openConn(m.cfg.NetNS)
}

func openConn(netns string) (*nftables.Conn, func(), error) {
	if netns == "" {
		c, err := nftables.New()
		if err != nil {
			return nil, nil, fmt.Errorf("firewall: nftables: %w", err)
		}
		return c, func() {}, nil
	}
	f, err := os.Open(netns)
	if err != nil {
		return nil, nil, fmt.Errorf("firewall: network namespace: %w", err)
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("firewall: nftables: %w", err)
	}
	return c, func() { f.Close() }, nil
}

func table() *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyINet, Name: Table}
}

// Installed reports whether the node has a moat table now (left by an
// earlier run, or applied by this one).
func (m *Manager) Installed() (bool, error) {
	c, done, err := m.conn()
	if err != nil {
		return false, err
	}
	defer done()
	return tableExists(c)
}

func tableExists(c *nftables.Conn) (bool, error) {
	ts, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, fmt.Errorf("firewall: list tables: %w", err)
	}
	for _, t := range ts {
		if t.Name == Table {
			return true, nil
		}
	}
	return false, nil
}

// Apply replaces the moat table with s in one transaction: the kernel
// holds either the old table or the new one, never a mix, and never none
// (ModeOff, which removes the table, excepted). Pins still valid are
// carried into the new table. Nothing outside the table is touched.
func (m *Manager) Apply(s Spec) error {
	if err := s.Validate(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.apply(s)
}

// apply is Apply with m.mu held. What reaches the kernel is
// m.effective(s).
func (m *Manager) apply(s Spec) error {
	c, done, err := m.conn()
	if err != nil {
		return err
	}
	defer done()
	want := s
	s = m.effective(s)
	if s.Mode == ModeOff {
		ok, err := tableExists(c)
		if err != nil {
			return err
		}
		if ok {
			c.DelTable(table())
			if err := c.Flush(); err != nil {
				return fmt.Errorf("firewall: remove table: %w", err)
			}
		}
		m.applied = &want
		return nil
	}
	// Create-if-absent, delete, create: one batch that replaces whatever
	// was there (even a table of an older layout) atomically.
	c.AddTable(table())
	c.DelTable(table())
	t := c.AddTable(table())
	s4 := &nftables.Set{Table: t, Name: setPins4, KeyType: nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService), Concatenation: true, HasTimeout: true}
	s6 := &nftables.Set{Table: t, Name: setPins6, KeyType: nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetService), Concatenation: true, HasTimeout: true}
	now := m.cfg.Now()
	var e4, e6 []nftables.SetElement
	if s.Egress {
		for ap, exp := range m.pins {
			if left := exp.Sub(now); left > time.Second {
				if ap.Addr().Is4() {
					e4 = append(e4, pinElement(ap, left))
				} else {
					e6 = append(e6, pinElement(ap, left))
				}
			}
		}
	}
	if err := c.AddSet(s4, e4); err != nil {
		return fmt.Errorf("firewall: %w", err)
	}
	if err := c.AddSet(s6, e6); err != nil {
		return fmt.Errorf("firewall: %w", err)
	}
	n4, n6 := noteSets(t)
	rate := dnsRateSet(t)
	for _, set := range []*nftables.Set{n4, n6, rate} {
		if err := c.AddSet(set, nil); err != nil {
			return fmt.Errorf("firewall: %w", err)
		}
	}
	policy := nftables.ChainPolicyAccept
	for _, ch := range chains(s, sets{s4, s6, n4, n6, rate}) {
		chain := c.AddChain(&nftables.Chain{Name: ch.name, Table: t, Type: ch.chainType(),
			Hooknum: ch.hook, Priority: ch.priority, Policy: &policy})
		for _, r := range ch.rules {
			c.AddRule(&nftables.Rule{Table: t, Chain: chain, Exprs: r.exprs, UserData: comment(r.comment)})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("firewall: apply: %w", err)
	}
	m.applied = &want
	return nil
}

// effective is s as it is applied, with m.mu held: while another table
// sets moat's mark (a BypassMark), which any socket's packets may then
// carry, the pins are withheld, so that the egress path's connections
// fail rather than every local user's use them.
func (m *Manager) effective(s Spec) Spec {
	if s.Egress && markForged(m.bypasses) {
		s.Egress, s.pinsWithheld = false, true
	}
	return s
}

func markForged(bs []Bypass) bool {
	return slices.ContainsFunc(bs, func(b Bypass) bool { return b.Kind == BypassMark })
}

// Bypasses returns the other tables' rules that take packets round the
// moat table (they set moat's mark, or notrack what is not loopback's),
// as Guard last found them.
func (m *Manager) Bypasses() []Bypass {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.bypasses)
}

// inspect reads the other tables for bypasses, reports those that came
// and went, and applies the table again when whether moat's mark can be
// forged changed.
func (m *Manager) inspect() error {
	c, done, err := m.conn()
	if err != nil {
		return err
	}
	found, err := bypasses(c)
	done()
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range found {
		if !slices.Contains(m.bypasses, b) {
			m.log.Error("another nftables table takes packets round the host firewall; remove its rule",
				"family", b.Family, "table", b.Table, "chain", b.Chain, "handle", b.Handle, "kind", b.Kind)
		}
	}
	for _, b := range m.bypasses {
		if !slices.Contains(found, b) {
			m.log.Info("a rule of another nftables table that took packets round the host firewall is gone",
				"family", b.Family, "table", b.Table, "chain", b.Chain, "handle", b.Handle, "kind", b.Kind)
		}
	}
	was := markForged(m.bypasses)
	changed := !slices.Equal(found, m.bypasses)
	m.bypasses = found
	if changed && m.cfg.BypassesChanged != nil {
		m.cfg.BypassesChanged()
	}
	if markForged(found) == was || m.applied == nil || m.applied.Mode == ModeOff || !m.applied.Egress {
		return nil
	}
	if !was {
		m.log.Error("egress pins withheld while another table sets moat's mark: the egress path's connections fail until its rule is removed", "mark", fmt.Sprintf("%#x", Mark))
	} else {
		m.log.Info("egress pins admitted again: no other table sets moat's mark")
	}
	return m.apply(*m.applied)
}

// Guard keeps the last applied table in the kernel until ctx ends: when
// another program removes or changes the moat table, its chains or its
// rules (nft flush ruleset, a firewall service's reload), Guard applies
// the Spec again at once, so that the node is not left open. At the
// start and at every change of any table, it reads the other tables for
// rules that take packets round moat's (Bypass), logs each as an error
// and, while one sets moat's mark, withholds the pins. It watches the
// kernel's notices of ruleset changes; if the watch cannot be opened it
// returns the error.
func (m *Manager) Guard(ctx context.Context) error {
	retry := time.Duration(0)
	for {
		events, stop, err := m.watch()
		if err != nil {
			return err
		}
		// A change before the watch began is looked for once now.
		check := true
		// after fires a retry of a failed restore; it stays armed across
		// notices that do not concern the table.
		var after <-chan time.Time
		for ended := false; !ended; {
			if check {
				if err := m.verify(); err != nil {
					retry = min(max(2*retry, 100*time.Millisecond), 5*time.Second)
					m.log.Error("host firewall not verified or not restored after a change by another program; retrying", "err", err, "in", retry)
					after = time.After(retry)
				} else {
					retry, after = 0, nil
				}
				check = false
			}
			select {
			case <-ctx.Done():
				stop()
				return nil
			case <-after:
				after = nil
				check = true
			case evs, ok := <-events:
				// A closed watch (the kernel's notices overflowed) is
				// opened again, and the table checked.
				ended = !ok
				check = !ok || concernsRules(evs)
			}
		}
		stop()
	}
}

// watch subscribes to the kernel's notices of ruleset changes in the
// managed namespace; stop ends the subscription and drains it.
func (m *Manager) watch() (<-chan *nftables.MonitorEvents, func(), error) {
	c, done, err := m.conn()
	if err != nil {
		return nil, nil, err
	}
	mon := nftables.NewMonitor(nftables.WithMonitorAction(nftables.MonitorActionAny), nftables.WithMonitorObject(nftables.MonitorObjectAny))
	events, err := c.AddGenerationalMonitor(mon)
	done()
	if err != nil {
		return nil, nil, fmt.Errorf("firewall: watch the ruleset: %w", err)
	}
	return events, func() {
		mon.Close()
		for range events {
		}
	}, nil
}

// concernsRules reports whether a transaction's changes may touch a
// table, chain or rule, the moat table's or another's (or could not be
// read). Pins, which change set elements only, do not.
func concernsRules(evs *nftables.MonitorEvents) bool {
	if evs == nil {
		return true
	}
	for _, ev := range append(evs.Changes, evs.GeneratedBy) {
		if ev == nil {
			continue
		}
		if ev.Error != nil || ev.Type == nftables.MonitorEventTypeOOB {
			return true
		}
		switch ev.Data.(type) {
		case *nftables.Table, *nftables.Chain, *nftables.Rule:
			return true
		}
	}
	return false
}

// verify reads the other tables for bypasses (inspect), then puts the
// moat table back if it is not whole (reassert); the first error is
// returned, after both ran.
func (m *Manager) verify() error {
	ierr := m.inspect()
	if ierr != nil {
		ierr = fmt.Errorf("firewall: other tables not read: %w", ierr)
	}
	if err := m.reassert(); err != nil {
		return err
	}
	return ierr
}

// reassert applies the last Spec again when the kernel's table is not the
// one it makes.
func (m *Manager) reassert() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.applied == nil || m.applied.Mode == ModeOff {
		return nil
	}
	c, done, err := m.conn()
	if err != nil {
		return err
	}
	ok, err := intact(c, m.effective(*m.applied))
	done()
	if err != nil || ok {
		return err
	}
	m.log.Warn("host firewall table removed or changed by another program; applying it again")
	return m.apply(*m.applied)
}

// sets are the table's sets that rules look up.
type sets struct{ pins4, pins6, notes4, notes6, dnsRate *nftables.Set }

// named are the table's sets as rules name them, for comparing rules
// with the kernel's.
func named() sets {
	return sets{&nftables.Set{Name: setPins4}, &nftables.Set{Name: setPins6}, &nftables.Set{Name: setNotes4}, &nftables.Set{Name: setNotes6}, &nftables.Set{Name: setDNSRate}}
}

// noteSets are the prerouting chain's notes of connections to the node
// that the inbound rules do not admit (preRules): filled by the rules
// themselves, each note for a second.
func noteSets(t *nftables.Table) (n4, n6 *nftables.Set) {
	n4 = &nftables.Set{Table: t, Name: setNotes4, KeyType: nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService),
		Concatenation: true, HasTimeout: true, Dynamic: true, Size: noteSize}
	n6 = &nftables.Set{Table: t, Name: setNotes6, KeyType: nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetService),
		Concatenation: true, HasTimeout: true, Dynamic: true, Size: noteSize}
	return n4, n6
}

// hooked is one base chain of the table and its rules.
type hooked struct {
	name     string
	hook     *nftables.ChainHook
	priority *nftables.ChainPriority
	rules    []rule
	nat      bool // a nat chain; a filter chain otherwise
}

func (h hooked) chainType() nftables.ChainType {
	if h.nat {
		return nftables.ChainTypeNAT
	}
	return nftables.ChainTypeFilter
}

// chains is the table's base chains for s, each with an accepting policy
// (the final rules decide): input, output and forward at the filter
// priority, prerouting before destination NAT, and with a DNS filter the
// nat chain at output that takes other uids' DNS to it (dnsRules) and,
// with ForwardEgress, the nat chain at prerouting that takes the DNS the
// node routes to it (routedDNSRules).
func chains(s Spec, st sets) []hooked {
	out := []hooked{
		{name: chainInput, hook: nftables.ChainHookInput, priority: nftables.ChainPriorityFilter, rules: chainRules(s, true, st)},
		{name: chainOutput, hook: nftables.ChainHookOutput, priority: nftables.ChainPriorityFilter, rules: chainRules(s, false, st)},
		{name: chainForward, hook: nftables.ChainHookForward, priority: nftables.ChainPriorityFilter, rules: forwardRules(s, st.notes4, st.notes6)},
		{name: chainPre, hook: nftables.ChainHookPrerouting, priority: nftables.ChainPriorityMangle, rules: preRules(s, st.notes4, st.notes6)},
	}
	if s.DNSPort != 0 {
		out = append(out, hooked{name: chainDNS, hook: nftables.ChainHookOutput, priority: nftables.ChainPriorityNATDest, rules: dnsRules(s), nat: true})
	}
	if s.DNSPort != 0 && s.forward() == ForwardEgress {
		out = append(out, hooked{name: chainDNSFwd, hook: nftables.ChainHookPrerouting, priority: nftables.ChainPriorityNATDest, rules: routedDNSRules(s), nat: true})
	}
	return out
}

// intact reports whether the kernel holds s's table: every chain, hooked,
// with s's rules in order.
func intact(c *nftables.Conn, s Spec) (bool, error) {
	if ok, err := tableExists(c); err != nil || !ok {
		return false, err
	}
	have, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, fmt.Errorf("firewall: list chains: %w", err)
	}
	for _, want := range chains(s, named()) {
		var ch *nftables.Chain
		for _, x := range have {
			if x.Table.Name == Table && x.Name == want.name && x.Hooknum != nil && *x.Hooknum == *want.hook &&
				x.Priority != nil && *x.Priority == *want.priority && x.Type == want.chainType() {
				ch = x
			}
		}
		if ch == nil {
			return false, nil
		}
		rules, err := c.GetRules(table(), ch)
		if err != nil {
			return false, fmt.Errorf("firewall: list rules: %w", err)
		}
		exp := want.rules
		if len(rules) != len(exp) {
			return false, nil
		}
		for i, r := range rules {
			got, _ := userdata.GetString(r.UserData, userdata.TypeComment)
			if got != truncated(exp[i].comment) {
				return false, nil
			}
		}
	}
	return true, nil
}

// Applied returns the Spec last applied by this Manager, if any.
func (m *Manager) Applied() (Spec, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.applied == nil {
		return Spec{}, false
	}
	return *m.applied, true
}

func pinElement(ap netip.AddrPort, ttl time.Duration) nftables.SetElement {
	key := ap.Addr().AsSlice()
	key = append(key, binaryutil.BigEndian.PutUint16(ap.Port())...)
	key = append(key, 0, 0) // concatenated fields are padded to 32 bits
	return nftables.SetElement{Key: key, Timeout: ttl.Truncate(time.Millisecond)}
}

// Pin admits the egress path's marked sockets to addrs on port for ttl:
// the addresses the egress point has just resolved for an allowed name.
// Connections opened within ttl outlive it (they are established). Pin is
// a no-op while the applied Spec does not admit pins.
func (m *Manager) Pin(addrs []netip.Addr, port uint16, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.cfg.Now()
	for ap, exp := range m.pins {
		if !exp.After(now) {
			delete(m.pins, ap)
		}
	}
	if m.applied == nil || m.applied.Mode == ModeOff || !m.effective(*m.applied).Egress {
		return nil
	}
	var fresh, renew []netip.AddrPort
	for _, a := range addrs {
		ap := netip.AddrPortFrom(a.Unmap(), port)
		exp, ok := m.pins[ap]
		switch {
		case !ok:
			fresh = append(fresh, ap)
		case exp.Sub(now) < ttl/2:
			renew = append(renew, ap)
		}
	}
	if len(fresh)+len(renew) == 0 {
		return nil
	}
	c, done, err := m.conn()
	if err != nil {
		return err
	}
	defer done()
	t := table()
	sets := map[bool]*nftables.Set{
		true:  {Table: t, Name: setPins4, KeyType: nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService), Concatenation: true, HasTimeout: true},
		false: {Table: t, Name: setPins6, KeyType: nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetService), Concatenation: true, HasTimeout: true},
	}
	add := func(list []netip.AddrPort, del bool) error {
		for _, ap := range list {
			set := sets[ap.Addr().Is4()]
			el := []nftables.SetElement{pinElement(ap, ttl)}
			if del {
				if err := c.SetDeleteElements(set, []nftables.SetElement{{Key: el[0].Key}}); err != nil {
					return err
				}
			}
			if err := c.SetAddElements(set, el); err != nil {
				return err
			}
		}
		return c.Flush()
	}
	// A pin about to lapse is replaced (delete and add in one batch) to
	// restart its timeout; if the kernel let it lapse already, it is added.
	if err := add(renew, true); err != nil {
		if err := add(renew, false); err != nil {
			return fmt.Errorf("firewall: pin: %w", err)
		}
	}
	if err := add(fresh, false); err != nil {
		return fmt.Errorf("firewall: pin: %w", err)
	}
	for _, ap := range append(fresh, renew...) {
		m.pins[ap] = now.Add(ttl)
	}
	return nil
}

// State is what the kernel holds in the moat table.
type State struct {
	Installed bool `json:"installed"`
	// Mode is read from the table's final rules.
	Mode   Mode         `json:"mode,omitempty"`
	Chains []ChainState `json:"chains,omitempty"`
	Pins   []PinState   `json:"pins,omitempty"`
	// Bypasses are other tables' rules that take packets round the moat
	// table (Bypass).
	Bypasses []Bypass `json:"bypasses,omitempty"`
	// PinsWithheld says the table is one of a node with egress pins, and
	// they are withheld while another table sets moat's mark.
	PinsWithheld bool `json:"pins_withheld,omitempty"`
}

// ChainState is one chain's rules in order.
type ChainState struct {
	Name  string      `json:"name"`
	Rules []RuleState `json:"rules"`
}

// RuleState is one rule: its comment and counter.
type RuleState struct {
	Comment string `json:"comment"`
	Counted bool   `json:"counted"` // the rule has a counter
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// PinState is one pinned egress address and the time it has left.
type PinState struct {
	Addr    netip.AddrPort
	Expires time.Duration
}

// MarshalJSON writes p as {"addr": "203.0.113.9:443", "expires_in_seconds": 42}.
func (p PinState) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Addr    string  `json:"addr"`
		Expires float64 `json:"expires_in_seconds"`
	}{p.Addr.String(), p.Expires.Seconds()})
}

// Show reads the moat table of a network namespace (empty: the process's
// own) from the kernel: what is in force, whatever any process believes.
func Show(netns string) (State, error) {
	c, done, err := openConn(netns)
	if err != nil {
		return State{}, err
	}
	defer done()
	ok, err := tableExists(c)
	if err != nil || !ok {
		return State{}, err
	}
	st := State{Installed: true}
	t := table()
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return State{}, fmt.Errorf("firewall: list chains: %w", err)
	}
	for _, ch := range chains {
		if ch.Table.Name != Table {
			continue
		}
		rules, err := c.GetRules(t, ch)
		if err != nil {
			return State{}, fmt.Errorf("firewall: list rules: %w", err)
		}
		cs := ChainState{Name: ch.Name}
		for _, r := range rules {
			rs := RuleState{}
			rs.Comment, _ = userdata.GetString(r.UserData, userdata.TypeComment)
			if rs.Comment == truncated(commentWithheld) {
				st.PinsWithheld = true
			}
			for _, e := range r.Exprs {
				switch e := e.(type) {
				case *expr.Counter:
					rs.Counted, rs.Packets, rs.Bytes = true, e.Packets, e.Bytes
				case *expr.Verdict:
					if rs.Comment == "everything else: drop" || rs.Comment == "everything else: audit" {
						st.Mode = ModeEnforce
						if e.Kind == expr.VerdictAccept {
							st.Mode = ModeAudit
						}
					}
				}
			}
			cs.Rules = append(cs.Rules, rs)
		}
		st.Chains = append(st.Chains, cs)
	}
	sort.Slice(st.Chains, func(i, j int) bool { return st.Chains[i].Name < st.Chains[j].Name })
	for _, name := range []string{setPins4, setPins6} {
		set, err := c.GetSetByName(t, name)
		if err != nil {
			continue
		}
		els, err := c.GetSetElements(set)
		if err != nil {
			return State{}, fmt.Errorf("firewall: list pins: %w", err)
		}
		for _, el := range els {
			n := 4
			if name == setPins6 {
				n = 16
			}
			if len(el.Key) < n+2 {
				continue
			}
			a, _ := netip.AddrFromSlice(el.Key[:n])
			st.Pins = append(st.Pins, PinState{Addr: netip.AddrPortFrom(a, uint16(el.Key[n])<<8|uint16(el.Key[n+1])), Expires: el.Expires})
		}
	}
	if st.Bypasses, err = bypasses(c); err != nil {
		return State{}, err
	}
	return st, nil
}

// Format writes s as "moat node firewall show" prints it.
func (s State) Format(w io.Writer) {
	if !s.Installed {
		fmt.Fprintln(w, "no moat firewall on this node (mode off, or never applied): nothing is filtered by moat")
		return
	}
	fmt.Fprintf(w, "table inet %s: mode %s\n", Table, s.Mode)
	for _, ch := range s.Chains {
		fmt.Fprintf(w, "\n%s:\n", ch.Name)
		for _, r := range ch.Rules {
			if !r.Counted {
				fmt.Fprintf(w, "  %10s      %12s        %s\n", "", "", r.Comment)
				continue
			}
			fmt.Fprintf(w, "  %10d pkts %12d bytes  %s\n", r.Packets, r.Bytes, r.Comment)
		}
	}
	fmt.Fprintf(w, "\negress pins: %d\n", len(s.Pins))
	for _, p := range s.Pins {
		fmt.Fprintf(w, "  %s (expires in %s)\n", p.Addr, p.Expires.Round(time.Second))
	}
	if len(s.Bypasses) > 0 {
		fmt.Fprintf(w, "\nWARNING: rules of other tables that take packets round these: %d\n", len(s.Bypasses))
		for _, b := range s.Bypasses {
			withheld := ""
			if b.Kind == BypassMark && s.PinsWithheld {
				withheld = " (egress pins withheld)"
			}
			fmt.Fprintf(w, "  %s%s\n", b, withheld)
		}
	}
}

// Control marks a socket with Mark before it connects (a net.Dialer's
// Control): the egress path's connections, which alone may use the pins.
// It needs CAP_NET_ADMIN.
func Control(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, Mark) }); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("firewall: mark the egress socket (needs CAP_NET_ADMIN): %w", serr)
	}
	return nil
}
