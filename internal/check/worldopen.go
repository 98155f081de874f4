package check

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"go4.org/netipx"

	"moat/internal/check/tf"
)

// servicePorts are the ports of remote administration, data stores and
// well-known services that must never face the whole internet (AWS-NET-003),
// for TCP and UDP alike. They include sensitivePorts, which reachability
// probes, and the classic services scanners flag: file transfer, mail,
// directory, name, management and message-queue protocols. Any other port
// open to the world is AWS-NET-011.
var servicePorts = []struct {
	From, To int
	Name     string
}{
	{20, 21, "FTP"}, {22, 22, "SSH"}, {23, 23, "Telnet"}, {25, 25, "SMTP"}, {53, 53, "DNS"}, {69, 69, "TFTP"},
	{110, 110, "POP3"}, {111, 111, "RPC portmapper"}, {135, 135, "MS RPC"}, {137, 139, "NetBIOS"}, {143, 143, "IMAP"},
	{161, 162, "SNMP"}, {389, 389, "LDAP"}, {445, 445, "SMB"}, {514, 514, "syslog"}, {636, 636, "LDAPS"},
	{873, 873, "rsync"}, {1433, 1434, "SQL Server"}, {1521, 1521, "Oracle"}, {1883, 1883, "MQTT"}, {2049, 2049, "NFS"},
	{2375, 2376, "Docker API"}, {2379, 2380, "etcd"}, {2383, 2383, "SQL Server Analysis Services"},
	{2483, 2484, "Oracle"}, {3020, 3020, "CIFS"}, {3306, 3306, "MySQL"}, {3389, 3389, "RDP"}, {4333, 4333, "mSQL"},
	{4505, 4506, "SaltStack"}, {5432, 5432, "PostgreSQL"}, {5439, 5439, "Redshift"}, {5500, 5500, "VNC"},
	{5601, 5601, "Kibana"}, {5671, 5672, "AMQP"}, {5900, 5900, "VNC"}, {5984, 5984, "CouchDB"}, {5985, 5986, "WinRM"},
	{6379, 6379, "Redis"},
	{6443, 6443, "Kubernetes API"}, {7000, 7001, "Cassandra"}, {7199, 7199, "Cassandra JMX"}, {8086, 8086, "InfluxDB"},
	{8140, 8140, "Puppet"}, {8161, 8162, "ActiveMQ web console"}, {8883, 8883, "MQTT"}, {9042, 9042, "Cassandra"}, {9092, 9092, "Kafka"}, {9160, 9160, "Cassandra"},
	{9200, 9200, "Elasticsearch"}, {9300, 9300, "Elasticsearch"}, {10250, 10250, "kubelet"}, {11211, 11211, "Memcached"},
	{11214, 11215, "Memcached"}, {15672, 15672, "RabbitMQ management"}, {27017, 27019, "MongoDB"},
	{50070, 50070, "Hadoop NameNode"}, {61613, 61614, "STOMP"}, {61616, 61617, "ActiveMQ OpenWire"},
	{61619, 61619, "ActiveMQ WebSocket"}, {61620, 61621, "Cassandra OpsCenter"},
}

// splitServices splits open ranges into the parts on service ports and the
// parts on any other port.
func splitServices(open []portRange) (svc, other []portRange) {
	for _, o := range open {
		lo := o.from
		for _, s := range servicePorts {
			if s.To < o.from || s.From > o.to {
				continue
			}
			a, b := max(s.From, o.from), min(s.To, o.to)
			if lo < a {
				other = append(other, portRange{o.proto, lo, a - 1})
			}
			svc = append(svc, portRange{o.proto, a, b})
			lo = b + 1
		}
		if lo <= o.to {
			other = append(other, portRange{o.proto, lo, o.to})
		}
	}
	return svc, other
}

