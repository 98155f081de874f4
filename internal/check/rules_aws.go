package check

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"go4.org/netipx"

	"moat/internal/check/tf"
)

// sensitivePorts are data-store and administration ports.
var sensitivePorts = []struct {
	Port int
	Name string
}{
	{22, "SSH"}, {23, "Telnet"}, {135, "MS RPC"}, {139, "NetBIOS"}, {445, "SMB"}, {1433, "SQL Server"},
	{1521, "Oracle"}, {2375, "Docker API"}, {2376, "Docker API"}, {2379, "etcd"}, {2380, "etcd peer"},
	{3306, "MySQL"}, {3389, "RDP"}, {5432, "PostgreSQL"}, {5439, "Redshift"}, {5601, "Kibana"},
	{5900, "VNC"}, {5984, "CouchDB"}, {5985, "WinRM"}, {5986, "WinRM"}, {6379, "Redis"}, {6443, "Kubernetes API"}, {7000, "Cassandra"},
	{8086, "InfluxDB"}, {9042, "Cassandra"}, {9200, "Elasticsearch"}, {9300, "Elasticsearch"},
	{10250, "kubelet"}, {11211, "Memcached"}, {27017, "MongoDB"},
}

func portName(p int) string {
	for _, s := range sensitivePorts {
		if s.Port == p {
			return s.Name
		}
	}
	return ""
}

func (m *Model) awsRules(fs *findings) {
	inet := m.Internet()
	for _, e := range m.Endpoints {
		if !e.Public && len(e.Published) == 0 {
			continue
		}
		ports := map[int]bool{}
		for _, p := range e.Ports {
			ports[p] = true
		}
		if !e.Managed {
			for _, s := range sensitivePorts {
				ports[s.Port] = true
			}
		}
		keys := make([]int, 0, len(ports))
		for p := range ports {
			keys = append(keys, p)
		}
		sort.Ints(keys)
		exposed := false
		var assumedRes Result
		var assumedG portGroup
		// Proven ports are grouped by the addresses that reach them: one
		// finding per endpoint and source, listing its ports.
		var groups []*portGroup
		for _, p := range keys {
			if (e.Gateway || e.AppPorts) && portName(p) == "" {
				continue
			}
			res := m.Reach(inet, e, "tcp", p)
			if !res.Reachable {
				continue
			}
			exposed = true
			name := portName(p)
			if l := e.listenerName(p); l != "" {
				name = l
			} else if e.Kind == "eks" || e.Kind == "aks" {
				name = "Kubernetes API"
			} else if name == "" {
				name = e.Kind + " service port"
			}
			if len(res.Assumed) > 0 {
				if len(assumedG.ports) == 0 {
					assumedRes = res
				}
				assumedG.add(p, name, res.Path)
				continue
			}
			from := m.describe(res.From)
			var g *portGroup
			for _, h := range groups {
				if h.from == from {
					g = h
				}
			}
			if g == nil {
				g = &portGroup{from: from, set: res.From, path: res.Path}
				groups = append(groups, g)
			}
			g.add(p, name, res.Path)
		}
		rule := ruleFor(e, RuleExposedPort)
		for _, g := range groups {
			verb := "is"
			if len(g.ports) > 1 {
				verb = "are"
			}
			sev, msg := gated(e, m.exposureSeverity(g.set, nil, fs.rules[rule].Severity), fmt.Sprintf("tcp %s %s reachable from the internet (%s)", portSummary(g.ports, g.names), verb, g.from))
			sev, msg = e.listenersOnly(g.ports, sev, msg)
			fs.addSev(rule, sev, e.Res, g.path, "%s", msg)
			fs.list[len(fs.list)-1].Paths, fs.list[len(fs.list)-1].Fix = g.portPaths(), e.exposureFix(g.paths)
		}
		if len(assumedG.ports) > 0 {
			// Not proven: what could not be evaluated was read at its most
			// permissive. One finding for the endpoint, not one per port.
			// Whom it admits, where that is a bounded range known
			// statically, which grades it down (a bound not known says so
			// among the assumptions; the internet at large is the
			// internet).
			from := ""
			if assumedRes.From != nil && assumedRes.Bound == nil && m.exposureSeverity(assumedRes.From, nil, High) < High {
				from = " (" + m.describe(assumedRes.From) + ")"
			}
			sev, msg := gated(e, m.exposureSeverity(assumedRes.From, assumedRes.Bound, High), fmt.Sprintf("tcp %s may be reachable from the internet%s: %s",
				portSummary(assumedG.ports, assumedG.names), from, strings.Join(dedup(assumedRes.Assumed), "; ")))
			sev, msg = e.listenersOnly(assumedG.ports, sev, msg)
			fs.addSev(rule, sev, e.Res, assumedRes.Path, "%s", msg)
			fs.list[len(fs.list)-1].Paths, fs.list[len(fs.list)-1].Fix = assumedG.portPaths(), e.exposureFix(assumedG.paths)
		}
		// An Azure data store's exposure is its port's (AZ-NET-002).
		if e.DataTier && !e.Azure {
			if path, ok := m.exposure(e); ok && !e.inSubnet(path) {
				// Through a subnet it may be in (SubnetsMaybe): not proven.
				sev, msg := gated(e, fs.rules[RuleDataTierPublic].Severity, fmt.Sprintf("%s may have a public path: %s; %s", e.Kind, e.Why, e.SubnetsUnknown))
				fs.addSev(RuleDataTierPublic, sev, e.Res, path, "%s", msg)
			} else if ok {
				sev, msg := gated(e, fs.rules[RuleDataTierPublic].Severity, fmt.Sprintf("%s has a public path: %s", e.Kind, e.Why))
				fs.addSev(RuleDataTierPublic, sev, e.Res, path, "%s", msg)
			} else if e.SubnetsAny {
				fs.addSev(RuleDataTierPublic, Medium, e.Res, nil, "%s is configured public (%s); %s, so wherever it is routed to an internet gateway only its security groups stand in the way", e.Kind, e.Why, e.SubnetsUnknown)
			} else if len(e.Subnets) == 0 && len(e.SubnetsMaybe) == 0 && e.Unplaced != "" {
				fs.addSev(RuleDataTierPublic, Medium, e.Res, nil, "%s is configured public (%s); %s: only its security groups stand in the way", e.Kind, e.Why, e.Unplaced)
			} else if len(e.Subnets) == 0 && len(e.SubnetsMaybe) == 0 {
				// Configured public, in subnets the scanned code does not
				// show (a default VPC's subnets are all public): only its
				// security groups would stand between it and the internet.
				fs.addSev(RuleDataTierPublic, Medium, e.Res, nil, "%s is configured public (%s); its subnets are not in the scanned code, so wherever they are routed to an internet gateway only its security groups stand in the way", e.Kind, e.Why)
			}
		}
		// A machine published by a gateway only sits behind one.
		if e.Public && !e.Gateway && !e.Balanced && !e.DataTier && e.Kind != "eks" && e.Kind != "aks" {
			if res, ok := m.anyPort(e); ok && len(res.Assumed) > 0 {
				fs.add(ruleFor(e, RuleInternetFacing), e.Res, res.Path, "%s may be reachable from the internet but is not a load balancer or gateway: %s", e.Kind, strings.Join(dedup(res.Assumed), "; "))
			} else if ok {
				fs.add(ruleFor(e, RuleInternetFacing), e.Res, res.Path, "%s is reachable from the internet%s but is not a load balancer or gateway", e.Kind, through(res.Path))
			} else if exposed && len(groups) == 0 {
				// Exposed only through what was assumed: not proven.
				fs.add(ruleFor(e, RuleInternetFacing), e.Res, assumedRes.Path, "%s may be reachable from the internet but is not a load balancer or gateway: %s", e.Kind, strings.Join(dedup(assumedRes.Assumed), "; "))
			} else if exposed {
				fs.add(ruleFor(e, RuleInternetFacing), e.Res, nil, "%s is reachable from the internet but is not a load balancer or gateway", e.Kind)
			}
		}
	}
	m.worldOpen(fs)
	m.peeringRules(fs)
	m.lateral(fs)
	m.azureNSGRules(fs)
	for _, g := range m.SGs {
		if !m.sgUsed[g.Addr] && !m.sgRef[g.Addr] {
			fs.add(RuleUnusedSG, g.Res, nil, "security group is not attached to or referenced by any resource")
		}
	}
	m.flowLogRules(fs)
}

