//go:build linux

package firewall

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// Chain and set names inside the table.
const (
	chainInput   = "input"
	chainOutput  = "output"
	chainForward = "forward"
	setPins4     = "egress_pins4"
	setPins6     = "egress_pins6"
	chainPre     = "prerouting"
	chainDNS     = "dns"
	chainDNSFwd  = "dns_routed"
	setNotes4    = "published_notes4"
	setNotes6    = "published_notes6"
	setDNSRate   = "dns_rate"
)

// ipsDstNAT is conntrack's status bit of a connection whose destination
// NAT rewrote (IPS_DST_NAT).
const ipsDstNAT = 1 << 5

// Log prefixes: "moat:DIRECTION:ACTION", read back by the NFLOG reader.
const (
	prefixIn  = "moat:in:"
	prefixOut = "moat:out:"
)

// rule is one nftables rule before it is added: its expressions and the
// comment "show" prints.
type rule struct {
	comment string
	exprs   []expr.Any
}

func ifname(n string) []byte {
	b := make([]byte, 16)
	copy(b, n)
	return b
}

func accept() expr.Any { return &expr.Verdict{Kind: expr.VerdictAccept} }

// logged logs a packet (rate-limited) to the NFLOG group Run reads, with
// prefix ("moat:DIRECTION:ACTION"), for a flow record.
func logged(s Spec, prefix string) []expr.Any {
	return []expr.Any{
		&expr.Limit{Type: expr.LimitTypePkts, Rate: 50, Unit: expr.LimitTimeSecond, Burst: 100},
		&expr.Log{Key: 1<<unix.NFTA_LOG_GROUP | 1<<unix.NFTA_LOG_PREFIX | 1<<unix.NFTA_LOG_SNAPLEN,
			Group: s.logGroup(), Snaplen: 128, Data: []byte(prefix)},
	}
}

// loopback matches the loopback interface of the hook's direction.
func loopback(in bool) []expr.Any {
	key := expr.MetaKeyOIFNAME
	if in {
		key = expr.MetaKeyIIFNAME
	}
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname("lo")},
	}
}

// ctState matches any of the conntrack state bits.
func ctState(bits uint32) []expr.Any { return ctBits(expr.CtKeySTATE, bits) }

// ctBits matches any of bits in a conntrack bit field (state, status).
func ctBits(key expr.CtKey, bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: key},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0, 0, 0, 0}},
	}
}

func nfproto(p byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
	}
}

func l4proto(p byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
	}
}

// port matches the transport header's destination (or source) port.
func port(p uint16, dst bool) []expr.Any {
	off := uint32(0)
	if dst {
		off = 2
	}
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(p)},
	}
}

// addrIn matches the source (or destination) address against a network of
// its family; the caller has matched the family first.
func addrIn(n netip.Prefix, src bool) []expr.Any {
	var off, l uint32
	switch {
	case n.Addr().Is4() && src:
		off, l = 12, 4
	case n.Addr().Is4():
		off, l = 16, 4
	case src:
		off, l = 8, 16
	default:
		off, l = 24, 16
	}
	out := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: l}}
	if n.Bits() < n.Addr().BitLen() {
		m := make([]byte, l)
		for i := 0; i < n.Bits(); i++ {
			m[i/8] |= 0x80 >> (i % 8)
		}
		out = append(out, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: l, Mask: m, Xor: make([]byte, l)})
	}
	return append(out, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: n.Masked().Addr().AsSlice()})
}

func protoNum(p Proto) byte {
	if p == UDP {
		return unix.IPPROTO_UDP
	}
	return unix.IPPROTO_TCP
}

// allowRules turns one Allow into rules: one per network (per family) and
// uid, or one for any address.
func allowRules(a Allow, in bool, comment string) []rule {
	base := append(l4proto(protoNum(a.Proto)), port(a.Port, true)...)
	owners := [][]expr.Any{nil}
	if len(a.UIDs) > 0 {
		owners = nil
		for _, u := range a.UIDs {
			owners = append(owners, []expr.Any{
				&expr.Meta{Key: expr.MetaKeySKUID, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(uint32(u))},
			})
		}
	}
	var out []rule
	for _, owner := range owners {
		if len(a.Nets) == 0 {
			e := append(slices.Clone(base), owner...)
			out = append(out, rule{comment: comment, exprs: append(e, &expr.Counter{}, accept())})
			continue
		}
		for _, n := range a.Nets {
			fam := byte(unix.NFPROTO_IPV4)
			if n.Addr().Is6() {
				fam = unix.NFPROTO_IPV6
			}
			e := append(nfproto(fam), addrIn(n, in)...)
			e = append(e, base...)
			e = append(e, owner...)
			out = append(out, rule{comment: comment, exprs: append(e, &expr.Counter{}, accept())})
		}
	}
	return out
}

