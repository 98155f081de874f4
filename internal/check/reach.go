package check

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"go4.org/netipx"

	"moat/internal/check/tf"
)

// Hop is one step of a path: what was crossed and which rule let it through
// (or, for the last hop of a blocked path, what stopped it, and Blocked).
type Hop struct {
	Kind   string `json:"kind"` // source, igw, route, subnet, nacl, nsg, sg, firewall, gateway, lb, endpoint
	Addr   string `json:"address,omitempty"`
	Detail string `json:"detail"`
	// Blocked marks the hop where a path that does not arrive stops:
	// the hops before it were crossed, it was not.
	Blocked bool `json:"blocked,omitempty"`
}

func (h Hop) String() string {
	if h.Addr == "" {
		return h.Detail
	}
	return h.Addr + ": " + h.Detail
}

// Result answers one reachability question.
type Result struct {
	Reachable bool
	// Path holds the hops crossed; when not reachable its last hop is the
	// one that blocks.
	Path []Hop
	// From is the set of source addresses that arrive (nil when blocked).
	From *netipx.IPSet
	// Assumed lists what the path takes at its most permissive because it
	// could not be evaluated; a path with assumptions is not proven.
	Assumed []string
	// Bound, when set, bounds From (see Bound).
	Bound *Bound
}

// Source is where traffic starts: the internet, or addresses inside a VPC
// (a subnet, a peered VPC) optionally carrying security group membership.
type Source struct {
	Name     string
	Internet bool
	VPC      *VPC
	Subnet   *Subnet
	Set      *netipx.IPSet
	SGs      map[string]bool // addresses of the groups the source belongs to
	// Gateway is the VPN gateway a network behind a site-to-site VPN
	// sends from; its return traffic leaves by the routes to it.
	Gateway string
	// Transit, when set, says how the source's traffic is forwarded by an
	// appliance whose rules are not read (transitSources): its return
	// traffic is read as going back the same way.
	Transit string
	// Service, when set, is the AWS-managed prefix list whose ranges the
	// source sends from (CloudFront's origin-facing servers): a rule
	// naming it admits the source.
	Service string
}

func setOf(ps ...netip.Prefix) *netipx.IPSet {
	var b netipx.IPSetBuilder
	for _, p := range ps {
		b.AddPrefix(p)
	}
	s, _ := b.IPSet()
	return s
}

func union(a, b *netipx.IPSet) *netipx.IPSet {
	var sb netipx.IPSetBuilder
	sb.AddSet(a)
	sb.AddSet(b)
	s, _ := sb.IPSet()
	return s
}

func intersect(a, b *netipx.IPSet) *netipx.IPSet {
	var sb netipx.IPSetBuilder
	sb.AddSet(a)
	sb.Intersect(b)
	s, _ := sb.IPSet()
	return s
}

func minus(a, b *netipx.IPSet) *netipx.IPSet {
	var sb netipx.IPSetBuilder
	sb.AddSet(a)
	sb.RemoveSet(b)
	s, _ := sb.IPSet()
	return s
}

func empty(s *netipx.IPSet) bool { return s == nil || len(s.Ranges()) == 0 }

// internetSet is every publicly routable address: IPv4 less the private,
// shared, loopback, link-local, multicast and reserved ranges, and IPv6
// global unicast.
func internetSet() *netipx.IPSet {
	var b netipx.IPSetBuilder
	b.AddPrefix(netip.MustParsePrefix("0.0.0.0/0"))
	for _, p := range []string{"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
		"172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4"} {
		b.RemovePrefix(netip.MustParsePrefix(p))
	}
	b.AddPrefix(netip.MustParsePrefix("2000::/3"))
	s, _ := b.IPSet()
	return s
}

// Internet returns the internet as a source.
func (m *Model) Internet() Source {
	if m.internet == nil {
		m.internet = internetSet()
	}
	return Source{Name: "internet", Internet: true, Set: m.internet}
}

// SubnetSource returns the addresses of subnet s as a source; sgs are the
// security groups its senders belong to.
func (m *Model) SubnetSource(s *Subnet, sgs ...string) Source {
	set := setOf(s.CIDR)
	if !s.CIDR.IsValid() && s.VPC != nil {
		set = setOf(s.VPC.CIDRs...) // range unknown: any of its VPC's
		if len(s.VPC.CIDRs) == 0 {
			set = setOf(s.VPC.SpaceAssumed...)
		}
	}
	src := Source{Name: s.Addr, VPC: s.VPC, Subnet: s, Set: set, SGs: map[string]bool{}}
	for _, g := range sgs {
		src.SGs[g] = true
	}
	return src
}

// VPCSource returns every address of v as a source (a peered VPC's view).
func (m *Model) VPCSource(v *VPC) Source {
	return Source{Name: v.Addr, VPC: v, Set: setOf(v.CIDRs...), SGs: map[string]bool{}}
}