// listenersOnly grades, as listenerSeverity does, an exposure of ports of
// e that are all its HTTP or HTTPS listeners: a web application answers on
// each, whatever its number.
func (e *Endpoint) listenersOnly(ports []int, sev Severity, msg string) (Severity, string) {
	for _, p := range ports {
		if e.listenerName(p) == "" {
			return sev, msg
		}
	}
	return listenerSeverity(sev, msg)
}

// portGroup is the ports of one endpoint that the same addresses reach.
type portGroup struct {
	from  string
	set   *netipx.IPSet
	path  []Hop
	ports []int // ascending
	names []string
	paths [][]Hop // each port's
}

// add puts port p, named name, reached on path, in the group.
func (g *portGroup) add(p int, name string, path []Hop) {
	g.ports = append(g.ports, p)
	g.names = append(g.names, name)
	g.paths = append(g.paths, path)
}

// portPaths returns each port's path, ports whose paths are the same hop
// for hop sharing one, in the order of their first port; nothing for a
// group of one port, whose path is the finding's.
func (g *portGroup) portPaths() []PortPath {
	if len(g.ports) < 2 {
		return nil
	}
	var out []PortPath
	var members [][]int // indexes into g.ports, per entry of out
	for i, path := range g.paths {
		j := 0
		for ; j < len(out); j++ {
			if slices.Equal(out[j].Path, path) {
				break
			}
		}
		if j == len(out) {
			out = append(out, PortPath{Path: path})
			members = append(members, nil)
		}
		members[j] = append(members[j], i)
	}
	for j := range out {
		var ps []int
		var ns []string
		for _, i := range members[j] {
			ps, ns = append(ps, g.ports[i]), append(ns, g.names[i])
		}
		out[j].Ports = "tcp " + portList(ps, ns)
	}
	return out
}

