//go:build linux

package firewall

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"

	"moat/internal/netlab"
	"moat/internal/testkit"
)

// iptables runs iptables-nft (or, for ip6, ip6tables-nft) in h with args.
func iptables(t *testing.T, h *netlab.Host, family string, args ...string) {
	t.Helper()
	cmd := "iptables-nft"
	if family == "ip6" {
		cmd = "ip6tables-nft"
	}
	if _, err := exec.LookPath(cmd); err != nil {
		t.Fatalf("%s: %v (Debian package iptables)", cmd, err)
	}
	if out, err := h.Command(context.Background(), cmd, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %q: %v: %s", cmd, args, err, out)
	}
}

// iptables-nft writes an iptables target into nftables as a compat
// "target" expression whose info is the kernel's xtables structure; the
// guard read the rest of such rules but not what their targets do, so
// "-j MARK --set-mark 0x6d6f6174" and "-j CT --notrack" went unreported.
// Each iptables way of setting moat's mark (on the packet or its
// connection) or notrack beyond loopback is reported now, as its native
// form is; rules that come near without doing so are not.
func TestBypassIptablesTargets(t *testing.T) {
	fw, _ := lab(t)
	cases := []struct {
		family, table, rule string
		kind                BypassKind // "": not reported
	}{
		{"ip", "mangle", "-j MARK --set-mark 0x6d6f6174", BypassMark},
		{"ip", "mangle", "-j MARK --set-mark 0x6d6f6174/0xffff", BypassMark},
		{"ip", "mangle", "-j MARK --set-xmark 0x6d6f6174/0xffffffff", BypassMark},
		{"ip", "mangle", "-j MARK --set-xmark 0x6d6f6174/0x0", BypassMark},
		{"ip", "mangle", "-j MARK --or-mark 0x6d6f6174", BypassMark},
		{"ip", "mangle", "-p tcp --dport 7000 -j MARK --set-mark 0x6d6f6174", BypassMark},
		{"ip", "mangle", "-j CONNMARK --set-mark 0x6d6f6174", BypassMark},
		{"ip", "mangle", "-j CONNMARK --set-xmark 0x6d6f6174/0xffffffff", BypassMark},
		{"ip6", "mangle", "-j MARK --set-mark 0x6d6f6174", BypassMark},
		{"ip", "raw", "-j CT --notrack", BypassNotrack},
		{"ip", "raw", "-j NOTRACK", BypassNotrack},
		{"ip", "raw", "! -o lo -j CT --notrack", BypassNotrack},
		{"ip", "raw", "-o lo+ -j CT --notrack", BypassNotrack},
		{"ip", "raw", "-d 198.18.7.2 -j CT --notrack", BypassNotrack},
		{"ip6", "raw", "-j CT --notrack", BypassNotrack},
		{"ip", "mangle", "-j MARK --set-mark 0x6d6f6175", ""},
		{"ip", "mangle", "-j MARK --or-mark 0x4000", ""},
		{"ip", "mangle", "-j MARK --and-mark 0x6d6f6174", ""},
		{"ip", "mangle", "-j MARK --set-xmark 0x0/0xffff", ""},
		{"ip", "mangle", "-j CONNMARK --set-mark 0x1", ""},
		{"ip", "mangle", "-j CONNMARK --save-mark", ""},
		{"ip", "mangle", "-j CONNMARK --restore-mark", ""},
		{"ip", "mangle", "-m mark --mark 0x6d6f6174 -j ACCEPT", ""},
		{"ip", "raw", "-o lo -j CT --notrack", ""},
		{"ip", "raw", "-i lo -j NOTRACK", ""},
		{"ip", "raw", "-j CT --zone 7", ""},
	}
	var want []string
	for i, c := range cases {
		chain := fmt.Sprintf("r%02d", i)
		iptables(t, fw, c.family, "-t", c.table, "-N", chain)
		iptables(t, fw, c.family, append([]string{"-t", c.table, "-A", chain}, strings.Fields(c.rule)...)...)
		if c.kind != "" {
			want = append(want, c.family+" "+c.table+" "+chain+" "+string(c.kind))
		}
	}
	slices.Sort(want)
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
		chain := fmt.Sprintf("%s %s r%02d ", cs.family, cs.table, i)
		var kind string
		for _, g := range got {
			if strings.HasPrefix(g, chain) {
				kind = strings.TrimPrefix(g, chain)
			}
		}
		if kind != string(cs.kind) {
			t.Errorf("%s -t %s %s: reported %q, want %q", cs.family, cs.table, cs.rule, kind, cs.kind)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("reported %q, want %q", got, want)
	}
}