// rangesText names ranges, with the services on them when svc is set and
// the HTTP or HTTPS listeners of the load balancers among users that
// answer there: on a port where only such listeners answer, they name it,
// not the service its number stands for. A protocol open on every port is
// named as such; a longer list keeps the ranges holding admin and
// data-store ports first, so that what matters most is never cut off.
func rangesText(rs []portRange, svc bool, users []*Endpoint) string {
	var texts, later []string
	var full []string
	for _, proto := range []string{"tcp", "udp"} {
		if whole(rs, proto, svc) {
			full = append(full, proto)
		}
	}
	if len(full) > 0 {
		protos := strings.Join(full, " and ")
		if svc {
			texts = append(texts, "every "+protos+" service port (SSH, RDP, the databases, caches and other services AWS-NET-003 names)")
		} else {
			texts = append(texts, "every other "+protos+" port (all but 80, 443 and the service ports of AWS-NET-003)")
		}
	}
	for _, r := range rs {
		if whole(rs, r.proto, svc) {
			continue
		}
		t := portText(r.proto, r.from, r.to)
		var names []string
		listeners, only := listenersOn(r, users)
		if svc && !only {
			for _, s := range servicePorts {
				if s.From <= r.from && r.to <= s.To {
					names = append(names, s.Name)
					break
				}
			}
		}
		if names = append(names, listeners...); len(names) > 0 {
			t += " (" + strings.Join(names, "; ") + ")"
		}
		if holdsSensitive(r) {
			texts = append(texts, t)
		} else {
			later = append(later, t)
		}
	}
	texts = append(texts, later...)
	if len(texts) > 12 {
		texts = append(texts[:12], fmt.Sprintf("and %d more", len(texts)-12))
	}
	return strings.Join(texts, ", ")
}

// listenerName names port p of a load balancer by the HTTP or HTTPS
// listener that answers there ("HTTPS listener"); "" where none does.
func (e *Endpoint) listenerName(p int) string {
	if proto := e.HTTPPorts[p]; proto != "" {
		return proto + " listener"
	}
	return ""
}

// listenersOn names the HTTP or HTTPS listeners of the load balancers
// among users on the ports of r ("HTTPS listener of aws_lb.web", "HTTP
// listeners of aws_lb.web on 81, 82"); only, when they are all that may
// answer on r: every other user that takes connections is a load balancer
// with no other listener there.
func listenersOn(r portRange, users []*Endpoint) (names []string, only bool) {
	only = true
	seen := map[*Endpoint]bool{}
	for _, e := range users {
		if e.SourceOnly || seen[e] {
			continue
		}
		seen[e] = true
		var ports []int
		for p := range e.HTTPPorts {
			if r.proto == "tcp" && r.from <= p && p <= r.to {
				ports = append(ports, p)
			}
		}
		if e.Kind != "lb" || e.Listens == nil {
			only = false
		} else {
			for _, p := range e.Ports {
				only = only && (p < r.from || r.to < p || !e.Listens(r.proto, p) || e.HTTPPorts[p] != "")
			}
		}
		slices.Sort(ports)
		byProto := map[string][]int{}
		var protos []string
		for _, p := range ports {
			proto := e.HTTPPorts[p]
			if byProto[proto] == nil {
				protos = append(protos, proto)
			}
			byProto[proto] = append(byProto[proto], p)
		}
		for _, proto := range protos {
			switch ps := byProto[proto]; {
			case r.from == r.to:
				names = append(names, fmt.Sprintf("%s listener of %s", proto, e.Addr))
			case len(ps) == 1:
				names = append(names, fmt.Sprintf("%s listener of %s on %d", proto, e.Addr, ps[0]))
			default:
				names = append(names, fmt.Sprintf("%s listeners of %s on %s", proto, e.Addr, joinInts(ps)))
			}
		}
	}
	return names, only && len(names) > 0
}

// holdsSensitive reports whether r holds an admin or data-store port.
func holdsSensitive(r portRange) bool {
	for _, s := range sensitivePorts {
		if r.from <= s.Port && s.Port <= r.to {
			return true
		}
	}
	return false
}

// ownPorts moves to the service ports those of other that a data store
// using the group listens on (a database moved off its engine's port):
// open to the world, they are data-store ports all the same. A group open
// on every other port keeps them there, said as a whole.
func ownPorts(svc, other []portRange, users []*Endpoint) ([]portRange, []portRange) {
	var own []int
	for _, e := range users {
		if e.DataTier && e.Listens != nil {
			own = append(own, e.Ports...)
		}
	}
	slices.Sort(own)
	own = slices.Compact(own)
	if len(own) == 0 || whole(other, "tcp", false) {
		return svc, other
	}
	var rest []portRange
	for _, o := range other {
		lo := o.from
		for _, p := range own {
			if o.proto != "tcp" || p < lo || p > o.to {
				continue
			}
			if lo < p {
				rest = append(rest, portRange{o.proto, lo, p - 1})
			}
			svc = append(svc, portRange{o.proto, p, p})
			lo = p + 1
		}
		if lo <= o.to {
			rest = append(rest, portRange{o.proto, lo, o.to})
		}
	}
	sort.Slice(svc, func(i, j int) bool {
		if svc[i].proto != svc[j].proto {
			return svc[i].proto < svc[j].proto
		}
		return svc[i].from < svc[j].from
	})
	return svc, rest
}

