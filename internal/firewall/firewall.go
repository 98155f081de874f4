// Package firewall is moat's host firewall: the node's own packet filter,
// so that what moat's intentions say is also what the network lets through.
// A backend bound to 0.0.0.0, a stray debug port or sshd is then reachable
// only where a rule says so, and a compromised service cannot call out
// except through the egress path.
//
// It owns one nftables table, "inet moat", and never writes any other:
// every change replaces that table whole in one netlink transaction (the
// kernel applies all of it or none of it), so there is never a moment
// with half a ruleset. The table lives in the kernel, not in the process:
// when the agent crashes or restarts, the last good rules stay in force
// until it applies new ones. When another program removes or changes the
// table (nft flush ruleset), Guard applies it again at once. Guard also
// reads the other tables for rules that take packets round moat's
// (Bypass) and reports them.
//
// What is admitted (Build):
//
//	inbound:  loopback; established and related; the host essentials (ICMPv6
//	          neighbour discovery, DHCP replies); the mesh port; the plaintext
//	          ports of permissive services, from the networks their rules
//	          name; the control-plane port on servers; the gateway's public
//	          ports on edge nodes; ports the operator lists. With a DNS
//	          filter, its port (on every address) from off the node only
//	          to what the nat chain "dns_routed" redirected there (below),
//	          dropped otherwise, in audit mode too
//	outbound: loopback, but for the app ports (TCP and UDP) of services
//	          registered with a uid, to which other local uids than
//	          theirs, the agent's and root's may send nothing (a
//	          connection opened before is cut); established and related;
//	          the host essentials; the
//	          control plane (every address, always); peers' mesh ports
//	          (the agent's uid alone: a peer names its own address); DNS
//	          to the configured resolvers (with a DNS filter, the agent's
//	          own uid's alone: the nat chain "dns" takes every other uid's
//	          DNS, to any address, to the filter on loopback, which
//	          forwards only allowed names, each uid's datagrams and new
//	          connections to it within a rate, dropped and counted past
//	          it, in audit mode too); addresses the egress path has
//	          just resolved for an allowed name (a set of pins with a
//	          timeout, for the agent's own marked sockets only); what the
//	          operator lists
//	forward:  (connections the node routes: containers behind a bridge,
//	          a pod network) established and related; a new connection
//	          that destination NAT takes from one of the node's own
//	          addresses elsewhere (a port published to a container,
//	          "docker run -p") only if the inbound list above admits its
//	          original destination (the prerouting chain, before the NAT,
//	          notes the source of one it does not), whatever the
//	          forwarding; with ForwardEgress (the default), what leaves
//	          by the interface it came in by (containers on one bridge),
//	          and the rest of what the node routes out of its containers
//	          held to the outbound list above (not the pins, which are the
//	          agent's own sockets', and DNS and peers' mesh ports
//	          admitted to the agent's uid alone, which a routed packet
//	          has not); with a DNS filter,
//	          the DNS it routes (to any address not the node's) is taken
//	          to the filter before that, by the nat chain "dns_routed" at
//	          prerouting, as local users' is; with ForwardOpen, the rest,
//	          DNS included, unfiltered
//
// Everything else is counted and, rate-limited, logged to an NFLOG group
// that Run reads and turns into flow records; in ModeEnforce it is dropped,
// in ModeAudit it is let through (each would-drop connection is logged once,
// at its first packet).
package firewall

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Table is the nftables table moat owns (family inet).
const Table = "moat"

// Mark is the socket mark (SO_MARK) of the egress path's own connections:
// only marked sockets may use the pins. Setting a mark needs
// CAP_NET_ADMIN, so a service cannot forge it.
const Mark = 0x6d6f6174 // "moat"

// DefaultLogGroup is the NFLOG group the table logs to when the
// configuration names none.
const DefaultLogGroup = 3740

// Mode is how a node's firewall treats what no rule admits.
type Mode string