// describe renders a set compactly; the whole IPv4 or IPv6 internet is
// named as such, and so is the internet less a few ranges (a network that
// numbers itself from public addresses keeps them to its local route):
// "every IPv4 internet address but 26.0.0.0/16".
func (m *Model) describe(s *netipx.IPSet) string {
	if m.families == nil {
		inet := m.Internet().Set
		m.families = []*netipx.IPSet{intersect(inet, setOf(netip.MustParsePrefix("0.0.0.0/0"))),
			intersect(inet, setOf(netip.MustParsePrefix("::/0")))}
	}
	var parts []string
	rest := s
	for i, name := range []string{"every IPv4 internet address", "every IPv6 internet address"} {
		missing := minus(m.families[i], s)
		switch ps := missing.Prefixes(); {
		case empty(missing):
			parts = append(parts, name)
			rest = minus(rest, m.families[i])
		case len(ps) <= 4 && share(intersect(s, m.families[i])) >= share(m.families[i])/2:
			but := make([]string, len(ps))
			for j, p := range ps {
				but[j] = p.String()
			}
			parts = append(parts, name+" but "+strings.Join(but, ", "))
			rest = minus(rest, m.families[i])
		}
	}
	ps := rest.Prefixes()
	for i, p := range ps {
		if i == 4 {
			parts = append(parts, fmt.Sprintf("… (%d ranges)", len(ps)))
			break
		}
		parts = append(parts, p.String())
	}
	return strings.Join(parts, ", ")
}