// dnsRules are the nat chain of the DNS filter: DNS (UDP and TCP 53) that
// a socket of another uid than the agent's sends off the node, to any
// address, is redirected to the filter's loopback port, where only
// allowed names are forwarded to the resolvers. What goes over loopback
// (a local stub resolver, systemd-resolved's 127.0.0.53) is left alone:
// the stub's own queries off the node are redirected in their turn. A
// packet with no socket (the kernel's own) has no uid and is not matched.
func dnsRules(s Spec) []rule {
	var out []rule
	for _, p := range []Proto{UDP, TCP} {
		e := []expr.Any{
			&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname("lo")},
		}
		e = append(e, l4proto(protoNum(p))...)
		e = append(e, port(53, true)...)
		e = append(e,
			&expr.Meta{Key: expr.MetaKeySKUID, Register: 1},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(uint32(s.AgentUID))},
			&expr.Counter{},
			&expr.Immediate{Register: 1, Data: binaryutil.BigEndian.PutUint16(s.DNSPort)},
			&expr.Redir{RegisterProtoMin: 1})
		out = append(out, rule{comment: fmt.Sprintf("DNS (%s/53) of uids other than the agent's (%d): to its DNS filter on loopback port %d", p, s.AgentUID, s.DNSPort), exprs: e})
	}
	return out
}

// routedDNSRules are the nat chain of the DNS filter at prerouting: DNS
// (UDP and TCP 53) the node routes, to a unicast address not its own (a
// container's query to the resolvers, or to any server), is redirected to
// the filter's port, where only allowed names are forwarded, as a local
// user's is. The redirect delivers it to the incoming interface's address
// (the bridge's), where the filter listens on every address and the
// input chain admits its port only for what a redirect brought there
// (filterPortRules). DNS to one of the node's own addresses is not
// routed and is left to the input chain's list.
func routedDNSRules(s Spec) []rule {
	var out []rule
	for _, p := range []Proto{UDP, TCP} {
		e := append(l4proto(protoNum(p)), port(53, true)...)
		e = append(e,
			&expr.Fib{Register: 1, ResultADDRTYPE: true, FlagDADDR: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_UNICAST)},
			&expr.Counter{},
			&expr.Immediate{Register: 1, Data: binaryutil.BigEndian.PutUint16(s.DNSPort)},
			&expr.Redir{RegisterProtoMin: 1})
		out = append(out, rule{comment: fmt.Sprintf("DNS (%s/53) the node routes: to its DNS filter on port %d", p, s.DNSPort), exprs: e})
	}
	return out
}

// filterPortRules keep the DNS filter's port, on which it listens on
// every address, to what the node's own redirects took there: from off
// the node (not loopback, which the local users' redirect uses), a
// connection destination NAT brought to the port is admitted (routed DNS,
// routedDNSRules); any other is logged and dropped, in audit mode too, so
// that no one on the network uses the filter as a resolver of their own.
func filterPortRules(s Spec) []rule {
	var out []rule
	for _, p := range []Proto{UDP, TCP} {
		m := []expr.Any{
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname("lo")},
		}
		m = append(m, l4proto(protoNum(p))...)
		m = append(m, port(s.DNSPort, true)...)
		redirected := append(slices.Clone(m), ctBits(expr.CtKeySTATUS, ipsDstNAT)...)
		out = append(out, rule{comment: fmt.Sprintf("routed DNS redirected to the DNS filter (%s/%d)", p, s.DNSPort),
			exprs: append(redirected, &expr.Counter{}, accept())})
		log := append(slices.Clone(m),
			logged(s, prefixIn+"drop")...)
		c := fmt.Sprintf("the DNS filter's port (%s/%d) from the network, not redirected", p, s.DNSPort)
		out = append(out, rule{comment: "log: " + c, exprs: log},
			rule{comment: c + ": drop", exprs: append(m, &expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop})})
	}
	return out
}

