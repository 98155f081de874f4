//go:build linux

package firewall

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"moat/internal/netlab"
	"moat/internal/testkit"
)

// nft runs nft in h with one script.
func nft(t *testing.T, h *netlab.Host, script string) {
	t.Helper()
	if out, err := h.Command(context.Background(), "nft", script).CombinedOutput(); err != nil {
		t.Fatalf("nft %q: %v: %s", script, err, out)
	}
}

// bypassTables are the other tables the guard reports, as "FAMILY NAME
// CHAIN KIND", sorted.
func bypassTables(bs []Bypass) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.Family+" "+b.Table+" "+b.Chain+" "+string(b.Kind))
	}
	slices.Sort(out)
	return out
}

// Another program's table that sets moat's mark on every socket's
// packets (root, or a firewall service's configuration) gave every local
// user the egress path's pins: straight out to what the egress point had
// just resolved, round its checks. One that takes the network's packets
// out of connection tracking changes what moat's rules read. Neither was
// noticed. The guard now lists the other tables, reports such rules (log,
// Bypasses, show) and, while moat's mark can be forged, withholds the
// pins; a harmless table (another mark, a loopback notrack, an accept)
// is not reported.
func TestGuardDetectsBypass(t *testing.T) {
	fw, peer := lab(t)
	listen(t, peer, "0.0.0.0:7000")
	out := netip.AddrPortFrom(peer.Addr, 7000).String()
	logs := &testkit.Buffer{}
	m, err := New(Config{NetNS: fw.Path(), Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(Build(Inputs{Mode: ModeEnforce, MeshPort: 9443, Egress: true})); err != nil {
		t.Fatal(err)
	}
	if err := m.Pin([]netip.Addr{peer.Addr}, 7000, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := reach(fw, out, false); err == nil {
		t.Fatal("an unmarked socket used a pin")
	}
	nft(t, fw, "add table ip harmless; add chain ip harmless out { type filter hook output priority mangle; policy accept; }; "+
		"add rule ip harmless out udp dport 9999 meta mark set 0x4000; add rule ip harmless out udp dport 9999 meta mark set meta mark | 0x4000; "+
		"add rule ip harmless out oif lo notrack; add rule ip harmless out tcp dport 1234 accept; "+
		"add chain ip harmless pre { type filter hook prerouting priority raw; policy accept; }; add rule ip harmless pre iifname \"lo\" notrack")

	t.Log("the attack: another table marks every packet with moat's mark, and a local user's socket uses the pin")
	nft(t, fw, "add table inet sneak; add chain inet sneak out { type route hook output priority mangle; policy accept; }; "+
		"add rule inet sneak out meta l4proto tcp meta mark set meta mark | 0x6d6f6174")
	if err := reachable(fw, out, false); err != nil {
		o, _ := fw.Command(context.Background(), "nft", "list", "ruleset").CombinedOutput()
		t.Fatalf("the forged mark did not reach the pinned address (the attack this test checks): %v\n%s", err, o)
	}
	nft(t, fw, "add table ip untracked; add chain ip untracked pre { type filter hook prerouting priority raw; policy accept; }; "+
		"add rule ip untracked pre iifname \"eth0\" notrack")

	t.Log("the guard reports both, and withholds the pins")
	ctx, cancel := context.WithCancel(context.Background())
	guardErr := make(chan error, 1)
	go func() { guardErr <- m.Guard(ctx) }()
	defer func() {
		cancel()
		if err := <-guardErr; err != nil {
			t.Errorf("Guard: %v", err)
		}
	}()
	want := []string{"inet sneak out mark", "ip untracked pre notrack"}
	testkit.WaitForDetail(t, "the bypasses reported", func() (bool, string) {
		got := bypassTables(m.Bypasses())
		return slices.Equal(got, want), strings.Join(got, "; ")
	})
	testkit.WaitFor(t, "the pins withheld", func() bool { return !strings.Contains(rules(t, fw), "pinned addresses") })
	if err := reach(fw, out, false); err == nil {
		t.Error("a local user's socket still uses the pin with moat's mark forged by another table")
	}
	for _, w := range []string{"level=ERROR", "table=sneak", "table=untracked", "egress pins withheld"} {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("the log lacks %q:\n%s", w, logs)
		}
	}
	st, err := Show(fw.Path())
	if err != nil {
		t.Fatal(err)
	}
	if got := bypassTables(st.Bypasses); !slices.Equal(got, want) {
		t.Errorf("show: bypasses %q, want %q", got, want)
	}
	var b strings.Builder
	st.Format(&b)
	for _, w := range []string{"inet sneak", "sets moat's mark", "(egress pins withheld)", "ip untracked", "notrack", "egress pins withheld: another table sets moat's mark"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("show lacks %q:\n%s", w, b.String())
		}
	}
	if !st.PinsWithheld {
		t.Error("show: pins_withheld false on a node whose pins are withheld")
	}

	t.Log("the tables removed: nothing reported, the pins back for the egress path's own sockets")
	nft(t, fw, "delete table inet sneak; delete table ip untracked")
	testkit.WaitForDetail(t, "no bypass reported", func() (bool, string) {
		got := bypassTables(m.Bypasses())
		return len(got) == 0, strings.Join(got, "; ")
	})
	testkit.WaitFor(t, "the pins back", func() bool { return strings.Contains(rules(t, fw), "pinned addresses") })
	if err := reachable(fw, out, true); err != nil {
		t.Errorf("the egress path's marked socket to its pin: %v", err)
	}
	if err := reach(fw, out, false); err == nil {
		t.Error("an unmarked socket used a pin")
	}
}

// Each way a rule may set moat's mark (a constant, a bitwise or of it, a
// map's value, the connection's mark) or notrack beyond loopback is
// reported; rules that come near without doing so are not.
func TestBypassRules(t *testing.T) {
	fw, _ := lab(t)
	cases := []struct {
		rule string
		kind BypassKind // "": not reported
	}{
		{"meta mark set 0x6d6f6174", BypassMark},
		{"meta mark set meta mark | 0x6d6f6174", BypassMark},
		{"ct mark set 0x6d6f6174", BypassMark},
		{"meta mark set tcp dport map { 7000 : 0x6d6f6174, 7001 : 0x1 }", BypassMark},
		{"notrack", BypassNotrack},
		{"oifname != \"lo\" notrack", BypassNotrack},
		{"oifname \"lo*\" notrack", BypassNotrack},
		{"ip daddr 198.18.7.2 notrack", BypassNotrack},
		{"meta mark set 0x6d6f6175", ""},
		{"ct mark set 0x1", ""},
		{"meta mark set meta mark & 0xffff", ""},
		{"meta mark set meta mark | 0x4000", ""},
		{"meta mark set tcp dport map { 7000 : 0x2, 7001 : 0x1 }", ""},
		{"meta mark 0x6d6f6174 accept", ""},
		{"ct state untracked accept", ""},
		{"oif lo notrack", ""},
		{"oifname \"lo\" notrack", ""},
	}
	nft(t, fw, "add table inet other")
	var want []string
	for i, c := range cases {
		chain := fmt.Sprintf("r%02d", i)
		nft(t, fw, "add chain inet other "+chain+" { type filter hook output priority raw; policy accept; }; add rule inet other "+chain+" "+c.rule)
		if c.kind != "" {
			want = append(want, "inet other "+chain+" "+string(c.kind))
		}
	}
	c, done, err := openConn(fw.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	bs, err := bypasses(c)
	if err != nil {
		t.Fatal(err)
	}
	got := bypassTables(bs)
	for i, cs := range cases {
		chain := fmt.Sprintf("inet other r%02d ", i)
		var kind string
		for _, g := range got {
			if strings.HasPrefix(g, chain) {
				kind = strings.TrimPrefix(g, chain)
			}
		}
		if kind != string(cs.kind) {
			t.Errorf("%q: reported %q, want %q", cs.rule, kind, cs.kind)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("reported %q, want %q", got, want)
	}
}