// whole reports whether rs hold every port of proto that their rule
// reports: every service port (svc), or every other port but 80 and 443.
func whole(rs []portRange, proto string, svc bool) bool {
	all, rest := splitServices([]portRange{{proto, 0, 79}, {proto, 81, 442}, {proto, 444, 65535}})
	want := rest
	if svc {
		want = all
	}
	got := map[portRange]bool{}
	for _, r := range rs {
		if r.proto == proto {
			got[r] = true
		}
	}
	if len(got) == 0 {
		return false
	}
	for _, w := range want {
		if !covered(w, rs) {
			return false
		}
	}
	return true
}

// covered reports whether w lies within the union of rs.
func covered(w portRange, rs []portRange) bool {
	next := w.from
	for next <= w.to {
		moved := false
		for _, r := range rs {
			if r.proto == w.proto && r.from <= next && next <= r.to {
				next, moved = r.to+1, true
			}
		}
		if !moved {
			return false
		}
	}
	return true
}

// minusRanges returns the parts of rs outside every range of cut.
func minusRanges(rs, cut []portRange) []portRange {
	var out []portRange
	for _, r := range rs {
		parts := []portRange{r}
		for _, c := range cut {
			var next []portRange
			for _, p := range parts {
				if c.proto != p.proto || c.to < p.from || p.to < c.from {
					next = append(next, p)
					continue
				}
				if p.from < c.from {
					next = append(next, portRange{p.proto, p.from, c.from - 1})
				}
				if c.to < p.to {
					next = append(next, portRange{p.proto, c.to + 1, p.to})
				}
			}
			parts = next
		}
		out = append(out, parts...)
	}
	return out
}

// worldOpen flags every security group that admits the whole internet on
// ports other than 80 and 443, wherever it is declared, at the severity
// what is proven allows: AWS-NET-003 for service ports, AWS-NET-011 for the
// rest, each reported at the resources that declare the open rules. And it
// flags the network ACLs of public subnets that admit the world.
func (m *Model) worldOpen(fs *findings) {
	inet := m.Internet()
	users := map[*SG][]*Endpoint{}
	for _, e := range m.Endpoints {
		// One that names no group has its VPC's default group.
		var vpc *VPC
		if len(e.Subnets) > 0 {
			vpc = e.Subnets[0].VPC
		}
		for _, g := range m.groupsOf(e, vpc) {
			users[g] = append(users[g], e)
		}
	}
	groups := append(append([]*SG(nil), m.SGs...), m.detached...)
	// And the groups AWS makes that only their endpoints carry.
	for _, e := range m.Endpoints {
		for _, g := range e.SGs {
			if g.Made != "" && !slices.Contains(groups, g) {
				groups = append(groups, g)
			}
		}
	}
	for _, g := range groups {
		open := openRanges(g, inet.Set, false)
		// Where only rules whose source is not known statically open it,
		// the group may admit the world: said so, never critical.
		maybe := minusRanges(openRanges(g, inet.Set, true), open)
		for _, o := range []struct {
			ranges  []portRange
			assumed bool
		}{{open, false}, {maybe, true}} {
			svc, other := splitServices(o.ranges)
			svc, other = ownPorts(svc, other, users[g])
			if len(svc) > 0 {
				m.openGroup(fs, RuleWorldOpen, g, svc, rangesText(svc, true, users[g]), users[g], inet.Set, o.assumed)
			}
			if len(other) > 0 {
				m.openGroup(fs, RuleWorldOpenOther, g, other, rangesText(other, false, users[g]), users[g], inet.Set, o.assumed)
			}
		}
	}
	m.worldOpenACLs(fs, inet.Set)
}

// aclGuard is a public endpoint in a subnet a network ACL may govern.
type aclGuard struct {
	s *Subnet
	e *Endpoint
}