// Modes.
const (
	ModeOff     Mode = "off"     // no table: moat filters nothing
	ModeAudit   Mode = "audit"   // counted and recorded as would-drop, let through
	ModeEnforce Mode = "enforce" // counted, recorded and dropped
)

// ParseMode reads a mode as configurations spell it; "" is ModeOff.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case "", ModeOff:
		return ModeOff, nil
	case ModeAudit, ModeEnforce:
		return Mode(s), nil
	}
	return "", fmt.Errorf("want off, audit or enforce, got %q", s)
}

// Forwarding is how the firewall treats new connections the node routes
// that were not published by destination NAT to one of its own addresses:
// a container's, a pod's, a routed network's. Published ports are held to
// the inbound rules either way: inbound through the node's own addresses
// is the node's inbound policy.
type Forwarding string

// Forwardings.
const (
	// ForwardEgress holds them to the node's own outbound rules: a
	// container reaches what the node may reach, nothing more. The zero
	// value means ForwardEgress.
	ForwardEgress Forwarding = "egress"
	// ForwardOpen lets them through, for a node that routes a pod network
	// or a LAN on purpose.
	ForwardOpen Forwarding = "open"
)

// ParseForwarding reads a Forwarding as configurations spell it; "" is
// ForwardEgress.
func ParseForwarding(s string) (Forwarding, error) {
	switch Forwarding(s) {
	case "", ForwardEgress:
		return ForwardEgress, nil
	case ForwardOpen:
		return ForwardOpen, nil
	}
	return "", fmt.Errorf("want egress or open, got %q", s)
}

// DNS is how the firewall treats DNS from the node's local users.
type DNS string

// DNS treatments.
const (
	// DNSFilter admits DNS to the resolvers for the agent's uid alone and
	// takes every other uid's DNS (UDP and TCP 53, to any address off the
	// node) to the agent's DNS filter, which forwards only the names it
	// allows: names no longer carry data to any domain's servers. With
	// ForwardEgress the DNS the node routes (its containers') is taken
	// there too. The zero value means DNSFilter.
	DNSFilter DNS = "filter"
	// DNSOpen admits DNS to the resolvers for every uid, as before the
	// filter: a resolver that recurses then carries whatever fits in a
	// name to any domain's servers.
	DNSOpen DNS = "open"
)

// ParseDNS reads a DNS treatment as configurations spell it; "" is
// DNSFilter.
func ParseDNS(s string) (DNS, error) {
	switch DNS(s) {
	case "", DNSFilter:
		return DNSFilter, nil
	case DNSOpen:
		return DNSOpen, nil
	}
	return "", fmt.Errorf("want filter or open, got %q", s)
}

// Proto is a transport protocol.
type Proto string

// Protocols.
const (
	TCP Proto = "tcp"
	UDP Proto = "udp"
)

// Allow admits one port (of one protocol) to or from a list of networks.
type Allow struct {
	// Why says what the rule is for; it is the rule's comment in the
	// kernel and what "moat node firewall show" prints.
	Why   string
	Proto Proto
	Port  uint16
	// Nets are the peers: sources inbound, destinations outbound. Empty
	// means any address.
	Nets []netip.Prefix
	// UIDs, outbound, admits only sockets these local uids own; empty
	// means any. What the node routes has no socket and no uid: such an
	// Allow admits none of it.
	UIDs []int
}

func (a Allow) String() string {
	nets := "any"
	if len(a.Nets) > 0 {
		s := make([]string, len(a.Nets))
		for i, n := range a.Nets {
			s[i] = n.String()
		}
		nets = strings.Join(s, ",")
	}
	uids := ""
	if len(a.UIDs) > 0 {
		u := make([]string, len(a.UIDs))
		for i, x := range a.UIDs {
			u[i] = strconv.Itoa(x)
		}
		uids = " uid " + strings.Join(u, ",")
	}
	return fmt.Sprintf("%s/%d %s%s (%s)", a.Proto, a.Port, nets, uids, a.Why)
}