// The attack of TestGuardDetectsBypass written with iptables-nft: its
// MARK target gives every local user's sockets moat's mark and so the
// egress path's pins. The guard reports the rule and withholds the pins,
// and puts them back once the rule is deleted.
func TestGuardDetectsIptablesMark(t *testing.T) {
	fw, peer := lab(t)
	listen(t, peer, "0.0.0.0:7000")
	out := netip.AddrPortFrom(peer.Addr, 7000).String()
	m, err := New(Config{NetNS: fw.Path(), Logger: slog.New(slog.DiscardHandler)})
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
	iptables(t, fw, "ip", "-t", "mangle", "-A", "OUTPUT", "-p", "tcp", "-j", "MARK", "--set-mark", "0x6d6f6174")
	if err := reachable(fw, out, false); err != nil {
		t.Fatalf("the mark iptables set did not reach the pinned address (the attack this test checks): %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	guardErr := make(chan error, 1)
	go func() { guardErr <- m.Guard(ctx) }()
	defer func() {
		cancel()
		if err := <-guardErr; err != nil {
			t.Errorf("Guard: %v", err)
		}
	}()
	want := []string{"ip mangle OUTPUT mark"}
	testkit.WaitForDetail(t, "the bypass reported", func() (bool, string) {
		got := bypassTables(m.Bypasses())
		return slices.Equal(got, want), strings.Join(got, "; ")
	})
	testkit.WaitFor(t, "the pins withheld", func() bool { return !strings.Contains(rules(t, fw), "pinned addresses") })
	if err := reach(fw, out, false); err == nil {
		t.Error("a local user's socket still uses the pin with moat's mark set by iptables")
	}

	t.Log("the rule deleted: nothing reported, the pins back")
	iptables(t, fw, "ip", "-t", "mangle", "-D", "OUTPUT", "-p", "tcp", "-j", "MARK", "--set-mark", "0x6d6f6174")
	testkit.WaitForDetail(t, "no bypass reported", func() (bool, string) {
		got := bypassTables(m.Bypasses())
		return len(got) == 0, strings.Join(got, "; ")
	})
	testkit.WaitFor(t, "the pins back", func() bool { return strings.Contains(rules(t, fw), "pinned addresses") })
}

// xtInfo is an xtables info structure: words in native byte order, then
// bytes.
func xtInfo(words []uint32, tail ...byte) *xt.Unknown {
	var b []byte
	for _, w := range words {
		b = append(b, binaryutil.NativeEndian.PutUint32(w)...)
	}
	u := xt.Unknown(append(b, tail...))
	return &u
}

// A target's info is what another program wrote: one that cannot be read
// counts as a bypass, as a map that cannot be read does, and a target
// moat does not look into counts as none.
func TestXTTargetInfo(t *testing.T) {
	for _, c := range []struct {
		name string
		e    expr.Target
		want BypassKind
	}{
		{"MARK set", expr.Target{Name: "MARK", Rev: 2, Info: xtInfo([]uint32{Mark, 0xffffffff})}, BypassMark},
		{"MARK and", expr.Target{Name: "MARK", Rev: 2, Info: xtInfo([]uint32{0, ^uint32(Mark)})}, ""},
		{"MARK short", expr.Target{Name: "MARK", Rev: 2, Info: xtInfo([]uint32{1})}, BypassMark},
		{"MARK of another revision", expr.Target{Name: "MARK", Rev: 3, Info: xtInfo([]uint32{1, 1})}, BypassMark},
		{"MARK without info", expr.Target{Name: "MARK", Rev: 2}, BypassMark},
		{"CONNMARK 1 set", expr.Target{Name: "CONNMARK", Rev: 1, Info: xtInfo([]uint32{Mark, 0xffffffff, 0}, xtConnmarkSet, 0, 0, 0)}, BypassMark},
		{"CONNMARK 1 save", expr.Target{Name: "CONNMARK", Rev: 1, Info: xtInfo([]uint32{Mark, 0xffffffff, 0}, 1, 0, 0, 0)}, ""},
		{"CONNMARK 2 set", expr.Target{Name: "CONNMARK", Rev: 2, Info: xtInfo([]uint32{Mark, 0xffffffff, 0}, 0, 0, xtConnmarkSet, 0)}, BypassMark},
		{"CONNMARK 2 restore", expr.Target{Name: "CONNMARK", Rev: 2, Info: xtInfo([]uint32{Mark, 0xffffffff, 0}, 0, 0, 2, 0)}, ""},
		{"CONNMARK short", expr.Target{Name: "CONNMARK", Rev: 2, Info: xtInfo([]uint32{1, 1, 1}, 0, 0)}, BypassMark},
		{"CONNMARK 0", expr.Target{Name: "CONNMARK", Rev: 0, Info: xtInfo([]uint32{1, 1, 1, 1})}, BypassMark},
		{"CT notrack", expr.Target{Name: "CT", Rev: 2, Info: xt.InfoAny(&xt.Unknown{xtCTNotrack, 0, 0, 0})}, BypassNotrack},
		{"CT zone", expr.Target{Name: "CT", Rev: 1, Info: xt.InfoAny(&xt.Unknown{0, 0, 7, 0})}, ""},
		{"CT short", expr.Target{Name: "CT", Rev: 0, Info: xt.InfoAny(&xt.Unknown{0})}, BypassNotrack},
		{"CT of another revision", expr.Target{Name: "CT", Rev: 3, Info: xt.InfoAny(&xt.Unknown{0, 0})}, BypassNotrack},
		{"NOTRACK", expr.Target{Name: "NOTRACK"}, BypassNotrack},
		{"another target", expr.Target{Name: "TCPMSS", Rev: 0, Info: xtInfo([]uint32{Mark})}, ""},
	} {
		if got := xtTarget(&c.e); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func FuzzXTTarget(f *testing.F) {
	f.Add("MARK", uint32(2), []byte(*xtInfo([]uint32{Mark, 0})))
	f.Add("CONNMARK", uint32(2), []byte(*xtInfo([]uint32{Mark, 0, 0}, 0, 0, 0, 0)))
	f.Add("CT", uint32(2), []byte{1, 0})
	f.Fuzz(func(t *testing.T, name string, rev uint32, info []byte) {
		u := xt.Unknown(info)
		switch xtTarget(&expr.Target{Name: name, Rev: rev, Info: &u}) {
		case "", BypassMark, BypassNotrack:
		default:
			t.Fatal("a kind that is none of moat's")
		}
	})
}
