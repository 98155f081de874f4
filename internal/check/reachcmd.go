package check

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"moat/internal/check/tf"
	"moat/internal/flow"
)

// Access is one source that can open one port of a resource.
type Access struct {
	Source  string   `json:"source"`
	Range   string   `json:"range"`    // the source addresses that arrive
	Proto   string   `json:"protocol"` // tcp, udp, or all (every protocol and port; no port)
	Port    int      `json:"port,omitempty"`
	Path    []Hop    `json:"path"`
	Assumed []string `json:"assumed,omitempty"` // what was read at its most permissive
	// Target, when set, is what the access is to in place of the
	// resource asked about: an instance of a cluster, a private endpoint
	// of a service, or the cluster's endpoint when no instance of it is
	// declared.
	Target string `json:"target,omitempty"`
}

// clusterNoInstance names a cluster's endpoint that --reach answers for
// when no instance of the cluster is declared.
const clusterNoInstance = " (the cluster's endpoint: no instance of it is declared)"

// Reachability answers the auditor's question about the resource at
// address: every source — the internet, each other network joined by
// peering, a transit gateway or a VPN, and each subnet and resource of its
// own VPC — that can open one of its ports, with the path. It reads the
// Terraform directories and plans of cfg.Paths.
func Reachability(ctx context.Context, cfg Config, address string) ([]Access, error) {
	var found bool
	var out []Access
	for _, p := range cfg.Paths {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		proj, err := loadProject(p, cfg)
		if err != nil {
			return nil, err
		}
		if proj == nil {
			continue
		}
		m := BuildProject(proj)
		hit := false
		for _, e := range m.Endpoints {
			if e.Addr != address && e.For != address {
				continue
			}
			hit = true
			acc := m.accessTo(e)
			if e.Addr != address {
				for i := range acc {
					acc[i].Target = e.Addr
				}
			}
			out = append(out, acc...)
		}
		// A cluster with no instance declared answers at its endpoint.
		if r := m.byRef[address]; !hit && r != nil && r.Address == address {
			if e := m.clusterEndpoint(r); e != nil {
				hit = true
				acc := m.accessTo(e)
				for i := range acc {
					acc[i].Target = address + clusterNoInstance
				}
				out = append(out, acc...)
			}
		}
		found = found || hit
	}
	if !found {
		return nil, fmt.Errorf("check: --reach %s: no resource with that address that traffic can be sent to (an instance, load balancer, database, cache, node group …) in %s", address, strings.Join(cfg.Paths, ", "))
	}
	return out, nil
}