// Spec is a complete ruleset for one node. Build makes one from what the
// agent knows; the zero Spec is ModeOff.
type Spec struct {
	Mode     Mode
	Inbound  []Allow
	Outbound []Allow
	// Backends are app ports that only some local uids may connect to,
	// over loopback or the node's own addresses.
	Backends []Backend
	// Forward is how routed connections that were not published are
	// treated; "" means ForwardEgress.
	Forward Forwarding
	// Egress admits the pins (marked sockets to just-resolved addresses):
	// true on a node that connects out for the egress path itself.
	Egress bool
	// pinsWithheld is set by the Manager on a Spec with Egress while
	// another table sets moat's mark: the pin rules are left out and a
	// rule saying so stands in their place.
	pinsWithheld bool
	// LogGroup is the NFLOG group of the would-drop log; zero means
	// DefaultLogGroup.
	LogGroup uint16
	// DNSPort, when not zero, is the port of the agent's DNS filter: the
	// nat chain "dns" redirects to it on loopback the DNS (UDP and TCP 53)
	// that sockets of other uids than AgentUID send off the node, and
	// with ForwardEgress the nat chain "dns_routed" the DNS the node
	// routes, to the address of the interface it came in by. The input
	// chain admits the port from off the node only for what was
	// redirected. Zero redirects nothing.
	DNSPort  uint16
	AgentUID int
	// DNSRate and DNSBurst bound, per local uid, the UDP datagrams and
	// new TCP connections to the DNS filter's port from sockets of other
	// uids than AgentUID (the redirected DNS, and what is sent to the
	// port itself): past DNSRate a second, after a burst of DNSBurst,
	// they are dropped and counted (dnsRateRules). Zero means
	// DefaultDNSRate, DefaultDNSBurst.
	DNSRate, DNSBurst uint32
}

// The DNS filter's per-uid bound when the configuration names none. A
// busy resolver client, a mail server checking each message against a
// few DNS blocklists, asks some hundreds of names a second; the filter
// answers some 14,000 a second on two cores (one uid unbounded sends
// fifteen times that), so a user at the bound leaves the others most of
// it, and it takes seven at once to fill it.
const (
	DefaultDNSRate  = 2000
	DefaultDNSBurst = 4000
)

// MaxDNSRate bounds DNSRate and DNSBurst: a bound above what the filter
// can read bounds nothing.
const MaxDNSRate = 1000000

func (s Spec) dnsRate() uint32 {
	if s.DNSRate == 0 {
		return DefaultDNSRate
	}
	return s.DNSRate
}

func (s Spec) dnsBurst() uint32 {
	if s.DNSBurst == 0 {
		return DefaultDNSBurst
	}
	return s.DNSBurst
}

func (s Spec) forward() Forwarding {
	if s.Forward == "" {
		return ForwardEgress
	}
	return s.Forward
}

// Key is a canonical digest of s: equal specs have equal keys, so a caller
// applies only what changed.
func (s Spec) Key() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%v|%d|%s|dns %d uid %d rate %d/%d\n", s.Mode, s.Egress, s.logGroup(), s.forward(), s.DNSPort, s.AgentUID, s.dnsRate(), s.dnsBurst())
	for _, a := range s.Inbound {
		fmt.Fprintf(&b, "in %s\n", a)
	}
	for _, a := range s.Outbound {
		fmt.Fprintf(&b, "out %s\n", a)
	}
	for _, be := range s.Backends {
		fmt.Fprintf(&b, "backend %s\n", be)
	}
	return b.String()
}