// essentials are what a host needs to stay on the network at all: IPv6
// neighbour and multicast listener discovery, router advertisements, and DHCP (v4 and v6)
// replies and requests. Without them a node loses its addresses.
func essentials(in bool) []rule {
	icmp6 := func(types ...byte) []rule {
		var out []rule
		for _, t := range types {
			e := append(nfproto(unix.NFPROTO_IPV6), l4proto(unix.IPPROTO_ICMPV6)...)
			e = append(e,
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{t}},
				&expr.Counter{}, accept())
			what := "neighbour discovery"
			if t < 133 || t == 143 {
				what = "multicast listener discovery"
			}
			out = append(out, rule{comment: fmt.Sprintf("essential: ICMPv6 type %d (%s)", t, what), exprs: e})
		}
		return out
	}
	// Multicast listener queries and reports (130-132, 143: switches that
	// snoop MLD need them for neighbour discovery to reach the host), router
	// solicitation/advertisement, neighbour solicitation/advertisement.
	out := icmp6(130, 131, 132, 143, 133, 134, 135, 136)
	dhcp := func(comment string, fam byte, sport, dport uint16) rule {
		e := append(nfproto(fam), l4proto(unix.IPPROTO_UDP)...)
		e = append(e, port(sport, false)...)
		e = append(e, port(dport, true)...)
		return rule{comment: comment, exprs: append(e, &expr.Counter{}, accept())}
	}
	if in {
		out = append(out,
			dhcp("essential: DHCP reply", unix.NFPROTO_IPV4, 67, 68),
			dhcp("essential: DHCPv6 reply", unix.NFPROTO_IPV6, 547, 546))
	} else {
		out = append(out,
			dhcp("essential: DHCP request", unix.NFPROTO_IPV4, 68, 67),
			dhcp("essential: DHCPv6 request", unix.NFPROTO_IPV6, 546, 547))
	}
	return out
}

// pinRules admit the egress path's marked sockets to pinned addresses.
func pinRules(s4, s6 *nftables.Set) []rule {
	mark := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(Mark)},
	}
	var out []rule
	for _, fam := range []struct {
		proto byte
		off   uint32
		l     uint32
		port  uint32 // register of the port in the concatenation
		set   *nftables.Set
	}{{unix.NFPROTO_IPV4, 16, 4, 9, s4}, {unix.NFPROTO_IPV6, 24, 16, 12, s6}} {
		e := append(nfproto(fam.proto), l4proto(unix.IPPROTO_TCP)...)
		e = append(e, mark...)
		e = append(e,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: fam.off, Len: fam.l},
			&expr.Payload{DestRegister: fam.port, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Lookup{SourceRegister: 1, SetName: fam.set.Name, SetID: fam.set.ID},
			&expr.Counter{}, accept())
		out = append(out, rule{comment: "egress path: pinned addresses of allowed names (agent's marked sockets)", exprs: e})
	}
	return out
}

// commentWithheld is the comment of the rule that stands in the output
// chain for the pin rules while they are withheld (Manager.effective), so
// that show tells a node whose pins are withheld from one that has none.
const commentWithheld = "egress pins withheld: another table sets moat's mark (packets with it counted here, then judged as any other)"

// withheldRule counts the packets carrying moat's mark while the pins are
// withheld, and lets the rules after it judge them.
func withheldRule() rule {
	return rule{comment: commentWithheld, exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(Mark)},
		&expr.Counter{},
	}}
}

// finalRules log (rate-limited) and count what nothing admitted, then drop
// it (enforce) or let it through (audit). In audit mode only a
// connection's first packet reaches here: the rest are established.
func finalRules(s Spec, in bool) []rule {
	prefix := prefixOut
	if in {
		prefix = prefixIn
	}
	verdict, what := expr.VerdictDrop, "drop"
	if s.Mode == ModeAudit {
		verdict, what = expr.VerdictAccept, "audit"
	}
	log := append(ctState(expr.CtStateBitNEW|expr.CtStateBitINVALID|expr.CtStateBitUNTRACKED),
		logged(s, prefix+what)...)
	return []rule{
		{comment: "log what no rule admits (rate-limited) for flow records", exprs: log},
		{comment: "everything else: " + what, exprs: []expr.Any{&expr.Counter{}, &expr.Verdict{Kind: verdict}}},
	}
}