// worldOpenACLs flags the network ACLs of public subnets that admit the
// world (AWS-NET-003). An ACL is stateless and subnet-wide; allowing all is
// AWS's default and the VPC module's, and the security groups filter: the
// finding is low while no group of the public endpoints it guards admits
// the internet at large on those ports, medium, naming one, where a group
// does too (the exposure itself is the group's and the endpoint's
// finding).
func (m *Model) worldOpenACLs(fs *findings, inet *netipx.IPSet) {
	guards := map[*NACL][]aclGuard{}
	var order []*NACL
	for _, e := range m.Endpoints {
		if _, ok := m.exposure(e); !ok || e.Managed {
			continue
		}
		for _, s := range e.Subnets {
			// Each ACL that may govern the subnet, not only its own.
			for _, acl := range s.ACLs() {
				if acl == nil || acl.Stateful {
					continue
				}
				if _, ok := guards[acl]; !ok {
					order = append(order, acl)
				}
				guards[acl] = append(guards[acl], aclGuard{s, e})
			}
		}
	}
	for _, acl := range order {
		open, admitted := naclOpenPorts(acl, inet)
		if len(open) == 0 {
			continue
		}
		sev, also := Low, "; no security group of what it guards admits the internet at large on those ports: the groups filter them, and an ACL allowing all is AWS's default"
		if why := m.groupsOpenOn(guards[acl], open, inet); why != "" {
			sev, also = Medium, "; "+why+" too, so the ACL is no second line there"
		}
		var texts []string
		for _, o := range open {
			texts = append(texts, portText(o.proto, o.from, o.to))
		}
		ports := strings.Join(texts, ", ")
		g := guards[acl][0]
		if acl != g.s.ACL() {
			fs.addSev(RuleWorldOpen, sev, acl.Res, nil, "admits %s inbound on %s, and may govern subnet %s of public %s %s (%s)%s", m.worldText(admitted), ports, g.s.Addr, g.e.Kind, g.e.Addr, acl.SubnetsUnknown, also)
			continue
		}
		fs.addSev(RuleWorldOpen, sev, acl.Res, nil, "admits %s inbound on %s (subnet %s of public %s %s)%s", m.worldText(admitted), ports, g.s.Addr, g.e.Kind, g.e.Addr, also)
	}
}

// groupsOpenOn says which security group of the guarded endpoints admits
// the internet at large (or may: a source not known statically) on a port
// of open, and on which; "" when none does. An endpoint whose groups are not
// known statically is read as behind one that does.
func (m *Model) groupsOpenOn(guards []aclGuard, open []portRange, inet *netipx.IPSet) string {
	for _, g := range guards {
		if g.e.SGsUnknown != "" {
			return fmt.Sprintf("the security groups of %s are not known statically (%s): read as admitting the internet at large on them", g.e.Addr, g.e.SGsUnknown)
		}
		for _, sg := range m.groupsOf(g.e, g.s.VPC) {
			for _, r := range openRanges(sg, inet, true) {
				for _, o := range open {
					if r.proto == o.proto && r.from <= o.to && o.from <= r.to {
						return fmt.Sprintf("%s admits the internet at large on %s to %s", sg.Addr, portText(o.proto, max(r.from, o.from), min(r.to, o.to)), g.e.Addr)
					}
				}
			}
		}
	}
	return ""
}

// openGroup reports that g admits the world on ranges (named by what), at
// the severity what is proven allows, once for each resource that declares
// a rule opening part of them.
//
// With assumed, the ranges are open only through rules whose source is not
// known statically: the finding says the group may admit the world, and
// why, and is medium when no path to what it guards is found either.
func (m *Model) openGroup(fs *findings, rule string, g *SG, ranges []portRange, what string, users []*Endpoint, inet *netipx.IPSet, assumed bool) {
	groupSev, groupPath, groupWhy, groupAs := m.openEvidence(g, ranges, users, assumed)
	svc := rule == RuleWorldOpen
	for _, d := range declaring(g, ranges, inet, assumed) {
		who, own := "", what
		switch {
		case g.Made != "":
			who = g.Made + ": "
		case d.res != g.Res && !g.detached:
			who = "rule of " + g.Addr + ": "
		}
		sev, path, why, as := groupSev, groupPath, groupWhy, groupAs
		if d.res != g.Res && len(d.ranges) > 0 {
			own = rangesText(d.ranges, svc, users)
			// A rule of its own is judged on its own ports.
			if own != what {
				sev, path, why, as = m.openEvidence(g, d.ranges, users, assumed)
			}
		}
		// A load balancer's HTTP or HTTPS listener is an
		// application's port, whatever its number; a network load
		// balancer's listener that forwards to a service port of its
		// targets is that service's exposure.
		switch {
		case as == "http":
			sev, why = listenerSeverity(sev, why)
		case !svc && as != "service":
			sev, why = appPortSeverity(sev, why)
		}
		if assumed {
			fs.addSev(rule, sev, d.res, path, "%smay admit every internet address on %s (%s); %s", who, own, strings.Join(dedup(d.assumed), "; "), why)
			continue
		}
		fs.addSev(rule, sev, d.res, path, "%sadmits %s on %s; %s", who, m.worldText(d.set), own, why)
	}
}