// Backend is the app port of a local service registered with a uid: the
// mesh delivers its callers there, over loopback, from the agent. Other
// local users connecting to it, over loopback or to one of the node's own
// addresses (which the kernel carries over loopback too), would go round
// the mesh and its intentions; only UIDs and root may. The port is the
// service's in both protocols: the mesh carries TCP alone, so a datagram
// to the port's UDP (a DNS, syslog or QUIC service listening there too)
// from another local user goes round the mesh as well.
type Backend struct {
	Service string
	Port    uint16
	UIDs    []int // the service's uid, the agent's; root is always admitted
}

// backendProtos are the protocols of a Backend's port that are guarded.
var backendProtos = []Proto{TCP, UDP}

func (b Backend) String() string {
	return fmt.Sprintf("app port %d (tcp, udp) of %s: uids %s only", b.Port, b.Service, b.uids())
}

// guard names the rule that guards one protocol of the port, as "moat node
// firewall show" prints it.
func (b Backend) guard(p Proto) string {
	return fmt.Sprintf("app port %s/%d of %s: uids %s only", p, b.Port, b.Service, b.uids())
}

func (b Backend) uids() string {
	u := make([]string, len(b.UIDs))
	for i, x := range b.UIDs {
		u[i] = strconv.Itoa(x)
	}
	return strings.Join(u, ",")
}

func (s Spec) logGroup() uint16 {
	if s.LogGroup == 0 {
		return DefaultLogGroup
	}
	return s.LogGroup
}

// Validate checks what Build cannot guarantee for operator input.
func (s Spec) Validate() error {
	if _, err := ParseMode(string(s.Mode)); err != nil {
		return fmt.Errorf("firewall: mode: %w", err)
	}
	if _, err := ParseForwarding(string(s.Forward)); err != nil {
		return fmt.Errorf("firewall: forwarding: %w", err)
	}
	for _, be := range s.Backends {
		if be.Port == 0 || len(be.UIDs) == 0 || len(be.UIDs) > 8 {
			return fmt.Errorf("firewall: app port of %s: port %d, %d uids", be.Service, be.Port, len(be.UIDs))
		}
		if len(be.Service) > 120 {
			return fmt.Errorf("firewall: service name too long (%d bytes)", len(be.Service))
		}
		for _, u := range be.UIDs {
			if u < 0 || int64(u) > 0xfffffffe {
				return fmt.Errorf("firewall: app port of %s: uid %d", be.Service, u)
			}
		}
	}
	for _, list := range [][]Allow{s.Inbound, s.Outbound} {
		for _, a := range list {
			if a.Proto != TCP && a.Proto != UDP {
				return fmt.Errorf("firewall: %s: protocol %q", a.Why, a.Proto)
			}
			if a.Port == 0 {
				return fmt.Errorf("firewall: %s: port 0", a.Why)
			}
			if len(a.Why) > 120 {
				return fmt.Errorf("firewall: rule comment too long (%d bytes)", len(a.Why))
			}
			for _, n := range a.Nets {
				if !n.IsValid() || n != n.Masked() {
					return fmt.Errorf("firewall: %s: bad network %v", a.Why, n)
				}
			}
			if len(a.UIDs) > 8 {
				return fmt.Errorf("firewall: %s: %d uids", a.Why, len(a.UIDs))
			}
			for _, u := range a.UIDs {
				if u < 0 || int64(u) > 0xfffffffe {
					return fmt.Errorf("firewall: %s: uid %d", a.Why, u)
				}
			}
		}
	}
	if s.DNSPort != 0 && (s.AgentUID < 0 || int64(s.AgentUID) > 0xfffffffe) {
		return fmt.Errorf("firewall: DNS filter: agent uid %d", s.AgentUID)
	}
	if s.DNSRate > MaxDNSRate || s.DNSBurst > MaxDNSRate {
		return fmt.Errorf("firewall: DNS filter: rate %d, burst %d (at most %d)", s.DNSRate, s.DNSBurst, MaxDNSRate)
	}
	return nil
}