// worldText names the internet addresses of s, which wide holds: every
// internet address, or its ranges, said to be the internet at large. They
// are named through the addresses no internet host has when that takes
// fewer ranges (0.0.0.0/1 rather than its pieces around 10.0.0.0/8).
func (m *Model) worldText(s *netipx.IPSet) string {
	inet := m.Internet().Set
	if s == nil || coversFamily(inet, s) {
		return "every internet address"
	}
	rs := s.Ranges()
	var b netipx.IPSetBuilder
	for _, p := range union(s, minus(setOf(netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")), inet)).Prefixes() {
		if !empty(intersect(intersect(s, inet), setOf(p))) {
			b.AddPrefix(p)
		}
	}
	if named, _ := b.IPSet(); len(named.Ranges()) < len(rs) {
		rs = named.Ranges()
	}
	var parts []string
	for i, r := range rs {
		if i == 4 {
			parts = append(parts, fmt.Sprintf("… (%d ranges)", len(rs)))
			break
		}
		if p, ok := r.Prefix(); ok {
			parts = append(parts, p.String())
		} else {
			parts = append(parts, r.From().String()+"-"+r.To().String())
		}
	}
	return fmt.Sprintf("the internet at large (%s: %s)", strings.Join(parts, ", "), wideText)
}

func portMatch(proto string, from, to int, wantProto string, port int) bool {
	if proto == "all" {
		return true
	}
	if proto != wantProto {
		return false
	}
	if proto == "icmp" {
		return true
	}
	return from <= port && port <= to
}

// routed returns the part of want that table t sends to a target accepted
// by ok, with the routes that carry it. Longest prefix wins.
func routed(t *RouteTable, vpc *VPC, want *netipx.IPSet, ok func(Route) bool) (*netipx.IPSet, []Route) {
	var routes []Route
	if vpc != nil {
		for _, c := range vpc.CIDRs {
			routes = append(routes, Route{Dest: c, Kind: "local", Target: "local", Where: vpc.Addr + " local route"})
		}
	}
	if t != nil {
		routes = append(routes, t.Routes...)
	}
	sort.SliceStable(routes, func(i, j int) bool { return routes[i].Dest.Bits() > routes[j].Dest.Bits() })
	var claimed, got netipx.IPSetBuilder
	var used []Route
	for _, r := range routes {
		if !ok(r) {
			claimed.AddPrefix(r.Dest)
			continue
		}
		cs, _ := claimed.IPSet()
		eff := minus(setOf(r.Dest), cs)
		claimed.AddPrefix(r.Dest)
		hit := intersect(eff, want)
		if empty(hit) {
			continue
		}
		got.AddSet(hit)
		used = append(used, r)
	}
	s, _ := got.IPSet()
	return s, used
}

// naclPass filters src through the ordered rules of an ACL direction.
func naclPass(rules []NACLRule, proto string, port int, src *netipx.IPSet) (*netipx.IPSet, []string, string) {
	var decided, allowed netipx.IPSetBuilder
	var hits []string
	blocker := "no rule matches: the final rule * denies"
	for _, r := range rules {
		if !portMatch(r.Proto, r.From, r.To, proto, port) || !r.Allow && r.Late != "" {
			continue // a deny set aside decides nothing (below)
		}
		ds, _ := decided.IPSet()
		eff := intersect(minus(setOf(r.CIDR), ds), src)
		decided.AddPrefix(r.CIDR)
		if empty(eff) {
			continue
		}
		if r.Allow {
			allowed.AddSet(eff)
			h := fmt.Sprintf("rule %d allows %s from %s", r.No, portText(r.Proto, r.From, r.To), r.CIDR)
			if r.Assumed != "" {
				h += " (" + r.Assumed + ")"
			}
			hits = append(hits, h)
		} else if blocker == "no rule matches: the final rule * denies" {
			blocker = fmt.Sprintf("rule %d denies %s from %s", r.No, portText(r.Proto, r.From, r.To), r.CIDR)
		}
	}
	s, _ := allowed.IPSet()
	// A deny set aside that may have stopped some of what passed is
	// named on the path; what passes is not read as assumed for it, as
	// the allows that admit it are known (its reason is noted).
	for _, r := range rules {
		if !r.Allow && r.Late != "" && portMatch(r.Proto, r.From, r.To, proto, port) && !empty(intersect(setOf(r.CIDR), s)) {
			hits = append(hits, fmt.Sprintf("%s%s from %s is set aside: %s", setAside, portText(r.Proto, r.From, r.To), r.CIDR, r.Late))
		}
	}
	return s, hits, blocker
}

// setAside begins the hit naclPass gives a deny set aside: it admits
// nothing, so it proves nothing either.
const setAside = "a deny of "

func portText(proto string, from, to int) string {
	switch {
	case proto == "all":
		return "all traffic"
	case proto == "icmp":
		return "icmp"
	case from == to:
		return fmt.Sprintf("%s %d", proto, from)
	}
	return fmt.Sprintf("%s %d-%d", proto, from, to)
}

// ephemeralPort stands for the client's port of return traffic when a
// stateless ACL is checked in the reverse direction.
const ephemeralPort = 49152

// sgPass filters src through the union of the groups' ingress rules. Rules
// are unordered: a self rule listed first does not hide an open one.
// sgPass returns the addresses of set that the groups admit on proto/port,
// the rules that admit them and the groups those rules are of.
func (m *Model) sgPass(sgs []*SG, proto string, port int, src Source, set *netipx.IPSet) (*netipx.IPSet, []string, []string) {
	var allowed netipx.IPSetBuilder
	var hits, admitting []string
	for _, g := range sgs {
		for _, r := range g.Ingress {
			if !portMatch(r.Proto, r.From, r.To, proto, port) {
				continue
			}
			var why []string
			if src.Service != "" && slices.Contains(r.Managed, src.Service) {
				allowed.AddSet(set)
				why = append(why, "from "+src.Service)
			} else if r.Assumed != "" {
				allowed.AddSet(set)
				why = append(why, "("+r.Assumed+")")
			}
			if len(r.CIDRs) > 0 {
				hit := intersect(setOf(r.CIDRs...), set)
				if !empty(hit) {
					allowed.AddSet(hit)
					cs := make([]string, len(r.CIDRs))
					for i, c := range r.CIDRs {
						cs[i] = c.String()
					}
					why = append(why, "from "+strings.Join(cs, ", "))
				}
			}
			member := false
			for _, ref := range r.SGs {
				if src.SGs[ref] {
					member, why = true, append(why, "from members of "+ref)
				}
			}
			if r.Self && src.SGs[g.Addr] {
				self := "self"
				if r.SelfAssumed != "" {
					self = r.SelfAssumed
				}
				member, why = true, append(why, "from its own members ("+self+")")
			}
			if member {
				allowed.AddSet(set)
			}
			if len(why) > 0 {
				if r.PortsAssumed != "" {
					why[len(why)-1] += " (" + r.PortsAssumed + ")"
				}
				hits = append(hits, fmt.Sprintf("%s allows %s %s", r.Where, portText(r.Proto, r.From, r.To), strings.Join(why, "; ")))
				if len(admitting) == 0 || admitting[len(admitting)-1] != g.Addr {
					admitting = append(admitting, g.Addr)
				}
			}
		}
	}
	s, _ := allowed.IPSet()
	return s, hits, admitting
}

// Reach answers whether src can open proto/port on e, with the path: its
// own, or one through a gateway that publishes it to the internet, the
// proven one first.
func (m *Model) Reach(src Source, e *Endpoint, proto string, port int) Result {
	r := m.reach(src, e, proto, port)
	if r.Reachable && e.PortsAssumed != "" {
		r.Assumed = append([]string{e.Addr + ": " + e.PortsAssumed}, r.Assumed...)
	}
	if !src.Internet || len(e.Published) == 0 || r.Reachable && len(r.Assumed) == 0 {
		return r.markBlocked()
	}
	if p, ok := m.reachPublished(src, e, proto, port); ok && (!r.Reachable || len(p.Assumed) == 0) {
		return p.markBlocked()
	}
	return r.markBlocked()
}

// markBlocked marks the last hop of a path that does not arrive as the
// one that stopped it, on a copy: paths share their leading hops.
func (r Result) markBlocked() Result {
	if r.Reachable || len(r.Path) == 0 {
		return r
	}
	r.Path = slices.Clone(r.Path)
	r.Path[len(r.Path)-1].Blocked = true
	return r
}

func (m *Model) reach(src Source, e *Endpoint, proto string, port int) Result {
	first := Hop{Kind: "source", Addr: "", Detail: src.Name}
	if src.Internet && len(e.Families) > 0 {
		src.Set = intersect(src.Set, setOf(e.Families...))
	}
	if e.Managed && e.InVPC && !src.Internet {
		// Its interfaces in its subnets, as a private endpoint's.
		u := *e
		u.Managed, u.Public, u.InVPC = false, false, false
		r := m.reach(src, &u, proto, port)
		if r.Reachable && e.InVPCAssumed != "" {
			r.Assumed = append([]string{e.Addr + ": " + e.InVPCAssumed}, r.Assumed...)
		}
		return r
	}
	if e.Managed {
		path := []Hop{first}
		if !src.Internet || !e.Public {
			return Result{Path: append(path, Hop{Kind: "endpoint", Addr: e.Addr, Detail: "managed endpoint outside the VPC; no path modelled"})}
		}
		if e.Listens != nil && !e.Listens(proto, port) {
			return Result{Path: append(path, Hop{Kind: "endpoint", Addr: e.Addr, Detail: fmt.Sprintf("no listener on %s (%s)", portText(proto, port, port), e.listenText())})}
		}
		got := intersect(setOf(e.Allowed...), src.Set)
		var assumed []string
		// What the unknown element adds is said only when the known
		// ranges do not already admit a whole address family, the worst
		// a finding can say.
		if e.AllowedAssumed != "" && !coversFamily(src.Set, got) {
			got = src.Set
			assumed = append(assumed, e.Addr+": "+e.AllowedAssumed)
		}
		if empty(got) {
			return Result{Path: append(path, Hop{Kind: "endpoint", Addr: e.Addr, Detail: "public endpoint admits no internet address"})}
		}
		if e.PublicAssumed {
			assumed = append(assumed, e.Addr+": "+e.Why)
		}
		var bound *Bound
		if e.AllowedBounded != nil {
			bound = &Bound{Known: intersect(setOf(e.Allowed...), src.Set), Bits: e.AllowedBounded}
		}
		return Result{Reachable: true, From: got, Assumed: assumed, Path: append(path,
			Hop{Kind: "endpoint", Addr: e.Addr, Detail: fmt.Sprintf("public endpoint (%s) admits %s", e.Why, m.describe(got))})}.within(bound)
	}
	placed := len(e.Subnets) > 0 || len(e.SubnetsMaybe) > 0 && !e.SubnetsAny
	if !placed && e.Azure && src.Internet && e.Public {
		return m.reachAzureUnplaced(src, e, proto, port)
	}
	if !placed && src.Internet && e.Public {
		return m.reachAWSUnplaced(src, e, proto, port)
	}
	if !placed && src.Internet && !e.Public {
		return Result{Path: []Hop{first, {Kind: "endpoint", Addr: e.Addr, Detail: "has no public address"}}}
	}
	if !placed {
		return Result{Path: []Hop{first, {Kind: "endpoint", Addr: e.Addr, Detail: "its subnets are not known"}}}
	}
	var res Result
	for i, s := range e.Subnets {
		r := m.reachVia(src, e, s, proto, port)
		if r.Reachable {
			return r
		}
		if i == 0 || len(r.Path) > len(res.Path) {
			res = r
		}
	}
	// A subnet not known statically: any it may be, else one outside
	// the scanned code. A path through one is not proven.
	if e.SubnetsUnknown == "" {
		return res
	}
	if e.SubnetsAny {
		if !src.Internet || !e.Public || e.Azure {
			return res
		}
		u := *e
		u.Unplaced = e.SubnetsUnknown + ", read as one outside the scanned code, routed to an internet gateway, with a network ACL that allows all"
		return m.reachAWSUnplaced(src, &u, proto, port)
	}
	for _, s := range e.SubnetsMaybe {
		r := m.reachVia(src, e, s, proto, port)
		if r.Reachable {
			r.Assumed = append([]string{e.Addr + ": " + e.SubnetsUnknown}, r.Assumed...)
			return r
		}
		if len(res.Path) == 0 || len(r.Path) > len(res.Path) {
			res = r
		}
	}
	return res
}

func (m *Model) reachVia(src Source, e *Endpoint, s *Subnet, proto string, port int) Result {
	var res Result
	for i, t := range m.tablesOf(s) {
		r := m.reachVia1(src, e, s, t, proto, port)
		if i > 0 && r.Reachable {
			r.Assumed = append(r.Assumed, fmt.Sprintf("the route table of %s is not known statically: assumed to be %s", s.Addr, tableName(t, s)))
		}
		if r.Reachable {
			return r
		}
		if i == 0 {
			res = r
		}
	}
	return res
}

func tableName(t *RouteTable, s *Subnet) string {
	if t == nil {
		return "implicit main route table of " + vpcName(s.VPC)
	}
	return t.Addr
}

// assumptions collects what the routes used were assumed to be.
func assumptions(rs []Route) []string {
	var out []string
	for _, r := range rs {
		if r.Assumed != "" {
			out = append(out, r.Where+": "+r.Assumed)
		}
	}
	return out
}

// tableKey names a route table as it governs a subnet of a VPC.
type tableKey struct {
	t *RouteTable
	v *VPC
}

type routedSet struct {
	got  *netipx.IPSet
	used []Route
}

// internetRoutes returns the internet addresses that t (in vpc) routes to
// an internet gateway attached to vpc, and the routes used; the answer is
// the same for every endpoint of every subnet that t governs, so it is
// kept.
func (m *Model) internetRoutes(t *RouteTable, vpc *VPC) (*netipx.IPSet, []Route) {
	k := tableKey{t, vpc}
	if r, ok := m.inetRouted[k]; ok {
		return r.got, r.used
	}
	got, used := routed(t, vpc, m.Internet().Set, func(r Route) bool { return m.toInternet(r, vpc) })
	if m.inetRouted == nil {
		m.inetRouted = map[tableKey]routedSet{}
	}
	m.inetRouted[k] = routedSet{got, used}
	return got, used
}

func (m *Model) reachVia1(src Source, e *Endpoint, s *Subnet, t *RouteTable, proto string, port int) Result {
	path := []Hop{{Kind: "source", Detail: src.Name}}
	var assumed []string
	block := func(h Hop) Result { return Result{Path: append(path, h)} }
	set := src.Set
	tname := tableName(t, s)
	var lb *Hop
	switch {
	case src.Internet:
		if !e.Public {
			return block(Hop{Kind: "endpoint", Addr: e.Addr, Detail: "has no public address"})
		}
		if e.PublicAssumed {
			assumed = append(assumed, e.Addr+": "+e.Why)
		}
		if e.InternetPorts != nil && !e.InternetPorts(proto, port) {
			return block(Hop{Kind: "endpoint", Addr: e.Addr, Detail: fmt.Sprintf("no rule forwards %s to it (%s)", portText(proto, port, port), e.Why)})
		}
		// A public load balancer forwards within the network: its hop
		// comes after the network's edge and routes, before the subnet.
		if h, ok := e.balancerHop(proto, port); ok {
			lb = &h
		}
		if why, ok := e.ForwardBlocked[port]; ok && proto == "tcp" {
			return block(Hop{Kind: "endpoint", Addr: e.Addr, Detail: why})
		}
		got, used := m.internetRoutes(t, s.VPC)
		if empty(got) && s.VPC == nil && t == nil {
			// The main table of a VPC outside the scanned code.
			why := s.Addr + ": its VPC is not in the scanned code: its main route table is assumed to route to an internet gateway"
			got, assumed = src.Set, append(assumed, why)
			path = append(path, Hop{Kind: "route", Addr: s.Addr, Detail: why})
		} else {
			if empty(got) {
				return block(Hop{Kind: "route", Addr: tname, Detail: "no route to an internet gateway attached to " + vpcName(s.VPC)})
			}
			gw := used[0].Target
			fw, why, inspected := m.inspectedHop(used)
			if (gw == "" || inspected) && s.VPC != nil {
				gw = m.igwOf(s.VPC)
			}
			igw := Hop{Kind: "igw", Addr: gw, Detail: "internet gateway attached to " + vpcName(s.VPC)}
			if gw == "" {
				igw.Detail = "an internet gateway not in the scanned code, attached to " + vpcName(s.VPC)
			}
			path = append(path, igw)
			if inspected {
				path, assumed = append(path, fw), append(assumed, why)
			}
			var rs []string
			for _, r := range used {
				rs = append(rs, fmt.Sprintf("%s → %s", r.Dest, orUnknown(r.Target)))
			}
			assumed = append(assumed, assumptions(used)...)
			path = append(path, Hop{Kind: "route", Addr: tname, Detail: strings.Join(rs, "; ") + " (" + routeWhere(used) + ")"})
		}
		if len(e.Families) > 0 {
			// src.Set holds only its public IPs' address families.
			if got = intersect(got, src.Set); empty(got) {
				return block(Hop{Kind: "endpoint", Addr: e.Addr, Detail: "its public IPs are of another address family (ip_version)"})
			}
		}
		set = got
	case src.VPC != nil && s.VPC != nil && src.VPC == s.VPC:
		path = append(path, Hop{Kind: "route", Addr: tname, Detail: "local route within " + s.VPC.Addr})
	case src.Transit != "":
		path = append(path, Hop{Kind: "route", Addr: tname, Detail: "return traffic read as going back through the appliance"})
	default:
		got, used := routed(t, s.VPC, set, func(r Route) bool {
			if src.Gateway != "" {
				return r.Target == src.Gateway
			}
			_, ok := m.joins(r, src.VPC, s.VPC)
			return ok
		})
		if empty(got) {
			how := "through a peering or a transit gateway both VPCs are attached to"
			if src.Gateway != "" {
				how = "to " + src.Gateway
			}
			return block(Hop{Kind: "route", Addr: tname, Detail: "no return route to " + src.Name + " " + how})
		}
		var rs []string
		for _, r := range used {
			rs = append(rs, fmt.Sprintf("%s → %s", r.Dest, orUnknown(r.Target)))
		}
		assumed = append(assumed, assumptions(used)...)
		path = append(path, Hop{Kind: "route", Addr: tname, Detail: strings.Join(rs, "; ") + " (" + routeWhere(used) + ")"})
		set = got
	}
	subnet := "subnet " + s.CIDR.String()
	if !s.CIDR.IsValid() {
		subnet = "subnet (range not known statically)"
	}
	if lb != nil {
		path = append(path, *lb)
	}
	path = append(path, Hop{Kind: "subnet", Addr: s.Addr, Detail: subnet})
	var bound *Bound
	if acl := s.ACL(); acl != nil && acl.Assumed == "" && len(s.ACLs()) == 1 {
		rules := acl.Ingress
		if acl.Stateful {
			rules = e.nsgRulesFor(rules)
		}
		bound = naclBound(rules, proto, port, set)
	}
	got, hop, as, ok := m.naclHop(e, s, s.ACL(), src, proto, port, set)
	for _, acl := range s.ACLs()[1:] {
		// An ACL that may govern s instead: s is filtered by whichever
		// admits more.
		g, h, a, pass := m.naclHop(e, s, acl, src, proto, port, set)
		if !pass || ok && union(got, g).Equal(got) {
			continue
		}
		a = append(a, s.Addr+": "+acl.Addr+": "+acl.SubnetsUnknown)
		if !ok {
			got, hop, as, ok = g, h, a, true
			continue
		}
		got, as = union(got, g), append(as, a...)
		path = append(path, hop)
		hop = h
	}
	if !ok {
		return block(hop)
	}
	set, assumed, path = got, append(assumed, as...), append(path, hop)
	if e.Listens != nil && !e.Listens(proto, port) {
		return block(Hop{Kind: "endpoint", Addr: e.Addr, Detail: fmt.Sprintf("no listener on %s (%s)", portText(proto, port, port), e.listenText())})
	}
	for _, g := range e.NSGs {
		if g.Assumed != "" {
			assumed = append(assumed, g.Addr+": "+g.Assumed)
			path = append(path, Hop{Kind: "nsg", Addr: g.Addr, Detail: "inbound (network interface) " + g.Assumed})
			continue
		}
		rules := e.nsgRulesFor(g.Ingress)
		got, hits, blocker := naclPass(rules, proto, port, set)
		if empty(got) {
			return block(Hop{Kind: "nsg", Addr: g.Addr, Detail: "inbound (network interface) " + blocker})
		}
		if b := naclBound(rules, proto, port, set); b != nil {
			bound = b
		}
		set = got
		assumed = append(assumed, assumedHits(g.Addr, hits)...)
		path = append(path, Hop{Kind: "nsg", Addr: g.Addr, Detail: "inbound (network interface) " + strings.Join(hits, "; ")})
	}
	if !e.Azure {
		got, hop, as, ok := m.sgHop(e, s.VPC, src, proto, port, set)
		if !ok {
			return block(hop)
		}
		if b := m.sgBound(e, proto, port, src, set); b != nil {
			bound = b
		}
		set, assumed, path = got, append(assumed, as...), append(path, hop)
	}
	detail := e.Kind
	if e.Public && src.Internet {
		detail += " with a public address (" + e.Why + ")"
	}
	path = append(path, Hop{Kind: "endpoint", Addr: e.Addr, Detail: fmt.Sprintf("%s, %s reached from %s", detail, portText(proto, port, port), m.describe(set))})
	return Result{Reachable: true, Path: path, From: set, Assumed: assumed}.within(bound)
}

// sgHop filters set through e's security groups on proto/port: what they
// admit, the hop that says so (or that blocks, ok false) and what was
// assumed of groups not known statically. Where e names none, AWS gives it
// the default group of vpc (its subnet's VPC, nil when not known): groupsOf.
func (m *Model) sgHop(e *Endpoint, vpc *VPC, src Source, proto string, port int, set *netipx.IPSet) (got *netipx.IPSet, hop Hop, assumed []string, ok bool) {
	sgs := e.SGs
	switch {
	case e.SGsUnknown != "":
		return set, Hop{Kind: "sg", Addr: e.Addr + ":security-groups", Detail: e.SGsUnknown}, []string{e.Addr + ": " + e.SGsUnknown}, true
	case len(sgs) == 0 && e.Kind == "lb" && !takesDefaultSG(e):
		// No resource filters here: the hop names none (the balancer is
		// the next).
		return set, Hop{Kind: "sg", Detail: noGroupHop(e)}, nil, true
	case len(sgs) == 0:
		if sgs = m.groupsOf(e, vpc); len(sgs) == 0 {
			return nil, Hop{Kind: "sg", Addr: e.Addr, Detail: "no security group is known: the VPC's default group admits only its own members"}, nil, false
		}
	}
	got, hits, admitting := m.sgPass(sgs, proto, port, src, set)
	if empty(got) {
		var names []string
		for _, g := range sgs {
			names = append(names, g.Addr)
		}
		return nil, Hop{Kind: "sg", Addr: strings.Join(names, ", "), Detail: fmt.Sprintf("no ingress rule admits %s from %s", portText(proto, port, port), m.describe(set))}, nil, false
	}
	for _, h := range hits {
		if strings.Contains(h, "assumed") {
			assumed = append(assumed, h)
		}
	}
	if len(assumed) > 0 {
		// Rules read at their most permissive add nothing where the
		// known ones admit all they would: the path rests on those.
		if known, khits, kadmitting := m.sgPass(knownRules(sgs), proto, port, src, set); !empty(known) && empty(minus(got, known)) {
			hits, admitting, assumed = khits, kadmitting, nil
		}
	}
	// Named by the groups whose rules admit the port, not the first
	// group attached.
	return got, Hop{Kind: "sg", Addr: strings.Join(admitting, ", "), Detail: strings.Join(hits, "; ")}, assumed, true
}

// knownRules are sgs with only their ingress rules that rest on no
// assumption (a source or ports not known statically), less a self read
// as true for not being known.
func knownRules(sgs []*SG) []*SG {
	out := make([]*SG, 0, len(sgs))
	for _, g := range sgs {
		c := *g
		c.Ingress = nil
		for _, r := range g.Ingress {
			if r.Assumed == "" && r.PortsAssumed == "" {
				if r.SelfAssumed != "" {
					r.Self, r.SelfAssumed = false, ""
				}
				c.Ingress = append(c.Ingress, r)
			}
		}
		out = append(out, &c)
	}
	return out
}

// nsgRulesFor returns the NSG rules that apply to e: an allow whose
// destination names addresses, none of which e may have, does not. With
// e's private addresses not all known, every rule may apply.
func (e *Endpoint) nsgRulesFor(rules []NACLRule) []NACLRule {
	if e == nil || e.PrivateIPs == nil {
		return rules
	}
	out := make([]NACLRule, 0, len(rules))
	for _, r := range rules {
		if r.Allow && r.Dest != nil && !slices.ContainsFunc(e.PrivateIPs, func(a netip.Addr) bool {
			return slices.ContainsFunc(r.Dest, func(p netip.Prefix) bool { return p.Contains(a) })
		}) {
			continue
		}
		out = append(out, r)
	}
	return out
}

func assumedHits(addr string, hits []string) []string {
	var out []string
	for _, h := range hits {
		if strings.Contains(h, "assumed") {
			out = append(out, addr+": "+h)
		}
	}
	return out
}

func orUnknown(s string) string {
	if s == "" {
		return "(target not known statically)"
	}
	return s
}

// toIGW reports whether route r, of a table of vpc (nil: a VPC outside
// the scanned code), sends to an internet gateway attached to vpc. AWS
// takes a route to an internet gateway only when the gateway is attached
// to the table's VPC, so a gateway the scanned code does not hold (an ID
// written out, one made elsewhere) is that VPC's; so is a target not known
// statically (kind unknown), as the route says it assumes, whether or not
// the scanned code attaches a gateway of its own.
func (m *Model) toIGW(r Route, vpc *VPC) bool {
	switch {
	case r.Kind == "unknown" && r.Target == "":
		return true
	case r.Kind != "igw":
		return false
	case vpc == nil:
		return true // any internet gateway may be that VPC's
	}
	if at, held := m.igws[r.Target]; held {
		// One whose VPC is not known statically is the table's: AWS
		// takes a route only to a gateway attached to its VPC (the
		// route says so, addRoute).
		return at == vpc.Addr || at == igwVPCUnknown
	}
	// An ID of a virtual private gateway is no internet gateway; any other
	// target the scanned code does not hold is one made elsewhere.
	return m.lookup(r.Target) == nil && !strings.HasPrefix(r.Target, "vgw-")
}

// toInternet reports whether r sends traffic of vpc to the internet: to
// an internet gateway attached to it (toIGW), or to the endpoint of an
// inspecting appliance (inspector) in a subnet whose own route table
// sends it on to one.
func (m *Model) toInternet(r Route, vpc *VPC) bool {
	if m.toIGW(r, vpc) {
		return true
	}
	in := m.inspector(r)
	if in == nil {
		return false
	}
	for _, s := range m.inspectorSubnets(in) {
		if s.VPC == vpc || vpc == nil {
			if got, _ := routed(s.TableOf(), s.VPC, m.Internet().Set, func(r Route) bool { return m.toIGW(r, s.VPC) }); !empty(got) {
				return true
			}
		}
	}
	return false
}

// inspector returns the Network Firewall, or the Gateway Load Balancer
// endpoint, whose endpoint r targets: traffic passes through the
// appliance, whose rules are not evaluated, and leaves by the route table
// of the endpoint's subnet. Nil for any other target.
func (m *Model) inspector(r Route) *tf.Resource {
	if r.Kind != "vpce" || r.Target == "" {
		return nil
	}
	res := m.byRef[r.Target]
	switch {
	case res == nil:
		return nil
	case res.Type == "aws_networkfirewall_firewall":
		return res
	case res.Type == "aws_vpc_endpoint" && strings.EqualFold(str(res.Values, "vpc_endpoint_type"), "GatewayLoadBalancer"):
		return res
	}
	return nil
}

// inspectorSubnets returns the subnets an inspector's endpoints are in.
func (m *Model) inspectorSubnets(in *tf.Resource) []*Subnet {
	var ids []string
	if in.Type == "aws_networkfirewall_firewall" {
		for _, b := range blocks(in.Values, "subnet_mapping") {
			ids = append(ids, str(b, "subnet_id"))
		}
	} else {
		ids = strList(in.Values, "subnet_ids")
	}
	var out []*Subnet
	for _, id := range ids {
		if s := m.subnets[m.addr(id)]; s != nil {
			out = append(out, s)
		}
	}
	return out
}

// inspectedHop is the hop through the appliance that the first of used
// that targets one inspects the traffic with, and what it assumes.
func (m *Model) inspectedHop(used []Route) (Hop, string, bool) {
	for _, r := range used {
		if in := m.inspector(r); in != nil {
			why := fmt.Sprintf("%s routes to the endpoint of %s, whose subnet routes on to the internet gateway: traffic passes as its rules let it, which are not evaluated", r.Where, in.Address)
			return Hop{Kind: "firewall", Addr: in.Address, Detail: "inspects the traffic; its rules are not evaluated"}, why, true
		}
	}
	return Hop{}, "", false
}

// hasIGW reports whether an internet gateway is attached to v.
func (m *Model) hasIGW(v *VPC) bool { return m.igwOf(v) != "" }

func (m *Model) igwOf(v *VPC) string {
	best := ""
	for gw, vpc := range m.igws {
		if vpc == v.Addr && (best == "" || gw < best) {
			best = gw
		}
	}
	return best
}

func routeWhere(rs []Route) string {
	var w []string
	for _, r := range rs {
		w = append(w, r.Where)
	}
	return strings.Join(w, ", ")
}

func vpcName(v *VPC) string {
	if v == nil {
		return "an unknown VPC"
	}
	return v.Addr
}

// reachAWSUnplaced answers for an AWS endpoint with a public address whose
// subnets are not in the scanned code (a variable without a value, a data
// source, a module not read, a default VPC's subnet): such a subnet may be
// routed to an internet gateway, as a public address is meant to be, with
// a network ACL that allows all, the default; only the endpoint's security
// groups are known to stand in the way. A path found is not proven.
func (m *Model) reachAWSUnplaced(src Source, e *Endpoint, proto string, port int) Result {
	why := "subnet not in the scanned code: assumed routed to an internet gateway, with a network ACL that allows all"
	if e.Unplaced != "" {
		why = e.Unplaced
	}
	// The hop names the subnet as the endpoint's (Lightsail's network for
	// one outside any VPC); the assumption is its detail.
	where := e.Addr + ":subnet"
	if e.OutsideVPC {
		where = e.Addr + ":network"
	}
	path := []Hop{{Kind: "source", Detail: src.Name}, {Kind: "subnet", Addr: where, Detail: why}}
	block := func(h Hop) Result { return Result{Path: append(path, h)} }
	if e.Listens != nil && !e.Listens(proto, port) {
		return block(Hop{Kind: "endpoint", Addr: e.Addr, Detail: fmt.Sprintf("no listener on %s (%s)", portText(proto, port, port), e.listenText())})
	}
	got, hop, assumed, ok := m.sgHop(e, nil, src, proto, port, src.Set)
	if !ok {
		return block(hop)
	}
	bound := m.sgBound(e, proto, port, src, src.Set)
	if e.PublicAssumed {
		assumed = append([]string{e.Addr + ": " + e.Why}, assumed...)
	}
	if !e.OutsideVPC {
		assumed = append([]string{e.Addr + ": " + why}, assumed...)
	}
	return Result{Reachable: true, From: got, Assumed: assumed, Path: append(path, hop,
		Hop{Kind: "endpoint", Addr: e.Addr, Detail: fmt.Sprintf("%s with a public address (%s), %s reached from %s", e.Kind, e.Why, portText(proto, port, port), m.describe(got))})}.within(bound)
}

// reachAzureUnplaced answers for an Azure machine with a public address
// whose subnet is not in the scanned code (a data source, a module not
// read): every Azure network routes to the internet, and the subnet may
// have no NSG, so only the interface's NSGs and the address's SKU are
// known to stand in the way. A path found is not proven.
func (m *Model) reachAzureUnplaced(src Source, e *Endpoint, proto string, port int) Result {
	const why = "subnet not in the scanned code: assumed to route to the internet (Azure's system route) without an NSG"
	path := []Hop{{Kind: "source", Detail: src.Name}, {Kind: "subnet", Addr: e.Addr + ":subnet", Detail: why}}
	block := func(h Hop) Result { return Result{Path: append(path, h)} }
	if e.InternetPorts != nil && !e.InternetPorts(proto, port) {
		return block(Hop{Kind: "endpoint", Addr: e.Addr, Detail: fmt.Sprintf("no rule forwards %s to it (%s)", portText(proto, port, port), e.Why)})
	}
	if h, ok := e.balancerHop(proto, port); ok {
		path = append(path[:1], h, path[1])
	}
	set := src.Set
	assumed := []string{e.Addr + ": " + why}
	if e.StandardIP && len(e.NSGs) == 0 {
		// A subnet NSG would be needed to admit anything; assumed there.
		assumed = append(assumed, e.Addr+": Standard SKU public IP: assumed admitted by an NSG on the subnet")
	}
	var bound *Bound
	for _, g := range e.NSGs {
		if g.Assumed != "" {
			assumed = append(assumed, g.Addr+": "+g.Assumed)
			path = append(path, Hop{Kind: "nsg", Addr: g.Addr, Detail: "inbound (network interface) " + g.Assumed})
			continue
		}
		rules := e.nsgRulesFor(g.Ingress)
		got, hits, blocker := naclPass(rules, proto, port, set)
		if empty(got) {
			return block(Hop{Kind: "nsg", Addr: g.Addr, Detail: "inbound (network interface) " + blocker})
		}
		if b := naclBound(rules, proto, port, set); b != nil {
			bound = b
		}
		set = got
		assumed = append(assumed, assumedHits(g.Addr, hits)...)
		path = append(path, Hop{Kind: "nsg", Addr: g.Addr, Detail: "inbound (network interface) " + strings.Join(hits, "; ")})
	}
	if e.Listens != nil && !e.Listens(proto, port) {
		return block(Hop{Kind: "endpoint", Addr: e.Addr, Detail: fmt.Sprintf("no listener on %s (%s)", portText(proto, port, port), e.listenText())})
	}
	return Result{Reachable: true, From: set, Assumed: assumed, Path: append(path, Hop{Kind: "endpoint", Addr: e.Addr, Detail: e.Why})}.within(bound)
}

// naclHop filters set through acl, the network ACL (Azure: network
// security group) of s, nil for a default one, inbound on proto/port and,
// for a stateless ACL, outbound for the return traffic: what it admits,
// the hop that says so (or that blocks, ok false) and what was assumed.
func (m *Model) naclHop(e *Endpoint, s *Subnet, acl *NACL, src Source, proto string, port int, set *netipx.IPSet) (got *netipx.IPSet, hop Hop, assumed []string, ok bool) {
	switch {
	case acl == nil && e.Azure && src.Internet && e.StandardIP:
		return nil, Hop{Kind: "nsg", Addr: e.Addr, Detail: "no network security group on " + s.Addr + " or its network interface: a Standard SKU public IP admits nothing from the internet without one"}, nil, false
	case acl == nil && e.Azure:
		return set, Hop{Kind: "nsg", Detail: "no network security group on " + s.Addr}, nil, true
	case acl == nil:
		return set, Hop{Kind: "nacl", Detail: "default network ACL of " + vpcName(s.VPC) + " allows all"}, nil, true
	case acl.Assumed != "":
		return set, Hop{Kind: "nacl", Addr: acl.Addr, Detail: acl.Assumed}, []string{acl.Addr + ": " + acl.Assumed}, true
	case acl.Stateful:
		got, hits, blocker := naclPass(e.nsgRulesFor(acl.Ingress), proto, port, set)
		if empty(got) {
			return nil, Hop{Kind: "nsg", Addr: acl.Addr, Detail: "inbound " + blocker}, nil, false
		}
		return got, Hop{Kind: "nsg", Addr: acl.Addr, Detail: "inbound " + strings.Join(hits, "; ")}, assumedHits(acl.Addr, hits), true
	}
	got, hits, blocker := naclPass(acl.Ingress, proto, port, set)
	if empty(got) {
		return nil, Hop{Kind: "nacl", Addr: acl.Addr, Detail: "inbound " + blocker}, nil, false
	}
	back, bhits, bblocker := naclPass(acl.Egress, proto, ephemeralPort, got)
	if empty(back) {
		return nil, Hop{Kind: "nacl", Addr: acl.Addr, Detail: fmt.Sprintf("outbound (return traffic, port %d) %s", ephemeralPort, bblocker)}, nil, false
	}
	for _, h := range append(hits, bhits...) {
		if strings.Contains(h, "assumed") {
			assumed = append(assumed, acl.Addr+": "+h)
		}
	}
	return back, Hop{Kind: "nacl", Addr: acl.Addr, Detail: "inbound " + strings.Join(hits, "; ") + "; outbound " + strings.Join(bhits, "; ")}, assumed, true
}