// portList writes ascending ports with their names, runs of consecutive
// ports of one name compacted: "22 (SSH), 2375-2376 (Docker API)".
func portList(ports []int, names []string) string {
	parts, _ := portParts(ports, names)
	return strings.Join(parts, ", ")
}

// maxPortsNamed is how many entries of a port list a message names before
// saying how many more there are.
const maxPortsNamed = 6

// portSummary is portList for a message: past maxPortsNamed entries, the
// first and how many more, and whether they are every sensitive port
// checked (a rule admitting all traffic).
func portSummary(ports []int, names []string) string {
	parts, ends := portParts(ports, names)
	if len(parts) <= maxPortsNamed {
		return strings.Join(parts, ", ")
	}
	text := fmt.Sprintf("%s and %d other ports", strings.Join(parts[:maxPortsNamed], ", "), len(ports)-ends[maxPortsNamed-1])
	all := true
	for _, s := range sensitivePorts {
		all = all && slices.Contains(ports, s.Port)
	}
	if all {
		text += " (every admin and data-store port checked)"
	}
	return text
}

// portParts writes portList's entries, and after each how many ports the
// entries so far hold.
func portParts(ports []int, names []string) (parts []string, ends []int) {
	for i := 0; i < len(ports); {
		j := i
		for j+1 < len(ports) && ports[j+1] == ports[j]+1 && names[j+1] == names[i] {
			j++
		}
		r := fmt.Sprint(ports[i])
		if j > i {
			r += fmt.Sprintf("-%d", ports[j])
		}
		parts, ends = append(parts, r+" ("+names[i]+")"), append(ends, j+1)
		i = j + 1
	}
	return parts, ends
}

// gated caps sev at Endpoint.GateSev for an endpoint whose every request
// is authenticated (Endpoint.Gate), and says why after msg.
func gated(e *Endpoint, sev Severity, msg string) (Severity, string) {
	switch {
	case e.Gate == "":
		return sev, msg
	case sev > e.GateSev:
		return e.GateSev, fmt.Sprintf("%s; %s, not %s: %s", msg, e.GateSev, sev, e.Gate)
	}
	return sev, msg + "; " + e.Gate
}

// exposureSeverity grades an exposure by who it reaches: sev when from is
// the internet at large (wide), at most medium when it is a bounded,
// specific range (an office's /24). A nil set is not known and is read as
// the whole internet. With a bound (Result.Bound), from is graded as the
// bound's known addresses and its ranges wherever they are: one /32 not
// known statically is one address, not the world. The one home of this
// grading for every internet-exposure rule.
func (m *Model) exposureSeverity(from *netipx.IPSet, b *Bound, sev Severity) Severity {
	if from == nil || sev <= Medium {
		return sev
	}
	var bounded []int
	if b != nil {
		from, bounded = b.Known, b.Bits
	}
	if wide(m.Internet().Set, from, bounded) {
		return sev
	}
	return Medium
}

// wideFamilies are, by address family, the prefix length of the widest
// range one network holds. A /8 is the most of IPv4 any one organisation
// was allocated; of IPv6, a /13 (the largest allocation, the next largest
// a /19, each registry's own block from IANA a /12). A range of a known
// length whose place is not known may be of either family, and is measured
// against both.
var wideFamilies = []struct {
	space netip.Prefix
	bits  int
}{{netip.MustParsePrefix("0.0.0.0/0"), 8}, {netip.MustParsePrefix("::/0"), 13}}

// wideText says what wide measures, for findings that name the ranges.
const wideText = "more than a /8 of IPv4 or a /13 of IPv6, more than any one network holds"

// wide reports whether set, with ranges of the prefix lengths bounded
// wherever they are (Bound.Bits), may hold more internet
// addresses of IPv4 or of IPv6 than one network holds (wideFamilies): no
// one network holds such a range, so it is the internet at large
// (0.0.0.0/1, a firewall rule from 1.2.3.4 to 2.3.4.5, 2600::/12) and
// judged as the whole internet is. Private addresses are no internet
// addresses. The one home of what counts as the world, for security
// groups, network ACLs, NSGs, service firewalls and the severity of an
// exposure.
func wide(inet, set *netipx.IPSet, bounded []int) bool {
	for _, f := range wideFamilies {
		if share(intersect(intersect(inet, setOf(f.space)), set))+boundedShare(bounded, f.bits) > math.Ldexp(1, -f.bits) {
			return true
		}
	}
	return false
}

// share is the fraction of its address family's space that s covers.
func share(s *netipx.IPSet) float64 {
	var f float64
	for _, p := range s.Prefixes() {
		f += math.Ldexp(1, -p.Bits())
	}
	return f
}