// Inputs is what the agent knows that decides its node's rules.
type Inputs struct {
	Mode Mode
	// MeshPort is the node's mesh port (mutual TLS), open to all.
	MeshPort uint16
	// ControlPlane lists every control-plane server. They are admitted
	// outbound always, and a server's port inbound when the address is
	// this node's own (LocalAddrs).
	ControlPlane []netip.AddrPort
	// LocalAddrs are this node's addresses, to tell whether it is a server.
	LocalAddrs []netip.Addr
	// ServerPorts are control-plane ports this node serves, when known
	// otherwise (a server listening on 0.0.0.0).
	ServerPorts []uint16
	// PublicPorts are the edge gateway's ports on this node, open to all.
	PublicPorts []uint16
	// Plaintext lists permissive services' plaintext ports on this node.
	Plaintext []PlaintextPort
	// Backends are the app ports of this node's services registered with
	// a uid.
	Backends []Backend
	// Forward is how routed connections that were not published are
	// treated; "" means ForwardEgress.
	Forward Forwarding
	// Peers are the other nodes' mesh addresses, admitted to AgentUID
	// alone.
	Peers []Peer
	// Resolvers are the DNS servers the node may ask (UDP and TCP 53).
	Resolvers []netip.Addr
	// DNSPort, when not zero, is the port of the agent's DNS filter
	// (DNSFilter): the resolvers are admitted to AgentUID alone, and
	// other uids' DNS, and with ForwardEgress the DNS the node routes, is
	// taken to the filter. Zero is DNSOpen.
	DNSPort uint16
	// AgentUID is the agent's uid: the one that dials peers' mesh ports
	// (Peers), which are admitted to it alone, since a peer's mesh
	// address is what its node says; and the resolvers' with DNSPort.
	AgentUID int
	// DNSRate and DNSBurst bound each local uid's DNS to the filter
	// (Spec.DNSRate); zero means the defaults.
	DNSRate, DNSBurst uint32
	// Inbound and Outbound are what the operator lists.
	Inbound, Outbound []Allow
	// Egress says this node connects out itself for the egress path (it
	// is the egress gateway, or a node allowed to egress directly).
	Egress   bool
	LogGroup uint16
}

// PlaintextPort is a permissive service's plaintext listener and the
// networks its rules admit (empty: none, the port stays closed; a /0: any).
type PlaintextPort struct {
	Service string
	Port    uint16
	Nets    []netip.Prefix
}

// Peer is another node's mesh address.
type Peer struct {
	Node string
	Addr netip.AddrPort
}