// loadProject reads a Terraform directory or plan; nil for a moat file.
func loadProject(p string, cfg Config) (*tf.Project, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	if st.IsDir() {
		return loadTF(p, cfg)
	}
	if strings.ToLower(filepath.Ext(p)) != ".json" {
		return nil, nil
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	return tf.ReadPlan(p, data)
}

func (m *Model) accessTo(e *Endpoint) []Access {
	ports := map[[2]any]bool{}
	add := func(proto string, p int) { ports[[2]any{proto, p}] = true }
	for _, p := range e.Ports {
		add("tcp", p)
	}
	for _, p := range e.Published {
		if p.Port >= 0 {
			add(p.Proto, p.Port)
		}
	}
	if e.Listens == nil {
		for _, s := range sensitivePorts {
			add("tcp", s.Port)
		}
	}
	// The first port of each rule; where the endpoint says what it
	// listens on, Reach refuses the others.
	// The subnets it is in, and those it may be in (SubnetsMaybe), whose
	// paths say so.
	subnets := append(slices.Clone(e.Subnets), e.SubnetsMaybe...)
	var vpc *VPC
	if len(subnets) > 0 {
		vpc = subnets[0].VPC
	}
	for _, g := range m.groupsOf(e, vpc) {
		for _, r := range g.Ingress {
			switch {
			case r.Proto == "tcp" || r.Proto == "udp":
				add(r.Proto, r.From)
			case r.Proto == "all" && e.Listens == nil:
				// Every protocol and port at once: a path whose
				// every hop admits all traffic.
				add("all", 0)
			}
		}
	}
	// On Azure, the first port of each rule of its NSGs (its interfaces'
	// and its subnets') that admits tcp or udp, and the ports public load
	// balancers forward to it.
	nsgs := slices.Clone(e.NSGs)
	for _, s := range subnets {
		if e.Azure && s.NACL != nil {
			nsgs = append(nsgs, s.NACL)
		}
	}
	for _, n := range nsgs {
		for _, r := range n.Ingress {
			if r.Allow && (r.Proto == "tcp" || r.Proto == "udp") {
				add(r.Proto, r.From)
			}
		}
	}
	for p := range e.Forwarded {
		if p.port >= 0 && (p.proto == "tcp" || p.proto == "udp") {
			add(p.proto, p.port)
		}
	}
	var keys [][2]any
	for k := range ports {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0].(string) < keys[j][0].(string)
		}
		return keys[i][1].(int) < keys[j][1].(int)
	})
	type src struct {
		Source
		hop     *Hop
		assumed []string
	}
	srcs := []src{{Source: m.Internet()}}
	seen := map[string]bool{}
	if e.PublicOnly {
		subnets = nil // its networks reach it only as the internet does
	}
	for _, s := range subnets {
		for _, ps := range m.peerSources(s) {
			if !seen[ps.Name] {
				seen[ps.Name] = true
				h := ps.Hop
				srcs = append(srcs, src{Source: ps.Source, hop: &h, assumed: ps.Assumed})
			}
		}
		if s.VPC == nil {
			continue
		}
		// The resources of a peered or attached VPC, each a member of
		// its groups, which a rule may name (AWS takes a peer VPC's
		// group), from each of its subnets whose table routes s's range
		// to s's VPC.
		for _, v := range m.linkedVPCs(s.VPC) {
			for _, x := range m.Endpoints {
				if x == e || x.Managed || seen[x.Addr] || !mayReach(x.Reaches, e) {
					continue
				}
				groups := m.groupsOf(x, v)
				if len(groups) == 0 {
					continue
				}
				var gs []string
				for _, g := range groups {
					gs = append(gs, g.Addr)
				}
				for _, xs := range x.Subnets {
					if xs.VPC != v {
						continue
					}
					hop, assumed, ok := m.forwardRouteIn(m.tablesOf(xs), v, s)
					if !ok {
						continue
					}
					seen[x.Addr] = true
					so := m.SubnetSource(xs, gs...)
					so.Name = x.Addr + " (in " + xs.Addr + ")"
					srcs = append(srcs, src{Source: so, hop: &hop, assumed: assumed})
				}
			}
		}
		for _, o := range m.Subnets {
			if o.VPC == s.VPC && !seen[o.Addr] {
				seen[o.Addr] = true
				srcs = append(srcs, src{Source: m.SubnetSource(o)})
			}
		}
		for _, x := range m.Endpoints {
			if x == e || x.Managed || len(x.Subnets) == 0 || x.Subnets[0].VPC != s.VPC || seen[x.Addr] || !mayReach(x.Reaches, e) {
				continue
			}
			groups := m.groupsOf(x, s.VPC)
			if len(groups) == 0 {
				continue
			}
			seen[x.Addr] = true
			var gs []string
			for _, g := range groups {
				gs = append(gs, g.Addr)
			}
			// A source from each of its subnets: ranges and network
			// ACLs may let one through and not another.
			in := map[*Subnet]bool{}
			for _, xs := range x.Subnets {
				if xs.VPC != s.VPC || in[xs] {
					continue
				}
				in[xs] = true
				so := m.SubnetSource(xs, gs...)
				so.Name = x.Addr + " (in " + xs.Addr + ")"
				srcs = append(srcs, src{Source: so})
			}
		}
	}
	var out []Access
	for _, s := range srcs {
		for _, k := range keys {
			proto, port := k[0].(string), k[1].(int)
			res := m.Reach(s.Source, e, proto, port)
			if !res.Reachable {
				continue
			}
			path := res.Path
			if s.hop != nil {
				path = append([]Hop{path[0], *s.hop}, path[1:]...)
			}
			out = append(out, Access{Source: s.Name, Range: m.describeFrom(res), Proto: proto, Port: port, Path: path, Assumed: dedup(slices.Concat(s.assumed, res.Assumed))})
		}
	}
	return out
}

