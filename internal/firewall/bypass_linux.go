//go:build linux

package firewall

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
)

// bypasses lists the rules of every other table of the namespace that set
// moat's mark or exempt traffic other than loopback's from connection
// tracking, sorted. Tables of any family are read, iptables-nft's with
// them (its targets too: xtTarget); iptables-legacy's are not nftables'
// and are not seen.
func bypasses(c *nftables.Conn) ([]Bypass, error) {
	chains, err := c.ListChains()
	if err != nil {
		return nil, fmt.Errorf("firewall: list the ruleset's chains: %w", err)
	}
	var out []Bypass
	for _, ch := range chains {
		t := ch.Table
		if t == nil || t.Family == nftables.TableFamilyINet && t.Name == Table {
			continue
		}
		rules, err := c.GetRules(t, ch)
		if err != nil {
			if _, gone := c.ListChain(t, ch.Name); gone != nil {
				continue // removed since it was listed: another program's churn
			}
			return nil, fmt.Errorf("firewall: list the rules of table %s %s chain %s: %w", familyName(t.Family), t.Name, ch.Name, err)
		}
		maps := func(name string) ([]nftables.SetElement, error) {
			set, err := c.GetSetByName(t, name)
			if err != nil {
				return nil, err
			}
			return c.GetSetElements(set)
		}
		for _, r := range rules {
			if kind, ok := bypassOf(r.Exprs, maps); ok {
				out = append(out, Bypass{Family: familyName(t.Family), Table: t.Name, Chain: ch.Name, Handle: r.Handle, Kind: kind})
			}
		}
	}
	slices.SortFunc(out, func(a, b Bypass) int {
		return strings.Compare(fmt.Sprint(a.Family, a.Table, a.Chain, a.Handle), fmt.Sprint(b.Family, b.Table, b.Chain, b.Handle))
	})
	return out, nil
}

// bypassOf tells whether one rule sets moat's mark (on the packet or its
// connection) or notrack without matching loopback alone. It follows the
// values the rule puts in its registers: constants, those constants
// through bitwise operations (mark | 0x6d6f6174), and the values of a map
// (elements, read with maps, for a map's lookup; one that cannot be read
// counts as holding the mark). A value loaded from the packet counts as
// an unmarked packet's (zero), so that "mark | 0x4000" on another
// program's mark is not taken for moat's. iptables-nft's targets are
// read as their native forms are (xtTarget).
func bypassOf(exprs []expr.Any, maps func(name string) ([]nftables.SetElement, error)) (BypassKind, bool) {
	mark := binaryutil.NativeEndian.PutUint32(Mark)
	val := map[uint32][]byte{}  // a register's value, as far as the rule says
	maybe := map[uint32]bool{}  // a register that a map may have given moat's mark
	iface := map[uint32]bool{}  // a register holding an interface's index or name
	lo, notrack := false, false // the rule matches loopback alone; it has notrack
	for _, e := range exprs {
		switch e := e.(type) {
		case *expr.Immediate:
			val[e.Register], maybe[e.Register], iface[e.Register] = e.Data, false, false
		case *expr.Bitwise:
			src := val[e.SourceRegister]
			v := make([]byte, e.Len)
			for i := range v {
				var b byte
				if i < len(src) {
					b = src[i]
				}
				if i < len(e.Mask) {
					b &= e.Mask[i]
				}
				if i < len(e.Xor) {
					b ^= e.Xor[i]
				}
				v[i] = b
			}
			val[e.DestRegister], maybe[e.DestRegister], iface[e.DestRegister] = v, maybe[e.SourceRegister], false
		case *expr.Lookup:
			if !e.IsDestRegSet || e.DestRegister == 0 {
				continue // a set's match or a verdict map: no value
			}
			els, err := maps(e.SetName)
			val[e.DestRegister], maybe[e.DestRegister], iface[e.DestRegister] = nil, err != nil, false
			for _, el := range els {
				if bytes.HasPrefix(el.Val, mark) {
					maybe[e.DestRegister] = true
				}
			}
		case *expr.Meta:
			if e.SourceRegister {
				if e.Key == expr.MetaKeyMARK && mayHold(val, maybe, true, e.Register, mark) {
					return BypassMark, true
				}
				continue
			}
			val[e.Register], maybe[e.Register] = nil, false
			iface[e.Register] = slices.Contains([]expr.MetaKey{expr.MetaKeyIIF, expr.MetaKeyOIF, expr.MetaKeyIIFNAME, expr.MetaKeyOIFNAME}, e.Key)
		case *expr.Ct:
			// The netlink library reads a ct statement back without its
			// source register (a load has a destination one, never 0):
			// such a statement of the connection's mark sets it from any
			// register the rule may have given moat's mark.
			if e.SourceRegister || e.Register == 0 {
				if e.Key == expr.CtKeyMARK && mayHold(val, maybe, e.SourceRegister, e.Register, mark) {
					return BypassMark, true
				}
				continue
			}
			val[e.Register], maybe[e.Register], iface[e.Register] = nil, false, false
		case *expr.Payload:
			val[e.DestRegister], maybe[e.DestRegister], iface[e.DestRegister] = nil, false, false
		case *expr.Cmp:
			if e.Op == expr.CmpOpEq && iface[e.Register] && isLoopback(e.Data) {
				lo = true
			}
		case *expr.Notrack:
			notrack = true
		case *expr.Target:
			switch xtTarget(e) {
			case BypassMark:
				return BypassMark, true
			case BypassNotrack:
				notrack = true
			}
		}
	}
	if notrack && !lo {
		return BypassNotrack, true
	}
	return "", false
}