// backendRules keep local users other than a Backend's uids off its app
// port, TCP and UDP: every packet sent to it over loopback (to 127.0.0.1,
// or to one of the node's own addresses) from another uid's socket is
// logged (rate-limited) and dropped (enforce) or let through to the loopback
// rule (audit). Every packet, whatever its connection's state: a
// connection opened before the port was guarded (the service registered
// without a uid, or the firewall in audit mode) is cut, and one another
// program's table keeps from being tracked ("notrack": never new) is
// refused. A packet with no socket (the kernel's own) has no uid and is
// not matched.
func backendRules(s Spec) []rule {
	var out []rule
	what := "drop"
	if s.Mode == ModeAudit {
		what = "audit"
	}
	for _, be := range s.Backends {
		for _, p := range backendProtos {
			m := append(loopback(false), l4proto(protoNum(p))...)
			m = append(m, port(be.Port, true)...)
			m = append(m, &expr.Meta{Key: expr.MetaKeySKUID, Register: 1})
			for _, u := range be.UIDs {
				m = append(m, &expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(uint32(u))})
			}
			log := append(slices.Clone(m), logged(s, prefixOut+what)...)
			out = append(out, rule{comment: "log: " + be.guard(p), exprs: log})
			if s.Mode != ModeAudit {
				out = append(out, rule{comment: be.guard(p), exprs: append(m, &expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop})})
			}
		}
	}
	return out
}

// A port published by destination NAT ("docker run -p 6379:6379") takes a
// connection from the network to one of the node's own addresses down the
// forward path to a container, round the input chain. It is judged by the
// input chain's list all the same, on its original destination, which is
// written only before the NAT: the prerouting chain (priority mangle,
// before the NAT's dstnat) admits what the input chain would admit, and
// notes, for a second, the source address and port of any other new
// connection from the network to one of the node's own addresses; the
// forward chain refuses a new, destination-NATed connection from a noted
// source. (Conntrack's original tuple says the same, but the netlink
// library cannot read such a rule back, and Guard must.) The port noted
// is the first two bytes of the transport header, which destination NAT
// leaves alone: the source port of TCP, UDP and SCTP, ICMP's type and
// code. A source port is one connection's for that second, so another
// connection is not taken for it but by a client that reuses its port at
// once for a port the inbound rules admit, which is then refused: closed,
// not open.
const noteTimeout = time.Second

// noteSize bounds the notes; a connection that cannot be noted (a flood
// fills the set) is dropped in enforce mode rather than let through
// unnoted: one the input chain's list refuses anyway.
const noteSize = 65536

// noteFamily is one address family's notes: its set and where a
// packet's source address and port (the notes' key) are read.
type noteFamily struct {
	proto   byte
	off, l  uint32 // the source address in the network header
	portReg uint32 // the register after the address's, for the port
	set     *nftables.Set
}

func noteFamilies(n4, n6 *nftables.Set) []noteFamily {
	return []noteFamily{{unix.NFPROTO_IPV4, 12, 4, 9, n4}, {unix.NFPROTO_IPV6, 8, 16, 12, n6}}
}

// source loads a packet's note key: its source address, then the first
// two bytes of its transport header (the source port of TCP, UDP, SCTP).
func (f noteFamily) source() []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: f.off, Len: f.l},
		&expr.Payload{DestRegister: f.portReg, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2},
	}
}

// preRules are the prerouting chain: what the input chain admits (its
// list, evaluated before the NAT) is left alone; any other new connection
// from the network to one of the node's own addresses is noted.
func preRules(s Spec, n4, n6 *nftables.Set) []rule {
	out := admitted(s, true)
	for _, fam := range noteFamilies(n4, n6) {
		m := append(nfproto(fam.proto), ctState(expr.CtStateBitNEW)...)
		m = append(m,
			&expr.Fib{Register: 1, ResultADDRTYPE: true, FlagDADDR: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)})
		m = append(m, fam.source()...)
		note := append(slices.Clone(m), &expr.Dynset{SrcRegKey: 1, SetName: fam.set.Name, SetID: fam.set.ID,
			Operation: unix.NFT_DYNSET_OP_UPDATE, Timeout: noteTimeout})
		out = append(out, rule{comment: "note a new connection to this node the inbound rules do not admit", exprs: note})
		if s.Mode != ModeAudit {
			unnoted := append(m, &expr.Lookup{SourceRegister: 1, SetName: fam.set.Name, SetID: fam.set.ID, Invert: true},
				&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop})
			out = append(out, rule{comment: "not noted (the notes are full): drop", exprs: unnoted})
		}
	}
	return out
}