// exposure reports whether e has a public address in a subnet routed to an
// attached internet gateway, with the path to the subnet.
func (m *Model) exposure(e *Endpoint) ([]Hop, bool) {
	if !e.Public {
		return nil, false
	}
	if e.Managed {
		return []Hop{{Kind: "source", Detail: "internet"}, {Kind: "endpoint", Addr: e.Addr, Detail: e.Why}}, true
	}
	inet := m.Internet()
	for _, s := range append(append([]*Subnet(nil), e.Subnets...), e.SubnetsMaybe...) {
		got, used := routed(s.TableOf(), s.VPC, inet.Set, func(r Route) bool {
			return s.VPC != nil && m.toInternet(r, s.VPC)
		})
		if empty(got) {
			continue
		}
		path := []Hop{{Kind: "source", Detail: "internet"},
			{Kind: "igw", Addr: used[0].Target, Detail: "internet gateway attached to " + s.VPC.Addr}}
		if fw, _, ok := m.inspectedHop(used); ok {
			path[1].Addr = m.igwOf(s.VPC)
			path = append(path, fw)
		}
		return append(path,
			Hop{Kind: "route", Addr: tableName(s.TableOf(), s), Detail: fmt.Sprintf("%s → %s (%s)", used[0].Dest, used[0].Target, used[0].Where)},
			Hop{Kind: "subnet", Addr: s.Addr, Detail: "subnet " + s.CIDR.String()},
			Hop{Kind: "endpoint", Addr: e.Addr, Detail: e.Why}), true
	}
	return nil, false
}

// inSubnet reports whether the path from exposure goes through one of e's
// known subnets, not only one it may be in.
func (e *Endpoint) inSubnet(path []Hop) bool {
	for _, h := range path {
		if h.Kind != "subnet" {
			continue
		}
		for _, s := range e.Subnets {
			if s.Addr == h.Addr {
				return true
			}
		}
		return false
	}
	return true
}

// anyPort finds one port on which e is reachable from the internet, trying
// the lowest port of every ingress rule that admits internet addresses.
func (m *Model) anyPort(e *Endpoint) (Result, bool) {
	if e.Managed {
		// Its own ports, else the HTTPS of a managed service's API.
		ports := e.Ports
		if len(ports) == 0 {
			ports = []int{443}
		}
		var r Result
		for _, p := range ports {
			if r = m.Reach(m.Internet(), e, "tcp", p); r.Reachable {
				return r, true
			}
		}
		return r, false
	}
	if _, ok := m.exposure(e); !ok && !e.Azure && (len(e.Subnets) > 0 || len(e.SubnetsMaybe) > 0) && !e.SubnetsAny {
		return Result{}, false
	}
	inet := m.Internet()
	nsgs := append([]*NACL(nil), e.NSGs...) // Azure: the ports its NSGs allow from the internet
	for _, s := range e.Subnets {
		if acl := s.ACL(); acl != nil && acl.Stateful {
			nsgs = append(nsgs, acl)
		}
	}
	for _, n := range nsgs {
		for _, r := range n.Ingress {
			if !r.Allow || empty(intersect(setOf(r.CIDR), inet.Set)) {
				continue
			}
			proto := r.Proto
			if proto == "all" {
				proto = "tcp"
			}
			if res := m.Reach(inet, e, proto, r.From); res.Reachable {
				return res, true
			}
		}
	}
	for _, g := range e.SGs {
		for _, r := range g.Ingress {
			// A rule whose source is not known statically admits every
			// address (Assumed); Reach says so.
			if r.Assumed == "" && (len(r.CIDRs) == 0 || empty(intersect(setOf(r.CIDRs...), inet.Set))) {
				continue
			}
			proto := r.Proto
			if proto == "all" {
				proto = "tcp"
			}
			res := m.Reach(inet, e, proto, r.From)
			if res.Reachable {
				return res, true
			}
		}
	}
	// One that says what it listens on may answer past the first port of
	// a rule's range: on its own ports.
	if e.Listens != nil {
		for _, p := range e.Ports {
			if res := m.Reach(inet, e, "tcp", p); res.Reachable {
				return res, true
			}
		}
	}
	return Result{}, false
}

// through names the front door a path crosses first, as " (through
// aws_cloudfront_distribution.cdn)"; "" for a path of the endpoint's own.
func through(path []Hop) string {
	if len(path) > 1 && path[1].Kind == "gateway" && path[1].Addr != "" {
		return " (through " + path[1].Addr + ")"
	}
	return ""
}