// The iptables targets that iptables-nft writes into nftables as
// compat "target" expressions, which carry the kernel's xtables
// structure for the target (native byte order) as their info, and the
// fields moat reads of them (linux/netfilter/xt_MARK.h, xt_connmark.h,
// xt_CT.h).
const (
	// MARK revision 2, xt_mark_tginfo2 {u32 mark, mask}: the packet's
	// mark becomes (mark &^ mask) ^ info.mark. iptables writes every
	// option so: --set-xmark V/M as V, M; --set-mark V/M as V, M|V;
	// --or-mark V as V, V; --xor-mark V as V, 0; --and-mark V as 0, ^V.
	// The kernel has no other revision.
	xtMarkRev = 2
	// CONNMARK revisions 1 and 2, xt_connmark_tginfo1 {u32 ctmark,
	// ctmask, nfmask; u8 mode} and xt_connmark_tginfo2, whose mode
	// follows two more bytes (shift_dir, shift_bits). --set-mark and
	// --set-xmark are mode 0: the connection's mark becomes (ctmark &^
	// ctmask) ^ info.ctmark; the other modes copy one mark to the other.
	xtConnmarkSet = 0
	// CT revisions 0 to 2 open with u16 flags; --notrack (and the
	// NOTRACK target, CT's alias) sets XT_CT_NOTRACK.
	xtCTNotrack = 1 << 0
)

// xtTarget tells what an iptables target written by iptables-nft does
// of what bypassOf looks for: set moat's mark on the packet or its
// connection, or notrack; "" for neither. A mark is worked out as
// bypassOf works out a native rule's, the mark the packet or connection
// held counting as zero: (0 &^ mask) ^ xor is xor, so --set-mark,
// --set-xmark, --or-mark and --xor-mark of moat's mark set it and
// --or-mark 0x4000 or --and-mark do not. A MARK, CONNMARK or CT target
// whose info cannot be read (short, or of a revision the kernel did not
// have when this was written) counts as doing it, as a map that cannot
// be read does.
func xtTarget(e *expr.Target) BypassKind {
	var info []byte
	if u, ok := e.Info.(*xt.Unknown); ok {
		info = *u
	}
	switch e.Name {
	case "MARK":
		if e.Rev != xtMarkRev || len(info) < 8 || binaryutil.NativeEndian.Uint32(info[:4]) == Mark {
			return BypassMark
		}
	case "CONNMARK":
		mode := 12
		if e.Rev == 2 {
			mode = 14
		}
		if e.Rev < 1 || e.Rev > 2 || len(info) <= mode ||
			info[mode] == xtConnmarkSet && binaryutil.NativeEndian.Uint32(info[:4]) == Mark {
			return BypassMark
		}
	case "CT":
		if e.Rev > 2 || len(info) < 2 || binaryutil.NativeEndian.Uint16(info[:2])&xtCTNotrack != 0 {
			return BypassNotrack
		}
	case "NOTRACK":
		return BypassNotrack
	}
	return ""
}

// mayHold tells whether register reg (known, or else any register) may
// hold the mark.
func mayHold(val map[uint32][]byte, maybe map[uint32]bool, known bool, reg uint32, mark []byte) bool {
	if known {
		return bytes.HasPrefix(val[reg], mark) || maybe[reg]
	}
	for r, v := range val {
		if bytes.HasPrefix(v, mark) || maybe[r] {
			return true
		}
	}
	for _, m := range maybe {
		if m {
			return true
		}
	}
	return false
}

// isLoopback tells whether an interface's index or whole name (not a
// prefix: "lo*" is written without the name's terminating zero) is the
// loopback's.
func isLoopback(data []byte) bool {
	if len(data) == 4 && bytes.Equal(data, binaryutil.NativeEndian.PutUint32(1)) {
		return true
	}
	return len(data) > 2 && string(bytes.TrimRight(data, "\x00")) == "lo"
}

// familyName is a table's family as nft spells it.
func familyName(f nftables.TableFamily) string {
	switch f {
	case nftables.TableFamilyINet:
		return "inet"
	case nftables.TableFamilyIPv4:
		return "ip"
	case nftables.TableFamilyIPv6:
		return "ip6"
	case nftables.TableFamilyARP:
		return "arp"
	case nftables.TableFamilyBridge:
		return "bridge"
	case nftables.TableFamilyNetdev:
		return "netdev"
	}
	return fmt.Sprintf("family %d", f)
}