// appPortSeverity grades an exposure on ports no admin, data-store or
// well-known service uses (AWS-NET-011, AZ-NET-001 on such ports alone) one
// step below what is proven: what listens there is an application's, an
// exposure but no known-dangerous service, so a proven path from the
// internet at large is high and anything less medium; why says so.
func appPortSeverity(sev Severity, why string) (Severity, string) {
	if sev <= Medium {
		return sev, why
	}
	return sev - 1, fmt.Sprintf("%s; %s, not %s: no admin, data-store or well-known service port is among them", why, sev-1, sev)
}

// listenerSeverity grades an exposure of a load balancer's HTTP or HTTPS
// listener one step below what is proven, as appPortSeverity does: what
// answers there is a web application, whatever the port's number; why
// says so.
func listenerSeverity(sev Severity, why string) (Severity, string) {
	if sev <= Medium {
		return sev, why
	}
	return sev - 1, fmt.Sprintf("%s; %s, not %s: a load balancer's HTTP or HTTPS listener is an application's port, whatever its number", why, sev-1, sev)
}

// openEvidence is what is proven of the internet reaching, on ranges, the
// endpoints that carry g (users): the severity, the path and the words
// that say so; as says what answers on the port reached where its number
// does not: "service" for a network load balancer's listener that
// forwards to an admin, data-store or well-known service port of its
// targets, "http" for a load balancer's HTTP or HTTPS listener.
func (m *Model) openEvidence(g *SG, ranges []portRange, users []*Endpoint, assumed bool) (sev Severity, path []Hop, why, as string) {
	sev = Medium
	inetRes := m.Internet()
	var blocked *Result
	var blockedAt string
	var blockedEnd *Endpoint
	var blockedRange portRange
	var blockedPort int
	var blockedHeard bool
	// narrow is a path found from ranges no wider than one network's
	// (routes or ACLs confine it): high, naming them, unless another path
	// admits the internet at large.
	narrow := ""
probe:
	for _, e := range users {
		for _, o := range ranges {
			for _, p := range o.probe(e) {
				res := m.Reach(inetRes, e, o.proto, p)
				if res.Reachable && len(res.Assumed) == 0 {
					if m.exposureSeverity(res.From, res.Bound, Critical) < Critical {
						if narrow == "" && sev != Critical {
							narrow, path = fmt.Sprintf("%s %s is reached from the internet on %s, but only from %s", e.Kind, e.Addr, portText(o.proto, p, p), m.worldText(res.From)), res.Path
						}
						continue
					}
					// Every carrier reached counts: the worst
					// of them grades the group, not the first.
					what, answers := "", ""
					if svc := forwardedServices(e, p); svc != "" {
						what, answers = "service", "; its listener on "+fmt.Sprint(p)+" forwards to "+svc+" of its targets, whose port this exposure is"
					} else if e.HTTPPorts[p] != "" {
						what, answers = "http", fmt.Sprintf("; it answers HTTP or HTTPS on %d", p)
					}
					if sev == Critical && answerRank[what] <= answerRank[as] {
						continue
					}
					sev, path, as = Critical, res.Path, what
					why = fmt.Sprintf("%s %s is reached from the internet on %s%s%s", e.Kind, e.Addr, portText(o.proto, p, p), lbListeners(e), answers)
					if as == "service" {
						break probe
					}
					continue
				}
				// The longest path stands for the rest, but one that
				// reaches what may answer there other than as an HTTP
				// or HTTPS listener before any: the worst exposure.
				heard := res.Reachable && e.HTTPPorts[p] == ""
				if blocked == nil || heard && !blockedHeard || heard == blockedHeard && len(res.Path) > len(blocked.Path) {
					blockedHeard = heard
					r := res
					blocked, blockedAt, blockedEnd, blockedRange, blockedPort = &r, e.Addr, e, o, p
				}
			}
		}
	}
	switch {
	case sev == Critical:
	case narrow != "":
		sev, why = High, narrow
	case len(users) > 0 && !slices.ContainsFunc(users, func(e *Endpoint) bool { return !e.SourceOnly }):
		// Its rules admit no one where it is attached now; wherever
		// else it may be, they admit the world, as on a group nothing
		// attaches.
		var names []string
		for _, e := range users {
			names = append(names, e.Addr)
		}
		why = fmt.Sprintf("it is attached only to %s, which takes no connection; wherever else it is attached the internet reaches those ports", strings.Join(dedup(names), ", "))
	case len(users) > 0 && !slices.ContainsFunc(users, func(e *Endpoint) bool { return !e.SourceOnly && !listensNone(e, ranges) }):
		// A load balancer answers only on its listeners' ports: no
		// one reaches those ports where it is attached now.
		var names []string
		for _, e := range users {
			if !e.SourceOnly {
				names = append(names, e.Addr+" answers only on its listeners' ports ("+joinInts(e.Ports)+")")
			}
		}
		why = fmt.Sprintf("it is attached only where nothing listens on those ports: %s; wherever else it is attached the internet reaches them", strings.Join(dedup(names), "; "))
		if blocked != nil {
			path = blocked.Path
		}
	case len(users) > 0 && !slices.ContainsFunc(users, func(e *Endpoint) bool { return !e.SourceOnly && e.Interior == "" }):
		// No internet address reaches what carries it now: the rule
		// admits every address its VPC routes there (its own, peers',
		// VPNs'), which AWS-NET-010 judges; wherever else it is
		// attached, it admits the world.
		var names, whys []string
		for _, e := range users {
			names = append(names, e.Addr)
			if e.Interior != "" {
				whys = append(whys, e.Interior)
			}
		}
		why = fmt.Sprintf("it is attached only to %s, which the internet never reaches (%s): what reaches those ports is every address its VPC routes to them (the VPC's own, peered and VPN networks); wherever else it is attached the internet reaches those ports", strings.Join(dedup(names), ", "), strings.Join(dedup(whys), "; "))
	case len(users) > 0 || (m.sgUsed[g.Addr] && !g.detached):
		sev, why = High, "it is attached, but no path from the internet to a listener behind it is proven"
		if blocked != nil {
			path = slices.Clone(blocked.Path)
			if h := &path[len(path)-1]; !blocked.Reachable {
				if h.Kind == "endpoint" && strings.HasPrefix(h.Detail, "no listener on ") && blockedRange.from != blockedRange.to {
					// The port probed stands for a range of the
					// rule's: it listens on none of them.
					h.Detail = fmt.Sprintf("no listener on those ports (%s)", blockedEnd.listenText())
				}
				why = fmt.Sprintf("it is attached (%s), but no path from the internet to it is proven: %s", blockedAt, h)
			} else if rest := otherAssumptions(g, blocked.Assumed, assumed); len(rest) > 0 {
				why = fmt.Sprintf("it is attached (%s); a path exists only if %s", blockedAt, strings.Join(rest, "; "))
			} else {
				why = fmt.Sprintf("it is attached (%s), and a path from the internet to it exists", blockedAt)
			}
			if blocked.Reachable && blockedEnd.Kind == "lb" && blockedEnd.Listens == nil {
				why += lbListeners(blockedEnd)
			}
			if blocked.Reachable && blockedEnd.HTTPPorts[blockedPort] != "" {
				why += fmt.Sprintf("; %s answers HTTP or HTTPS on %d", blockedAt, blockedPort)
				as = "http"
			}
		}
		if assumed && (blocked == nil || !blocked.Reachable) {
			sev = Medium // neither the source nor a path is known
		}
	default:
		where := "nothing in the scanned code attaches it"
		if g.detached {
			where = "its security group is not in the scanned code"
		}
		why = where + ", so wherever it is attached the internet reaches those ports"
	}
	return sev, path, why, as
}