// mayReach reports whether a source limited to the ranges reaches (nil:
// not limited) may open a connection to e: some subnet e may be in, or
// one whose range is not known statically, overlaps them.
func mayReach(reaches []netip.Prefix, e *Endpoint) bool {
	if reaches == nil {
		return true
	}
	subnets := slices.Concat(e.Subnets, e.SubnetsMaybe)
	if len(subnets) == 0 {
		return true
	}
	for _, s := range subnets {
		if !s.CIDR.IsValid() || slices.ContainsFunc(reaches, s.CIDR.Overlaps) {
			return true
		}
	}
	return false
}

// WriteAccess prints what Reachability found, as text or JSON.
func WriteAccess(w io.Writer, address string, acc []Access, format string) error {
	if format == "json" {
		if acc == nil {
			acc = []Access{}
		}
		return encodeJSON(w, struct {
			Address string   `json:"address"`
			Access  []Access `json:"access"`
		}{address, acc})
	}
	// Names, ranges and assumptions are the repository's text, shown
	// as report.go shows it.
	if len(acc) == 0 {
		_, err := fmt.Fprintf(w, "%s: no source in the project can reach it\n", flow.PrintableText(address))
		return err
	}
	fmt.Fprintf(w, "%s is reachable from:\n", flow.PrintableText(address))
	for _, src := range accessBySource(acc) {
		fmt.Fprintf(w, "\n  %s\n", flow.PrintableText(src[0].Source))
		for _, g := range accessLines(src) {
			a := g[0]
			text := portText(a.Proto, a.Port, a.Port)
			switch {
			case a.Proto == "all":
				text += " (every protocol and port)"
			case a.Proto == "tcp" || a.Proto == "udp":
				ports := make([]string, len(g))
				for i, b := range g {
					ports[i] = fmt.Sprint(b.Port)
					if name := portName(b.Port); name != "" {
						ports[i] += " (" + name + ")"
					}
				}
				text = a.Proto + " " + strings.Join(ports, ", ")
			}
			fmt.Fprintf(w, "    %s from %s\n      path: %s\n", text, flow.PrintableText(a.Range), pathLine(a.Path))
			if a.Target != "" {
				fmt.Fprintf(w, "      answered for %s\n", flow.PrintableText(a.Target))
			}
			for _, s := range a.Assumed {
				fmt.Fprintf(w, "      assumed: %s\n", flow.PrintableText(s))
			}
		}
	}
	return nil
}

// accessBySource splits acc, which Reachability orders by source, into
// each source's entries.
func accessBySource(acc []Access) [][]Access {
	var out [][]Access
	for i, a := range acc {
		if i == 0 || a.Source != acc[i-1].Source {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], a)
	}
	return out
}

// accessLines groups one source's entries into the lines --reach prints:
// the ports of one protocol that the same addresses reach by the same path,
// read under the same assumptions, share a line, in the order first seen.
// A resource that admits a whole network lists thirty ports on one line,
// not thirty lines with one path repeated.
func accessLines(acc []Access) [][]Access {
	var out [][]Access
	keys := map[string]int{}
	for _, a := range acc {
		k := strings.Join(append([]string{a.Proto, a.Range, pathLine(a.Path)}, a.Assumed...), "\x00")
		if a.Proto != "tcp" && a.Proto != "udp" {
			k = fmt.Sprint(len(out), "\x00", k) // one line each
		}
		i, ok := keys[k]
		if !ok {
			i = len(out)
			keys[k] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], a)
	}
	return out
}