func dedup(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// portRange is a protocol's range of ports.
type portRange struct {
	proto    string
	from, to int
}

// probe returns the ports of r worth asking a path for on e: the ports e
// listens on, the sensitive ports, and the range's first port.
func (r portRange) probe(e *Endpoint) []int {
	var out []int
	in := func(p int) bool { return r.from <= p && p <= r.to }
	for _, p := range e.Ports {
		if in(p) {
			out = append(out, p)
		}
	}
	if e.Listens == nil {
		for _, s := range sensitivePorts {
			if in(s.Port) {
				out = append(out, s.Port)
			}
		}
	}
	if e.Listens == nil || len(out) == 0 {
		// For a load balancer: where it does not listen. Port 0 takes
		// no connection: the range's next port stands for it.
		first := r.from
		if first == 0 && r.to > 0 {
			first = 1
		}
		out = append(out, first)
	}
	return out
}

// ruleSources returns the addresses r admits: its CIDR blocks, or, with
// assumed, every address when its source is not known statically and may
// be any range (one of a known size somewhere is counted by openRanges).
func ruleSources(r SGRule, assumed bool) []netip.Prefix {
	if assumed && r.Assumed != "" && r.Bounded == nil {
		return allInternet
	}
	return r.CIDRs
}

// openRanges returns the port ranges, other than 80 and 443, on which the
// union of g's ingress CIDRs covers all of an internet family; with
// assumed, a rule whose source is not known statically counts as every
// address.
func openRanges(g *SG, inet *netipx.IPSet, assumed bool) []portRange {
	var out []portRange
	for _, proto := range []string{"tcp", "udp"} {
		cuts := map[int]bool{0: true, 65536: true, 80: true, 81: true, 443: true, 444: true}
		for _, r := range g.Ingress {
			if r.Proto == proto || r.Proto == "all" {
				cuts[r.From], cuts[r.To+1] = true, true
			}
		}
		bounds := make([]int, 0, len(cuts))
		for c := range cuts {
			bounds = append(bounds, c)
		}
		sort.Ints(bounds)
		for i := 0; i+1 < len(bounds); i++ {
			lo, hi := bounds[i], bounds[i+1]-1
			if lo == 80 && hi == 80 || lo == 443 && hi == 443 || lo > 65535 {
				continue
			}
			var cidrs []netip.Prefix
			var bounded []int
			for _, r := range g.Ingress {
				if (r.Proto == proto || r.Proto == "all") && r.From <= lo && hi <= r.To {
					cidrs = append(cidrs, ruleSources(r, assumed)...)
					if assumed && r.Assumed != "" && r.Bounded != nil {
						bounded = append(bounded, r.Bounded...)
					}
				}
			}
			if len(cidrs) == 0 && len(bounded) == 0 || !wide(inet, setOf(cidrs...), bounded) {
				continue
			}
			if n := len(out); n > 0 && out[n-1].proto == proto && out[n-1].to+1 == lo {
				out[n-1].to = hi // adjacent: one range
				continue
			}
			out = append(out, portRange{proto, lo, hi})
		}
	}
	return out
}

// naclOpenPorts returns the TCP port ranges, other than 80, 443 and the
// ephemeral range 1024-65535 that return traffic needs, on which the ACL's
// ordered inbound rules admit the internet at large (wide), and the
// addresses admitted on them.
func naclOpenPorts(acl *NACL, inet *netipx.IPSet) ([]portRange, *netipx.IPSet) {
	var admitted netipx.IPSetBuilder
	cuts := map[int]bool{0: true, 65536: true, 80: true, 81: true, 443: true, 444: true, 1024: true}
	for _, r := range acl.Ingress {
		cuts[r.From], cuts[r.To+1] = true, true
	}
	bounds := make([]int, 0, len(cuts))
	for c := range cuts {
		bounds = append(bounds, c)
	}
	sort.Ints(bounds)
	var out []portRange
	for i := 0; i+1 < len(bounds); i++ {
		lo, hi := bounds[i], bounds[i+1]-1
		if lo == 80 && hi == 80 || lo == 443 && hi == 443 || lo >= 1024 || lo > 65535 {
			continue
		}
		got, _, _ := naclPass(acl.Ingress, "tcp", lo, inet)
		if b := naclBound(acl.Ingress, "tcp", lo, inet); b != nil && !wide(inet, b.Known, b.Bits) {
			continue // only ranges of known size somewhere: not the world
		}
		if !empty(got) && wide(inet, got, nil) {
			out = append(out, portRange{"tcp", lo, hi})
			admitted.AddSet(got)
		}
	}
	// A data-store or admin port above 1023 that a rule of its own admits
	// the world to. Allows reaching 65535 (the upper range return traffic
	// needs) or down below 1024 (reported above) are left out, so what is
	// left admits no more than the ACL does.
	var targeted []NACLRule
	for _, r := range acl.Ingress {
		if !r.Allow || r.From >= 1024 && r.To < 65535 {
			targeted = append(targeted, r)
		}
	}
	for _, sp := range sensitivePorts {
		if sp.Port < 1024 {
			continue
		}
		got, _, _ := naclPass(targeted, "tcp", sp.Port, inet)
		if b := naclBound(targeted, "tcp", sp.Port, inet); b != nil && !wide(inet, b.Known, b.Bits) {
			continue
		}
		if !empty(got) && wide(inet, got, nil) {
			out = append(out, portRange{"tcp", sp.Port, sp.Port})
			admitted.AddSet(got)
		}
	}
	set, _ := admitted.IPSet()
	return out, set
}

func (m *Model) peeringRules(fs *findings) {
	byAddr := map[string]*Peering{}
	for _, p := range m.Peerings {
		byAddr[p.Addr] = p
		if p.A == nil || p.B == nil || p.Refused {
			continue // a refused peering is reported as such (CHECK-003)
		}
		if ov := intersect(setOf(p.A.CIDRs...), setOf(p.B.CIDRs...)); !empty(ov) {
			fs.add(RulePeeringOverlap, p.Res, nil, "%s and %s overlap in %s", p.A.Addr, p.B.Addr, m.describe(ov))
		}
	}
	mayDefault := map[string]bool{}
	for _, t := range m.Tables {
		for _, r := range t.Routes {
			if r.Kind != "pcx" {
				continue
			}
			res := t.Res
			if src := m.lookup(strings.Fields(r.Where)[0]); src != nil {
				res = src
			}
			if r.Dest.Bits() == 0 && r.DestUnknown {
				// A range of a known length is no route of every
				// address; one of none may be, once for the route.
				if r.DestBits == nil && !mayDefault[r.Where] {
					mayDefault[r.Where] = true
					fs.addSev(RulePeeringDefault, Medium, res, nil, "%s may send every address through peering %s: %s", t.Addr, orUnknown(r.Target), r.Assumed)
				}
				continue
			}
			if r.Dest.Bits() == 0 {
				fs.add(RulePeeringDefault, res, nil, "%s sends %s through peering %s", t.Addr, r.Dest, orUnknown(r.Target))
				continue
			}
			p := byAddr[r.Target]
			if p == nil || p.A == nil || p.B == nil {
				continue
			}
			peer := p.B
			if t.VPC == p.B {
				peer = p.A
			}
			beyond := minus(setOf(r.Dest), setOf(peer.CIDRs...))
			if empty(beyond) {
				continue
			}
			var via []string
			for _, v := range m.VPCs {
				if v != peer && v != t.VPC && !empty(intersect(beyond, setOf(v.CIDRs...))) {
					via = append(via, v.Addr)
				}
			}
			path := []Hop{{Kind: "route", Addr: t.Addr, Detail: fmt.Sprintf("%s → %s (%s)", r.Dest, r.Target, r.Where)},
				{Kind: "peering", Addr: p.Addr, Detail: fmt.Sprintf("connects %s and %s only", p.A.Addr, p.B.Addr)}}
			msg := fmt.Sprintf("route to %s through %s leaves %s's range (%s)", r.Dest, p.Addr, peer.Addr, m.describe(beyond))
			if len(via) > 0 {
				msg += "; it targets " + strings.Join(via, ", ") + ", which peering does not reach transitively"
				path = append(path, Hop{Kind: "endpoint", Addr: strings.Join(via, ", "), Detail: "not reachable: peering is not transitive"})
			}
			fs.add(RuleTransitivePeer, res, path, "%s", msg)
		}
	}
}

// dataRules checks encryption, keys, logging and listeners.
func dataRules(res []*tf.Resource, fs *findings) {
	byType := map[string][]*tf.Resource{}
	for _, r := range res {
		byType[r.Type] = append(byType[r.Type], r)
	}
	s3Encryption(byType, fs)
	encryptionRules(byType, fs)
	instanceRules(byType, fs)
	for _, r := range byType["aws_kms_key"] {
		spec := str(r.Values, "customer_master_key_spec")
		if (spec == "" || spec == "SYMMETRIC_DEFAULT") && !boolean(r.Values, "enable_key_rotation", false) {
			fs.add(RuleKMSRotation, r, nil, "enable_key_rotation is not true")
		}
	}
	trailRules(byType, fs)
	sslPolicyRules(byType, fs)
	for _, typ := range []string{"aws_lb_listener", "aws_alb_listener"} {
		for _, r := range byType[typ] {
			proto := strings.ToUpper(str(r.Values, "protocol"))
			if proto == "" && !unknown(r.Values, "protocol") && lbType(byType, r) == "application" {
				proto = "HTTP" // an application load balancer's listeners default to HTTP
			}
			switch proto {
			case "HTTP":
				redirect := false
				for _, a := range blocks(r.Values, "default_action") {
					if str(a, "type") == "redirect" && strings.EqualFold(str(block(a, "redirect"), "protocol"), "HTTPS") {
						redirect = true
					}
				}
				if !redirect {
					fs.add(RuleHTTPNoRedirect, r, nil, "listener on port %d serves HTTP without redirecting to HTTPS", num(r.Values, "port", 80))
				}
			case "TCP", "TCP_UDP":
				if why := plainTCP(r.Values, "port", targetsTLS(byType, r)); why != "" {
					fs.add(RulePlainListener, r, nil, "%s", why)
				}
			case "HTTPS", "TLS":
				if unknown(r.Values, "ssl_policy") {
					fs.add(RuleWeakTLS, r, nil, "ssl_policy is not known statically: read as ELBSecurityPolicy-2016-08, which admits TLS 1.0 and 1.1")
				} else if p := str(r.Values, "ssl_policy"); !tls12(p) {
					if p == "" {
						p = "ELBSecurityPolicy-2016-08 (the default)"
					}
					fs.add(RuleWeakTLS, r, nil, "ssl_policy %s admits TLS below 1.2", p)
				}
			}
		}
	}
	apiDomainTLS(byType, fs)
	cloudFrontTLS(byType, fs)
	// A search domain's endpoint, as its TLS policy says (unset: the
	// domain's default, which has changed over time, is not relied on).
	for _, typ := range []string{"aws_opensearch_domain", "aws_elasticsearch_domain"} {
		for _, r := range byType[typ] {
			deo := block(r.Values, "domain_endpoint_options")
			if unknown(deo, "tls_security_policy") {
				fs.add(RuleWeakTLS, r, nil, "domain_endpoint_options.tls_security_policy is not known statically: read as Policy-Min-TLS-1-0-2019-07, which admits TLS 1.0 and 1.1")
			} else if p := str(deo, "tls_security_policy"); strings.HasPrefix(p, "Policy-Min-TLS-1-0") {
				fs.add(RuleWeakTLS, r, nil, "domain_endpoint_options.tls_security_policy = %q admits TLS 1.0 and 1.1", p)
			}
		}
	}
}

// apiDomainTLS flags REST API custom domain names whose security_policy
// admits TLS 1.0: TLS_1_0, or none set, whose default neither the
// provider nor API Gateway documents for a custom domain (its default
// endpoints speak TLS 1.0), read at its worst and said so. HTTP and
// WebSocket APIs' domains (apigatewayv2) take TLS 1.2 alone.
func apiDomainTLS(byType map[string][]*tf.Resource, fs *findings) {
	for _, r := range byType["aws_api_gateway_domain_name"] {
		switch p := str(r.Values, "security_policy"); {
		case unknown(r.Values, "security_policy"):
			fs.add(RuleWeakTLS, r, nil, "security_policy is not known statically: read as TLS_1_0, which admits TLS 1.0 and 1.1")
		case p == "":
			fs.add(RuleWeakTLS, r, nil, "security_policy is not set: the default for a custom domain name is not documented (API Gateway's own endpoints speak TLS 1.0), so it is read as TLS_1_0, which admits TLS 1.0 and 1.1")
		case strings.EqualFold(p, "TLS_1_0"):
			fs.add(RuleWeakTLS, r, nil, "security_policy = %q admits TLS 1.0 and 1.1", p)
		}
	}
}

// cloudFrontTLS flags distributions served on a certificate of their own
// (acm_certificate_arn, iam_certificate_id) whose viewer_certificate's
// minimum_protocol_version admits TLS below 1.2: TLSv1 (the provider's
// default when unset), SSLv3, TLSv1_2016 or TLSv1.1_2016. On CloudFront's
// own certificate (cloudfront_default_certificate) the policy is
// CloudFront's, which no setting changes, and is not reported.
func cloudFrontTLS(byType map[string][]*tf.Resource, fs *findings) {
	for _, r := range byType["aws_cloudfront_distribution"] {
		vc := block(r.Values, "viewer_certificate")
		if vc == nil || boolean(vc, "cloudfront_default_certificate", false) || str(vc, "acm_certificate_arn") == "" && str(vc, "iam_certificate_id") == "" && !unknown(vc, "acm_certificate_arn") && !unknown(vc, "iam_certificate_id") {
			continue
		}
		switch p := str(vc, "minimum_protocol_version"); {
		case unknown(vc, "minimum_protocol_version"):
			fs.add(RuleWeakTLS, r, nil, "viewer_certificate.minimum_protocol_version is not known statically: read as TLSv1, which admits TLS 1.0 and 1.1")
		case p == "":
			fs.add(RuleWeakTLS, r, nil, "viewer_certificate.minimum_protocol_version is not set: the default, TLSv1, admits TLS 1.0 and 1.1")
		case p == "SSLv3" || p == "TLSv1" || p == "TLSv1_2016" || p == "TLSv1.1_2016":
			fs.add(RuleWeakTLS, r, nil, "viewer_certificate.minimum_protocol_version = %q admits TLS below 1.2", p)
		}
	}
}

// insecureProtocols are the protocols of a classic load balancer's SSL
// negotiation policy that are below TLS 1.2.
var insecureProtocols = map[string]bool{"Protocol-SSLv2": true, "Protocol-SSLv3": true, "Protocol-TLSv1": true, "Protocol-TLSv1.1": true}

// weakCipher reports whether a cipher suite name (OpenSSL's, as classic
// load balancers spell them, or the IANA form) names a broken algorithm:
// RC4 (ARCFOUR), single or triple DES, no encryption, export-grade keys,
// MD5 or key exchange without authentication.
func weakCipher(name string) bool {
	n := strings.ToUpper(name)
	if strings.HasPrefix(n, "PROTOCOL-") || strings.Contains(n, "-POLICY") || strings.Contains(n, "SERVER-DEFINED") {
		return false
	}
	for _, w := range []string{"RC4", "ARCFOUR", "DES", "NULL", "EXP", "MD5", "ADH", "AECDH", "ANON"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// sslPolicyRules flags classic load balancer SSL negotiation policies that
// enable a protocol below TLS 1.2 or a broken cipher, or reference a
// predefined policy that admits TLS below 1.2.
func sslPolicyRules(byType map[string][]*tf.Resource, fs *findings) {
	for _, r := range byType["aws_load_balancer_policy"] {
		if str(r.Values, "policy_type_name") != "SSLNegotiationPolicyType" {
			continue
		}
		var weak, ciphers []string
		for _, a := range blocks(r.Values, "policy_attribute") {
			name, val := str(a, "name"), str(a, "value")
			switch {
			case name == "Reference-Security-Policy" && val != "" && !tls12(val):
				weak = append(weak, "the predefined policy "+val)
			case insecureProtocols[name] && strings.EqualFold(val, "true"):
				weak = append(weak, name)
			case weakCipher(name) && strings.EqualFold(val, "true"):
				ciphers = append(ciphers, name)
			}
		}
		if len(weak) > 0 {
			fs.add(RuleWeakTLS, r, nil, "SSL negotiation policy enables %s, below TLS 1.2", strings.Join(weak, ", "))
		}
		if len(ciphers) > 0 {
			fs.add(RuleWeakTLS, r, nil, "SSL negotiation policy enables the broken cipher %s (RC4, DES/3DES, NULL, export-grade, MD5 or anonymous key exchange)", strings.Join(ciphers, ", "))
		}
	}
}

// lbType returns the type of the load balancer a listener belongs to
// ("application" when it is not in the project or does not say: the
// provider's default).
func lbType(byType map[string][]*tf.Resource, l *tf.Resource) string {
	arn := str(l.Values, "load_balancer_arn")
	for _, typ := range []string{"aws_lb", "aws_alb"} {
		for _, r := range byType[typ] {
			if r.Address == arn || str(r.Values, "arn") == arn {
				if t := str(r.Values, "load_balancer_type"); t != "" {
					return t
				}
			}
		}
	}
	return "application"
}

// targetsTLS reports whether listener l forwards, by its default action,
// to a target group whose targets speak TLS (protocol TLS, or a TLS port):
// a target group not in the scanned code is not read as one.
func targetsTLS(byType map[string][]*tf.Resource, l *tf.Resource) bool {
	for _, a := range blocks(l.Values, "default_action") {
		arn := str(a, "target_group_arn")
		for _, typ := range []string{"aws_lb_target_group", "aws_alb_target_group"} {
			for _, tg := range byType[typ] {
				if arn != "" && (tg.Address == arn || str(tg.Values, "arn") == arn) {
					return strings.EqualFold(str(tg.Values, "protocol"), "TLS") || tlsPorts[num(tg.Values, "port", 0)]
				}
			}
		}
	}
	return false
}

// trailRules checks each CloudTrail trail for regions, log file validation
// and KMS encryption, and that a project with networks has a trail.
func trailRules(byType map[string][]*tf.Resource, fs *findings) {
	for _, r := range byType["aws_cloudtrail"] {
		if !unknown(r.Values, "enable_logging") && !boolean(r.Values, "enable_logging", true) {
			fs.add(RuleCloudTrail, r, nil, "enable_logging = false: the trail exists but records nothing")
		}
		switch {
		case unknown(r.Values, "cloud_watch_logs_group_arn") || unknown(r.Values, "cloud_watch_logs_role_arn"):
		case str(r.Values, "cloud_watch_logs_group_arn") == "":
			fs.add(RuleTrailCloudWatch, r, nil, "cloud_watch_logs_group_arn is not set: events reach S3 only, where no metric filter or alarm watches them")
		case str(r.Values, "cloud_watch_logs_role_arn") == "":
			fs.add(RuleTrailCloudWatch, r, nil, "cloud_watch_logs_role_arn is not set: CloudTrail has no role to write to the log group")
		}
		switch {
		case unknown(r.Values, "is_multi_region_trail"):
		case !boolean(r.Values, "is_multi_region_trail", false):
			fs.add(RuleTrailRegions, r, nil, "is_multi_region_trail is not true: the trail records only the region it is created in")
		case !unknown(r.Values, "include_global_service_events") && !boolean(r.Values, "include_global_service_events", true):
			fs.add(RuleTrailRegions, r, nil, "include_global_service_events = false: IAM, STS and CloudFront events are not recorded")
		}
		if !unknown(r.Values, "enable_log_file_validation") && !boolean(r.Values, "enable_log_file_validation", false) {
			fs.add(RuleTrailValidation, r, nil, "enable_log_file_validation is not true: altered or deleted log files go unnoticed")
		}
		if !unknown(r.Values, "kms_key_id") && str(r.Values, "kms_key_id") == "" {
			fs.add(RuleTrailKMS, r, nil, "kms_key_id is not set: log files are encrypted with S3-managed keys only")
		}
	}
	if len(byType["aws_cloudtrail"]) == 0 && len(byType["aws_vpc"]) > 0 {
		fs.add(RuleCloudTrail, byType["aws_vpc"][0], nil, "the project defines no CloudTrail trail")
	}
}

func tls12(policy string) bool {
	for _, s := range []string{"TLS13-1-2", "TLS13-1-3", "TLS-1-2", "FS-1-2"} {
		if strings.Contains(policy, s) {
			return true
		}
	}
	return false
}

// coversFamily reports whether set holds every internet address of IPv4 or
// of IPv6.
func coversFamily(inet, set *netipx.IPSet) bool {
	for _, fam := range []string{"0.0.0.0/0", "::/0"} {
		if empty(minus(intersect(inet, setOf(netip.MustParsePrefix(fam))), set)) {
			return true
		}
	}
	return false
}