// publishedRules refuse a new connection that destination NAT took from
// one of the node's own addresses elsewhere when the inbound rules do not
// admit it there (a noted one, see preRules): it is logged as the input
// chain logs a refusal, and dropped (enforce) or let through (audit). The
// node's own connections do not pass the forward hook: the mesh
// delivering to an app port published to a container is not matched.
func publishedRules(s Spec, n4, n6 *nftables.Set) []rule {
	what := "drop"
	if s.Mode == ModeAudit {
		what = "audit"
	}
	var out []rule
	for _, fam := range noteFamilies(n4, n6) {
		m := append(nfproto(fam.proto), ctState(expr.CtStateBitNEW)...)
		m = append(m, ctBits(expr.CtKeySTATUS, ipsDstNAT)...)
		m = append(m, fam.source()...)
		m = append(m, &expr.Lookup{SourceRegister: 1, SetName: fam.set.Name, SetID: fam.set.ID})
		c := "published by destination NAT, not admitted by the inbound rules"
		log := append(slices.Clone(m),
			logged(s, prefixIn+what)...)
		out = append(out, rule{comment: "log: " + c, exprs: log})
		if s.Mode != ModeAudit {
			out = append(out, rule{comment: c, exprs: append(m, &expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop})})
		}
	}
	return out
}

// forwardRules is the whole of the forward chain: what the node routes.
// Published ports the inbound rules do not admit are refused
// (publishedRules), whatever the forwarding: inbound through the node's
// own addresses is the node's inbound policy. With ForwardEgress, the
// published ports they admit and what stays on the interface it came in
// by (containers on one bridge) pass; the rest is held to the output
// chain's list of destinations (the pins excepted: they are the agent's
// marked sockets', and a routed packet has no socket of the node's).
// With a DNS filter, the routed DNS never gets here: routedDNSRules took
// it to the filter, on the node. ForwardOpen lets the rest through.
func forwardRules(s Spec, n4, n6 *nftables.Set) []rule {
	out := []rule{{comment: "established and related", exprs: append(ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), &expr.Counter{}, accept())}}
	out = append(out, publishedRules(s, n4, n6)...)
	if s.forward() == ForwardOpen {
		return out
	}
	sameIf := []expr.Any{
		&expr.Fib{Register: 1, ResultOIF: true, FlagDADDR: true, FlagIIF: true},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0, 0, 0, 0}},
	}
	out = append(out,
		rule{comment: "published by destination NAT, admitted by the inbound rules", exprs: append(ctBits(expr.CtKeySTATUS, ipsDstNAT), &expr.Counter{}, accept())},
		rule{comment: "back out of the interface it came in by (containers on one bridge)", exprs: append(sameIf, &expr.Counter{}, accept())})
	for _, a := range s.Outbound {
		if len(a.UIDs) > 0 {
			continue // a local uid's alone: nothing routed is
		}
		out = append(out, allowRules(a, false, "routed out: "+a.String())...)
	}
	return append(out, finalRules(s, false)...)
}

// admitted is what a chain of the node's own traffic lets through before
// its final rules: loopback, established and related, the host
// essentials and the Spec's list of its direction. The input chain's is
// also the prerouting chain's, which holds published ports to it.
func admitted(s Spec, in bool) []rule {
	out := []rule{
		{comment: "loopback", exprs: append(loopback(in), &expr.Counter{}, accept())},
		{comment: "established and related", exprs: append(ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), &expr.Counter{}, accept())},
	}
	out = append(out, essentials(in)...)
	list, dir := s.Outbound, "out"
	if in {
		list, dir = s.Inbound, "in"
	}
	for _, a := range list {
		out = append(out, allowRules(a, in, dir+": "+a.String())...)
	}
	return out
}

// redirectedRules admit, in the output chain, what the nat chain "dns"
// took to the DNS filter: its packets reach the filter chain with their
// new destination (the filter's loopback address and port) but the
// interface they were first routed to, which the loopback rule does not
// match.
func redirectedRules(s Spec) []rule {
	var out []rule
	for _, fam := range []struct {
		proto byte
		lo    netip.Addr
	}{{unix.NFPROTO_IPV4, netip.MustParseAddr("127.0.0.1")}, {unix.NFPROTO_IPV6, netip.IPv6Loopback()}} {
		for _, p := range []Proto{UDP, TCP} {
			e := append(nfproto(fam.proto), ctBits(expr.CtKeySTATUS, ipsDstNAT)...)
			e = append(e, addrIn(host(fam.lo), false)...)
			e = append(e, l4proto(protoNum(p))...)
			e = append(e, port(s.DNSPort, true)...)
			out = append(out, rule{comment: fmt.Sprintf("DNS redirected to the DNS filter (%s %s:%d)", p, fam.lo, s.DNSPort),
				exprs: append(e, &expr.Counter{}, accept())})
		}
	}
	return out
}