// answerRank orders what answers on a port reached (openEvidence's as)
// from the exposure graded lowest to the one graded highest: a load
// balancer's HTTP or HTTPS listener, whatever the port's number stands
// for, and a network load balancer's listener forwarding to a service
// port of its targets.
var answerRank = map[string]int{"http": 0, "": 1, "service": 2}

// listensNone reports whether e is a load balancer whose listeners are
// known and none is on a port of ranges: it answers on no port of theirs.
// One with no listener in the scanned code may have some elsewhere.
func listensNone(e *Endpoint, ranges []portRange) bool {
	if e.Kind != "lb" || e.Listens == nil || len(e.Ports) == 0 {
		return false
	}
	for _, o := range ranges {
		for _, p := range e.Ports {
			if o.from <= p && p <= o.to && e.Listens(o.proto, p) {
				return false
			}
		}
	}
	return true
}

// lbListeners says, for a load balancer reached, on which ports it
// answers, or that they are not known statically and it is read as
// answering on every port; "" for any other endpoint.
func lbListeners(e *Endpoint) string {
	switch {
	case e.Kind != "lb":
		return ""
	case e.Listens == nil:
		return "; its listeners' ports are not known statically: read as answering on every port"
	}
	return "; it answers only on its listeners' ports (" + joinInts(e.Ports) + ")"
}