// Build derives a node's ruleset. The order is stable (sorted), so that
// an unchanged registry gives an unchanged Spec.Key.
func Build(in Inputs) Spec {
	s := Spec{Mode: in.Mode, Egress: in.Egress, LogGroup: in.LogGroup, Forward: in.Forward}
	if s.Mode == "" {
		s.Mode = ModeOff
	}
	if in.DNSPort != 0 && s.Mode != ModeOff {
		s.DNSPort, s.AgentUID = in.DNSPort, in.AgentUID
		s.DNSRate, s.DNSBurst = in.DNSRate, in.DNSBurst
	}
	if s.Forward == "" {
		s.Forward = ForwardEgress
	}
	if in.MeshPort != 0 {
		s.Inbound = append(s.Inbound, Allow{Why: "mesh port", Proto: TCP, Port: in.MeshPort})
	}
	serverPorts := slices.Clone(in.ServerPorts)
	for _, cp := range in.ControlPlane {
		if slices.Contains(in.LocalAddrs, cp.Addr().Unmap()) {
			serverPorts = append(serverPorts, cp.Port())
		}
	}
	slices.Sort(serverPorts)
	for _, p := range slices.Compact(serverPorts) {
		s.Inbound = append(s.Inbound, Allow{Why: "control plane (this node is a server)", Proto: TCP, Port: p})
	}
	pub := slices.Clone(in.PublicPorts)
	slices.Sort(pub)
	for _, p := range slices.Compact(pub) {
		s.Inbound = append(s.Inbound, Allow{Why: "gateway public port", Proto: TCP, Port: p})
	}
	pts := slices.Clone(in.Plaintext)
	sort.Slice(pts, func(i, j int) bool { return pts[i].Port < pts[j].Port })
	for _, p := range pts {
		if len(p.Nets) == 0 {
			continue // no rule admits plaintext: nothing to open
		}
		nets := sortedNets(p.Nets)
		if slices.ContainsFunc(nets, func(n netip.Prefix) bool { return n.Bits() == 0 }) {
			nets = nil
		}
		s.Inbound = append(s.Inbound, Allow{Why: "plaintext port of permissive " + p.Service, Proto: TCP, Port: p.Port, Nets: nets})
	}
	s.Inbound = append(s.Inbound, in.Inbound...)

	cps := slices.Clone(in.ControlPlane)
	slices.SortFunc(cps, func(a, b netip.AddrPort) int { return a.Compare(b) })
	for _, cp := range slices.Compact(cps) {
		s.Outbound = append(s.Outbound, Allow{Why: "control plane " + cp.String(), Proto: TCP, Port: cp.Port(), Nets: []netip.Prefix{host(cp.Addr())}})
	}
	peers := slices.Clone(in.Peers)
	sort.Slice(peers, func(i, j int) bool {
		if c := peers[i].Addr.Compare(peers[j].Addr); c != 0 {
			return c < 0
		}
		return peers[i].Node < peers[j].Node
	})
	seen := map[netip.AddrPort]bool{}
	for _, p := range peers {
		if !p.Addr.IsValid() || seen[p.Addr] || p.Addr.Addr().IsLoopback() {
			continue // loopback is admitted anyway
		}
		seen[p.Addr] = true
		s.Outbound = append(s.Outbound, Allow{Why: "mesh of node " + p.Node, Proto: TCP, Port: p.Addr.Port(), Nets: []netip.Prefix{host(p.Addr.Addr())}, UIDs: []int{in.AgentUID}})
	}
	var dns []netip.Prefix
	for _, r := range in.Resolvers {
		if !r.Unmap().IsLoopback() {
			dns = append(dns, host(r))
		}
	}
	if dns = sortedNets(dns); len(dns) > 0 {
		why, uids := "DNS resolvers", []int(nil)
		if s.DNSPort != 0 {
			why, uids = "DNS resolvers (the agent's, for its DNS filter)", []int{s.AgentUID}
		}
		s.Outbound = append(s.Outbound,
			Allow{Why: why, Proto: UDP, Port: 53, Nets: dns, UIDs: uids},
			Allow{Why: why, Proto: TCP, Port: 53, Nets: dns, UIDs: uids})
	}
	s.Outbound = append(s.Outbound, in.Outbound...)
	for _, be := range in.Backends {
		uids := append([]int{0}, be.UIDs...)
		slices.Sort(uids)
		s.Backends = append(s.Backends, Backend{Service: be.Service, Port: be.Port, UIDs: slices.Compact(uids)})
	}
	sort.SliceStable(s.Backends, func(i, j int) bool {
		if s.Backends[i].Port != s.Backends[j].Port {
			return s.Backends[i].Port < s.Backends[j].Port
		}
		return s.Backends[i].Service < s.Backends[j].Service
	})
	return s
}

func host(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen())
}

func sortedNets(nets []netip.Prefix) []netip.Prefix {
	out := slices.Clone(nets)
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(out)
}

