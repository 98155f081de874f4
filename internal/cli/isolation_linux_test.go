//go:build linux

package cli

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"moat/internal/firewall"
	"moat/internal/flow"
	"moat/internal/flow/flowstore"
	"moat/internal/netlab"
	"moat/internal/seal"
	"moat/internal/testkit"
)

// builtMoat is the moat command (built once per test binary) for a test
// that runs it as a separate process in network namespaces.
func builtMoat(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces and nftables need root (CI runs as root)")
	}
	return moatBinary(t)
}

func testPrefix(tag string) string {
	return fmt.Sprintf("%s%d-%d-", tag, os.Getpid()%100000, time.Now().UnixNano()%1000)
}

// namespacesWith lists the network namespaces whose names start with p.
func namespacesWith(t *testing.T, p string) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	var got []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], p) {
			got = append(got, f[0])
		}
	}
	return got
}

// foreignRules is every table but "inet moat" of a namespace ("": the
// test's own).
func foreignRules(t *testing.T, ns string) string {
	t.Helper()
	out, err := netlab.RulesetExcept(ns, "inet moat")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// flowsOf reads the records the server stored, through the server's own
// keyring and flow store (as the server opens them: the KEK file beside
// its data directory).
func flowsOf(t *testing.T, l *isoLab) []flow.Record {
	t.Helper()
	data := filepath.Join(l.dir, "server")
	var kc seal.KEKConfig
	kr, _, err := kc.OpenKeyring(data, os.Getenv, false)
	if err != nil {
		t.Fatalf("server keyring: %v", err)
	}
	st, err := flowstore.OpenStore(flowstore.StoreConfig{Dir: filepath.Join(data, "flows"), Retention: 24 * time.Hour, Sealer: kr.AEAD()})
	if err != nil {
		t.Fatalf("flow store: %v", err)
	}
	defer st.Close()
	recs, err := st.Query(context.Background(), flow.Filter{Since: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatalf("flow query: %v", err)
	}
	var out []flow.Record
	for _, r := range recs {
		if r.Unmapped != nil && r.ConnectionInfo != nil && r.SrcEndpoint != nil && r.DstEndpoint != nil {
			out = append(out, r)
		}
	}
	return out
}

// waitRecord waits (bounded) until the server holds a record match accepts.
func waitRecord(t *testing.T, l *isoLab, what string, match func(flow.Record) bool) flow.Record {
	t.Helper()
	var got flow.Record
	err := waitUntil(context.Background(), 60*time.Second, func() bool {
		for _, r := range flowsOf(t, l) {
			if match(r) {
				got = r
				return true
			}
		}
		return false
	})
	if err != nil {
		for _, r := range flowsOf(t, l) {
			t.Logf("stored: %s node=%s kind=%s verdict=%s code=%s src=%+v dst=%+v", r.Metadata.Product.Name, r.Unmapped.Node, r.Unmapped.Kind, r.Verdict(), r.Unmapped.ReasonCode, *r.SrcEndpoint, *r.DstEndpoint)
		}
		t.Fatalf("the server holds no record of %s", what)
	}
	return got
}

func TestFirewallFleet(t *testing.T) {
	exe := builtMoat(t)
	rootBefore := foreignRules(t, "")
	l, err := newIsoLab(exe, testPrefix("fwf"), "enforce", true, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			for _, n := range []string{"server", "gateway", "egress", "app", "db"} {
				t.Logf("--- %s:\n%s", n, l.output(n))
			}
		}
		if err := l.Close(); err != nil {
			t.Error(err)
		}
		if after := foreignRules(t, ""); after != rootBefore {
			t.Errorf("the test's own namespace ruleset changed:\n%s\n---\n%s", rootBefore, after)
		}
	}()
	// Another table on db, which moat must never touch.
	if out, err := l.db.Command(context.Background(), "nft", "add table ip other; add chain ip other c { type filter hook input priority 10; policy accept; }; add rule ip other c tcp dport 1234 accept").CombinedOutput(); err != nil {
		t.Fatalf("nft: %v: %s", err, out)
	}
	dbBefore := foreignRules(t, l.db.NS)
	ctx := context.Background()
	if err := l.start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.ready(ctx); err != nil {
		t.Fatal(err)
	}

	t.Log("enforce: every path behaves as the intentions say")
	for _, c := range l.checks() {
		got, err := c.probe()
		if (err == nil) != c.want {
			t.Errorf("%s: want reachable=%v, got %q %v", c.what, c.want, got, err)
		}
	}
	show, err := l.moat(ctx, nil, "node", "firewall", "show", "--netns", l.db.NS)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"table inet moat: mode enforce", "in: tcp/15443 any (mesh port)", "(control plane " + l.addr(l.control, isoServer) + ")", "(mesh of node app)", "everything else: drop"} {
		if !strings.Contains(show, want) {
			t.Errorf("firewall show lacks %q:\n%s", want, show)
		}
	}
	if show, err := l.moat(ctx, nil, "node", "firewall", "show", "--netns", l.egressHost.NS); err != nil || !strings.Contains(show, l.addr(l.internet, 443)+" (expires in") {
		t.Errorf("the egress gateway's pins lack the resolved site: %v\n%s", err, show)
	}

	t.Log("refusals are recorded: the host firewall's outbound drop and the egress gateway's")
	waitRecord(t, l, "app's dropped outbound connection", func(r flow.Record) bool {
		return r.Unmapped.ReasonCode == flow.ReasonFirewall && r.Unmapped.Node == "app" && r.ConnectionInfo.DirectionID == flow.DirectionOutbound &&
			r.DstEndpoint.IP == l.internet.Addr.String() && r.Verdict() == flow.VerdictDeny
	})
	waitRecord(t, l, "the denied egress name", func(r flow.Record) bool {
		return r.Unmapped.ReasonCode == flow.ReasonEgressDenied && r.DstEndpoint.Hostname == isoOther && r.SrcEndpoint.SvcName == "api"
	})
	waitRecord(t, l, "the allowed egress flow", func(r flow.Record) bool {
		return r.Unmapped.Kind == "egress" && r.Verdict() == flow.VerdictAllow && r.DstEndpoint.Hostname == isoSite &&
			r.SrcEndpoint.UID == "spiffe://demo.test/svc/api" && r.FirewallRule != nil && r.FirewallRule.Name == "partner"
	})

	t.Log("a policy change opens and closes the matching firewall rule (measured by probing)")
	if _, err := l.moat(ctx, l.control, "svc", "register", "--node", "db", "--name", "db", "--port", fmt.Sprint(isoDB), "--plaintext-port", "5433"); err != nil {
		t.Fatal(err)
	}
	plain := l.addr(l.db, 5433)
	if _, err := l.read(l.internet, plain); err == nil {
		t.Fatal("the plaintext port is open before any rule admits it")
	}
	permissive := strings.Replace(isoIntentions, "rules:\n", fmt.Sprintf("services:\n  db: {mode: permissive}\nrules:\n  - name: legacy-clients\n    from_plaintext: [%s/32]\n    to: db\n    ports: [%d]\n", l.internet.Addr, isoDB), 1)
	// The time of a change is when the first probe that sees it started
	// (a dropped probe itself takes its one-second timeout to fail).
	var probeStart time.Time
	probe := func(open bool) func() bool {
		return func() bool {
			probeStart = time.Now()
			s, err := l.read(l.internet, plain)
			return (err == nil && s == "db says hi") == open
		}
	}
	applied := time.Now()
	if err := l.applyPolicy(ctx, permissive); err != nil {
		t.Fatal(err)
	}
	if err := waitUntil(ctx, testkit.WaitLimit, probe(true)); err != nil {
		t.Fatalf("the plaintext port never opened after the policy change")
	}
	t.Logf("rule added: open to a probe started %v after policy apply returned", probeStart.Sub(applied).Round(time.Millisecond))
	applied = time.Now()
	if err := l.applyPolicy(ctx, isoIntentions); err != nil {
		t.Fatal(err)
	}
	if err := waitUntil(ctx, testkit.WaitLimit, probe(false)); err != nil {
		t.Fatalf("the plaintext port stayed open after the rule went")
	}
	t.Logf("rule removed: closed to a probe started %v after policy apply returned", probeStart.Sub(applied).Round(time.Millisecond))

	t.Log("SIGKILL of db's agent leaves its rules in force, and restarting it restores them without a window (probed all along)")
	db := l.addr(l.db, isoDB)
	// Four probers, each a connection attempt of 100ms at most: a dropped
	// SYN fails by its timeout, an open port answers at once.
	var opened, probes atomic.Int64
	stopProbe := make(chan struct{})
	var probers sync.WaitGroup
	for range 4 {
		probers.Add(1)
		go func() {
			defer probers.Done()
			_ = l.internet.Do(func() error { // the thread stays in the namespace while it probes
				for {
					select {
					case <-stopProbe:
						return nil
					default:
					}
					probes.Add(1)
					c, err := net.DialTimeout("tcp", db, 100*time.Millisecond)
					if err == nil {
						opened.Add(1)
						c.Close()
					}
				}
			})
		}()
	}
	l.stop("db", true)
	st, err := firewall.Show(l.db.Path())
	if err != nil || !st.Installed || st.Mode != firewall.ModeEnforce {
		t.Fatalf("after the agent died: %+v %v", st, err)
	}
	if _, err := l.read(l.internet, db); err == nil {
		t.Error("the backend became reachable when the agent died")
	}
	if err := l.startAgent("db", "", "enforce"); err != nil {
		t.Fatal(err)
	}
	if err := waitUntil(ctx, 60*time.Second, func() bool {
		s, err := l.read(l.app, fmt.Sprintf("127.0.0.1:%d", isoDBLocal))
		return err == nil && s == "db says hi"
	}); err != nil {
		t.Fatal("the mesh to db never came back after the restart")
	}
	if err := waitUntil(ctx, 30*time.Second, func() bool { return strings.Contains(l.output("db"), "host firewall applied") }); err != nil {
		t.Fatal("the restarted agent never applied its rules")
	}
	close(stopProbe)
	probers.Wait()
	if n := opened.Load(); n > 0 {
		t.Errorf("the backend answered %d probes from the internet while the agent restarted", n)
	}
	if probes.Load() == 0 {
		t.Error("no probe ran while the agent restarted")
	}
	t.Logf("%d probes while the agent was killed and restarted, none answered", probes.Load())

	t.Log("audit mode: nothing is dropped, what would be is recorded")
	l.stop("db", false)
	if err := l.startAgent("db", "", "audit"); err != nil {
		t.Fatal(err)
	}
	if err := waitUntil(ctx, 60*time.Second, func() bool { st, err := firewall.Show(l.db.Path()); return err == nil && st.Mode == firewall.ModeAudit }); err != nil {
		t.Fatal("db's firewall never went to audit")
	}
	if s, err := l.read(l.internet, db); err != nil || s != "db says hi" {
		t.Fatalf("audit mode dropped a connection: %q %v", s, err)
	}
	waitRecord(t, l, "the would-drop connection", func(r flow.Record) bool {
		return r.Unmapped.ReasonCode == flow.ReasonFirewall && r.Verdict() == flow.VerdictAudit && r.Unmapped.Node == "db" &&
			r.DstEndpoint.Port == isoDB && r.SrcEndpoint.IP == l.internet.Addr.String()
	})

	t.Log("nothing outside the inet moat table changed")
	if after := foreignRules(t, l.db.NS); after != dbBefore {
		t.Errorf("db's other tables changed:\n%s\n---\n%s", dbBefore, after)
	}
}