// forwardedServices names the admin, data-store and well-known service
// ports of its targets that a network load balancer's listener on port
// forwards to; "" when none is.
func forwardedServices(e *Endpoint, port int) string {
	var out []string
	for _, t := range e.Forwards[port] {
		if svc, _ := splitServices([]portRange{{"tcp", t, t}}); len(svc) > 0 {
			out = append(out, rangesText(svc, true, nil))
		}
	}
	return strings.Join(dedup(out), ", ")
}

// otherAssumptions returns what a path assumed; with sources, less the
// sources of g's rules that are not known statically, which the finding
// names already.
func otherAssumptions(g *SG, assumed []string, sources bool) []string {
	var out []string
next:
	for _, a := range dedup(assumed) {
		for _, r := range g.Ingress {
			if sources && r.Assumed != "" && strings.Contains(a, r.Assumed) {
				continue next
			}
		}
		out = append(out, a)
	}
	return out
}

// declared is a resource that declares open rules, with the part of the
// open ranges its rules cover.
type declared struct {
	res    *tf.Resource
	ranges []portRange
	// assumed says why its rules were read as admitting every address.
	assumed []string
	// set is what its rules admit on those ranges: with rules that open
	// the world only together, what they admit between them.
	set *netipx.IPSet
}

// declaring returns the resources that declare g's ingress rules admitting
// internet addresses on some port of ranges, in order: the group itself for
// inline rules, each rule resource for the others.
//
// A rule whose sources cover a whole internet family declares it alone;
// when the world is open only through several rules together (split
// ranges), every rule that admits internet addresses on those ports does.
//
// With assumed, a rule whose source is not known statically admits every
// address, and what was assumed goes with the resource.
func declaring(g *SG, ranges []portRange, inet *netipx.IPSet, assumed bool) []declared {
	collect := func(whole bool) []declared {
		var out []declared
		var sets []netipx.IPSetBuilder
		at := map[*tf.Resource]int{}
		for _, r := range g.Ingress {
			srcs := ruleSources(r, assumed)
			if r.Res == nil || len(srcs) == 0 {
				continue
			}
			src := setOf(srcs...)
			if whole && !wide(inet, src, nil) || !whole && empty(intersect(src, inet)) {
				continue
			}
			for _, o := range ranges {
				if (r.Proto == o.proto || r.Proto == "all") && r.From <= o.to && o.from <= r.To {
					i, ok := at[r.Res]
					if !ok {
						i = len(out)
						at[r.Res] = i
						out = append(out, declared{res: r.Res})
						sets = append(sets, netipx.IPSetBuilder{})
					}
					sets[i].AddSet(src)
					out[i].ranges = append(out[i].ranges, portRange{o.proto, max(o.from, r.From), min(o.to, r.To)})
					if assumed && r.Assumed != "" {
						out[i].assumed = append(out[i].assumed, r.Assumed)
					}
				}
			}
		}
		for i := range out {
			out[i].set, _ = sets[i].IPSet()
		}
		return out
	}
	out := collect(true)
	if len(out) == 0 {
		out = collect(false)
		var all netipx.IPSetBuilder
		for _, d := range out {
			all.AddSet(d.set)
		}
		for i := range out {
			out[i].set, _ = all.IPSet()
		}
	}
	if len(out) == 0 {
		out = append(out, declared{res: g.Res})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].res == g.Res && out[j].res != g.Res })
	return out
}
