// Package netlab builds small networks of Linux network namespaces: hosts
// joined by veth pairs to one bridge, each host with its own address, its
// own firewall and its own routes. "moat demo isolation" and the tests of
// the host firewall and the egress path use it; it needs root and iproute2
// ("ip").
//
// Every namespace a Lab creates carries the Lab's prefix and is deleted by
// Close (deleting a namespace removes its interfaces); nothing is created
// in the caller's own namespace.
package netlab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
)

// Lab is a bridge namespace and the hosts attached to it.
type Lab struct {
	prefix string
	subnet netip.Prefix
	hub    string

	mu     sync.Mutex // guards hosts, made and behind
	hosts  []*Host
	made   []string            // namespaces created, in order
	behind map[string]*bridged // by the namespace of the host they are behind
}

// Host is one namespace on the lab's network.
type Host struct {
	Name string     // as given to AddHost
	NS   string     // the namespace's name (prefixed)
	Addr netip.Addr // its address on the lab network
	lab  *Lab
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,30}$`)

// New creates the lab's bridge namespace. prefix names every namespace
// the lab creates ("moat-demo-" gives "moat-demo-hub", "moat-demo-app"…);
// subnet is the lab network, hosts numbered from its second address.
func New(prefix string, subnet netip.Prefix) (*Lab, error) {
	if !nameRE.MatchString(prefix) {
		return nil, fmt.Errorf("netlab: prefix %q: lowercase letters, digits and '-' only", prefix)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, errors.New("netlab: the ip command (iproute2) is not installed")
	}
	l := &Lab{prefix: prefix, subnet: subnet.Masked(), hub: prefix + "hub"}
	if err := l.addNS(l.hub); err != nil {
		return nil, err
	}
	if err := l.ip(l.hub, "link", "add", "br0", "type", "bridge"); err != nil {
		l.Close()
		return nil, err
	}
	if err := l.ip(l.hub, "link", "set", "br0", "up"); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func (l *Lab) addNS(name string) error {
	if _, err := os.Stat("/run/netns/" + name); err == nil {
		return fmt.Errorf("netlab: network namespace %q exists already (left by an earlier run? \"ip netns del %s\" removes it)", name, name)
	}
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return fmt.Errorf("netlab: ip netns add %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	l.mu.Lock()
	l.made = append(l.made, name)
	l.mu.Unlock()
	return nil
}

// ip runs "ip -n NS args…".
func (l *Lab) ip(ns string, args ...string) error {
	full := append([]string{"-n", ns}, args...)
	if out, err := exec.Command("ip", full...).CombinedOutput(); err != nil {
		return fmt.Errorf("netlab: ip %s: %v: %s", strings.Join(full, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// AddHost creates a host namespace with eth0 on the lab network and its
// loopback up.
func (l *Lab) AddHost(name string) (*Host, error) {
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("netlab: host name %q", name)
	}
	l.mu.Lock()
	n := len(l.hosts) + 1
	l.mu.Unlock()
	addr := l.subnet.Addr()
	for range n {
		addr = addr.Next()
	}
	if !l.subnet.Contains(addr) {
		return nil, fmt.Errorf("netlab: subnet %s is full", l.subnet)
	}
	h := &Host{Name: name, NS: l.prefix + name, Addr: addr, lab: l}
	if err := l.addNS(h.NS); err != nil {
		return nil, err
	}
	peer := fmt.Sprintf("v%d", n)
	steps := [][]string{
		{"link", "add", "eth0", "type", "veth", "peer", "name", peer, "netns", l.hub},
		{"addr", "add", netip.PrefixFrom(addr, l.subnet.Bits()).String(), "dev", "eth0"},
		{"link", "set", "eth0", "up"},
		{"link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if err := l.ip(h.NS, s...); err != nil {
			return nil, err
		}
	}
	if err := l.ip(l.hub, "link", "set", peer, "master", "br0", "up"); err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.hosts = append(l.hosts, h)
	l.mu.Unlock()
	return h, nil
}

// AddBehind creates a host namespace behind gw, as a container sits
// behind a node's bridge: gw gets a bridge ("cbr0", holding the first
// address of subnet) the first time, and the host a veth pair into it,
// its eth0 holding the next free address of subnet and its default route
// through gw; gw forwards IPv4. The host is not on the lab network: others
// reach it only as gw routes or translates for it. Every host behind one
// gw shares its bridge and subnet.
func (l *Lab) AddBehind(gw *Host, name string, subnet netip.Prefix) (*Host, error) {
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("netlab: host name %q", name)
	}
	subnet = subnet.Masked()
	gwAddr := subnet.Addr().Next()
	l.mu.Lock()
	if l.behind == nil {
		l.behind = map[string]*bridged{}
	}
	b, first := l.behind[gw.NS], false
	if b == nil {
		b, first = &bridged{subnet: subnet}, true
		l.behind[gw.NS] = b
	}
	b.n++
	n := b.n
	l.mu.Unlock()
	if b.subnet != subnet {
		return nil, fmt.Errorf("netlab: the hosts behind %s are on %s, not %s", gw.Name, b.subnet, subnet)
	}
	addr := gwAddr
	for range n {
		addr = addr.Next()
	}
	if !subnet.Contains(addr) {
		return nil, fmt.Errorf("netlab: subnet %s is full", subnet)
	}
	h := &Host{Name: name, NS: l.prefix + name, Addr: addr, lab: l}
	if err := l.addNS(h.NS); err != nil {
		return nil, err
	}
	type step struct {
		ns   string
		args []string
	}
	var steps []step
	if first {
		steps = append(steps,
			step{gw.NS, []string{"link", "add", "cbr0", "type", "bridge"}},
			step{gw.NS, []string{"addr", "add", netip.PrefixFrom(gwAddr, subnet.Bits()).String(), "dev", "cbr0"}},
			step{gw.NS, []string{"link", "set", "cbr0", "up"}})
	}
	gwEnd := fmt.Sprintf("c%d", n)
	steps = append(steps,
		step{h.NS, []string{"link", "add", "eth0", "type", "veth", "peer", "name", gwEnd, "netns", gw.NS}},
		step{h.NS, []string{"addr", "add", netip.PrefixFrom(addr, subnet.Bits()).String(), "dev", "eth0"}},
		step{h.NS, []string{"link", "set", "eth0", "up"}},
		step{h.NS, []string{"link", "set", "lo", "up"}},
		step{gw.NS, []string{"link", "set", gwEnd, "master", "cbr0", "up"}},
		step{h.NS, []string{"route", "add", "default", "via", gwAddr.String()}})
	for _, s := range steps {
		if err := l.ip(s.ns, s.args...); err != nil {
			return nil, err
		}
	}
	if out, err := gw.Command(context.Background(), "sysctl", "-qw", "net.ipv4.ip_forward=1").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("netlab: forwarding in %s: %v: %s", gw.NS, err, strings.TrimSpace(string(out)))
	}
	return h, nil
}

// bridged is the bridge behind one host: its subnet and how many hosts
// sit on it.
type bridged struct {
	subnet netip.Prefix
	n      int
}

// Close deletes every namespace the lab created (and so their interfaces
// and whatever firewall tables they held). It is safe to call twice.
func (l *Lab) Close() error {
	l.mu.Lock()
	made := l.made
	l.made = nil
	l.mu.Unlock()
	var errs []error
	for i := len(made) - 1; i >= 0; i-- {
		if out, err := exec.Command("ip", "netns", "del", made[i]).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("netlab: ip netns del %s: %v: %s", made[i], err, strings.TrimSpace(string(out))))
		}
	}
	return errors.Join(errs...)
}

// Namespaces lists the namespaces the lab holds now.
func (l *Lab) Namespaces() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.made...)
}

// Lab is the lab h belongs to.
func (h *Host) Lab() *Lab { return h.lab }

// Path is the namespace's file, for setns and nftables.
func (h *Host) Path() string { return "/run/netns/" + h.NS }

// Command returns a command that runs in the host's namespace.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// RulesetExcept is the nftables ruleset of namespace ns ("" for the
// caller's own) as nft prints it, without the table named except ("inet
// moat"): what must not change while moat manages its own table.
func RulesetExcept(ns, except string) (string, error) {
	cmd := exec.Command("nft", "list", "ruleset")
	if ns != "" {
		cmd = exec.Command("ip", "netns", "exec", ns, "nft", "list", "ruleset")
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("netlab: nft list ruleset: %v: %s", err, strings.TrimSpace(string(out)))
	}
	var keep []string
	depth, skip := 0, false
	for _, line := range strings.Split(string(out), "\n") {
		if depth == 0 && strings.HasPrefix(line, "table "+except+" ") {
			skip = true
		}
		depth += strings.Count(line, "{") - strings.Count(line, "}")
		if !skip {
			keep = append(keep, line)
		}
		if depth == 0 {
			skip = false
		}
	}
	return strings.Join(keep, "\n"), nil
}