// dnsRateTimeout is how long a uid's place in the rate set outlives its
// last datagram to the filter; a uid back after that starts with a full
// burst, as it would have after a second or two anyway.
const dnsRateTimeout = time.Minute

// dnsRateSize bounds the rate set: one place a uid.
const dnsRateSize = 65536

// dnsRateSet is the output chain's meter of local uids' DNS to the filter
// (dnsRateRules): one place per uid, each with its own token bucket.
func dnsRateSet(t *nftables.Table) *nftables.Set {
	return &nftables.Set{Table: t, Name: setDNSRate, KeyType: nftables.TypeUID, KeyByteOrder: binaryutil.NativeEndian,
		HasTimeout: true, Dynamic: true, Size: dnsRateSize}
}

// dnsRateRules bound each local uid's DNS to the filter, in the output
// chain, after the nat chain "dns" redirected it: a UDP datagram or a new
// TCP connection to the filter's port on one of the node's own addresses
// (where the redirect takes it, or sent there directly) from a socket of
// another uid than the agent's updates that uid's place in the rate set,
// whose token bucket passes Spec.DNSRate a second after a burst of
// Spec.DNSBurst; past them it is counted and dropped, in audit mode too.
// The filter reads some 10,000 datagrams a second; without the bound one
// uid sending faster filled its socket's buffer, and the kernel dropped
// the other uids' queries with the flood. UDP and TCP share a uid's
// bucket. Each datagram is counted, not each connection: a nat chain
// sees only a connection's first packet, this chain every one.
func dnsRateRules(s Spec, rate *nftables.Set) []rule {
	var out []rule
	for _, p := range []Proto{UDP, TCP} {
		e := append(l4proto(protoNum(p)), port(s.DNSPort, true)...)
		if p == TCP {
			e = append(e, ctState(expr.CtStateBitNEW)...)
		}
		e = append(e,
			&expr.Fib{Register: 1, ResultADDRTYPE: true, FlagDADDR: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
			&expr.Meta{Key: expr.MetaKeySKUID, Register: 1},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(uint32(s.AgentUID))},
			&expr.Dynset{SrcRegKey: 1, SetName: rate.Name, SetID: rate.ID, Operation: unix.NFT_DYNSET_OP_UPDATE, Timeout: dnsRateTimeout,
				Exprs: []expr.Any{&expr.Limit{Type: expr.LimitTypePkts, Rate: uint64(s.dnsRate()), Unit: expr.LimitTimeSecond, Burst: s.dnsBurst(), Over: true}}},
			&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop})
		what := "datagrams"
		if p == TCP {
			what = "new connections"
		}
		out = append(out, rule{comment: fmt.Sprintf("DNS to the DNS filter past %d a second (burst %d) per uid, %s/%d %s: drop",
			s.dnsRate(), s.dnsBurst(), p, s.DNSPort, what), exprs: e})
	}
	return out
}

// chainRules is the whole of one chain of the node's own traffic.
func chainRules(s Spec, in bool, st sets) []rule {
	var out []rule
	if !in && s.DNSPort != 0 {
		out = dnsRateRules(s, st.dnsRate)
	}
	if !in {
		out = append(out, backendRules(s)...)
	}
	if in && s.DNSPort != 0 {
		out = filterPortRules(s)
	}
	out = append(out, admitted(s, in)...)
	if !in && s.DNSPort != 0 {
		out = append(out, redirectedRules(s)...)
	}
	if !in && s.Egress {
		out = append(out, pinRules(st.pins4, st.pins6)...)
	}
	if !in && s.pinsWithheld {
		out = append(out, withheldRule())
	}
	return append(out, finalRules(s, in)...)
}

func comment(c string) []byte {
	return userdata.AppendString(nil, userdata.TypeComment, truncated(c))
}

// truncated is a comment as the kernel keeps it.
func truncated(c string) string {
	if len(c) > 250 {
		c = c[:250]
	}
	return c
}