// ParseAllow reads an operator's port entry: "PORT", "PORT/PROTO",
// "NET:PORT" or "NET:PORT/PROTO" (NET a CIDR network or an address, IPv6
// in brackets: "[fd00::/8]:22").
func ParseAllow(s, why string) (Allow, error) {
	a := Allow{Why: why, Proto: TCP}
	rest := s
	if i := strings.LastIndexByte(rest, '/'); i >= 0 && !strings.ContainsAny(rest[i:], ":]") {
		switch Proto(rest[i+1:]) {
		case TCP, UDP:
			a.Proto = Proto(rest[i+1:])
		default:
			return a, fmt.Errorf("%q: protocol %q (want tcp or udp)", s, rest[i+1:])
		}
		rest = rest[:i]
	}
	portStr := rest
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		netStr := strings.TrimSuffix(strings.TrimPrefix(rest[:i], "["), "]")
		portStr = rest[i+1:]
		var n netip.Prefix
		var err error
		if strings.Contains(netStr, "/") {
			n, err = netip.ParsePrefix(netStr)
			if err == nil && n != n.Masked() {
				return a, fmt.Errorf("%q: %s has host bits set; the network is %s", s, netStr, n.Masked())
			}
		} else {
			var ad netip.Addr
			ad, err = netip.ParseAddr(netStr)
			n = host(ad)
		}
		if err != nil {
			return a, fmt.Errorf("%q: want NETWORK:PORT, NETWORK a CIDR network or an address", s)
		}
		n = netip.PrefixFrom(n.Addr().Unmap(), min(n.Bits(), n.Addr().Unmap().BitLen()))
		if n.Bits() != 0 {
			a.Nets = []netip.Prefix{n}
		}
	}
	p, err := strconv.Atoi(portStr)
	if err != nil || p < 1 || p > 65535 {
		return a, fmt.Errorf("%q: port %q (want 1-65535)", s, portStr)
	}
	a.Port = uint16(p)
	if a.Why == "" {
		a.Why = "operator: " + s
	}
	return a, nil
}

// Bypass is a rule of another program's nftables table that takes
// packets round moat's rules: moat's table cannot undo it (each table
// judges packets apart), so the guard reports it (Manager.Bypasses).
type Bypass struct {
	Family string     `json:"family"` // ip, ip6, inet, bridge, netdev, arp
	Table  string     `json:"table"`
	Chain  string     `json:"chain"`
	Handle uint64     `json:"handle"`
	Kind   BypassKind `json:"kind"`
}

// BypassKind is what a Bypass does.
type BypassKind string

// Bypass kinds.
const (
	// BypassMark sets moat's mark (Mark, on a packet or its connection):
	// a socket of any uid would pass as the egress path's and use the
	// pins. While one stands, the pins are withheld.
	BypassMark BypassKind = "mark"
	// BypassNotrack exempts traffic other than loopback's from connection
	// tracking, which moat's rules read (state, NAT, the DNS redirect):
	// such packets are refused rather than admitted, and what breaks is
	// reported.
	BypassNotrack BypassKind = "notrack"
)

func (b Bypass) String() string {
	what := fmt.Sprintf("sets moat's mark %#x", Mark)
	if b.Kind == BypassNotrack {
		what = "notrack on traffic other than loopback's"
	}
	return fmt.Sprintf("table %s %s, chain %s, rule handle %d: %s", b.Family, b.Table, b.Chain, b.Handle, what)
}

// ErrUnsupported is returned where there is no nftables (not Linux).
var ErrUnsupported = errors.New("firewall: the host firewall needs Linux and nftables")

// SystemResolvers lists the name servers of /etc/resolv.conf, and behind a
// local stub (systemd-resolved's 127.0.0.53) the upstream servers it
// forwards to, which the host must reach too.
func SystemResolvers() []netip.Addr {
	var out []netip.Addr
	stub := false
	for _, f := range []string{"/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"} {
		if f != "/etc/resolv.conf" && !stub {
			break
		}
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			fields := strings.Fields(line)
			if len(fields) < 2 || fields[0] != "nameserver" {
				continue
			}
			a, err := netip.ParseAddr(fields[1])
			if err != nil {
				continue
			}
			if a.IsLoopback() {
				stub = true
			}
			out = append(out, a.Unmap())
		}
	}
	return out
}
