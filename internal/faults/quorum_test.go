package faults

import (
	"strings"
	"testing"
	"time"

	"moat/internal/store/storetest"
)

// TestEtcdQuorumLoss takes two of three etcd members away from a running
// control plane: admin writes and reads fail within their deadline naming
// the cause (a read too, since its audit entry goes to the same etcd), the
// server stays up, and everything works again once quorum returns.
func TestEtcdQuorumLoss(t *testing.T) {
	etcd := storetest.StartEtcdCluster(t, 3)
	c := newMoatCluster(t, etcd, 1)
	s := c.servers[0]
	env := append(c.via(s), "MOAT_SERVER="+s.listen)
	mustMoat(t, env, "svc", "register", "--node", "n1", "--name", "api", "--port", "8080")

	t.Log("two of three members gone: no quorum")
	etcd[1].Stop()
	etcd[2].Stop()

	start := time.Now()
	_, errOut, err := moat(t, env, "svc", "register", "--node", "n1", "--name", "db", "--port", "5432", "--timeout", "20s")
	took := time.Since(start)
	if err == nil {
		t.Fatal("a write succeeded without etcd quorum")
	}
	if !strings.Contains(errOut, "control-plane store unavailable: no etcd quorum") {
		t.Fatalf("write without quorum: %v: %q, want the named cause", err, errOut)
	}
	t.Logf("write refused after %s: %s", took.Round(time.Millisecond), strings.TrimSpace(errOut))

	// A read is answered only once its audit entry is durable, and the
	// cluster's audit log is in etcd too: it is refused, naming the cause.
	_, errOut, err = moat(t, env, "svc", "list", "--timeout", "20s")
	if err == nil {
		t.Fatal("an admin read was answered while its audit entry could not be written")
	}
	if !strings.Contains(errOut, "control-plane store unavailable: no etcd quorum") {
		t.Fatalf("read without quorum: %v: %q, want the named cause", err, errOut)
	}
	t.Logf("read without quorum: %s", strings.TrimSpace(errOut))
	if s.p.exited() {
		t.Fatalf("the server stopped when the store lost quorum:\n%s", s.p.out.String())
	}

	t.Log("quorum back: writes succeed again, reads are current")
	etcd[1].Restart(t)
	waitForDetail(t, "a write after quorum returned", func() (bool, string) {
		_, errOut, err := moat(t, env, "svc", "register", "--node", "n1", "--name", "db", "--port", "5432")
		return err == nil, errOut
	})
	out, errOut, err := moat(t, env, "svc", "list")
	if err != nil || !strings.Contains(out, "db") || strings.Contains(errOut, "warning") {
		t.Fatalf("read after quorum returned: %v: %s %s", err, out, errOut)
	}
}

// TestEtcdQuorumLossNamedAtOnce: the cause is named as soon as the
// majority is gone, not only once the survivor noticed: with a long
// election timeout the last member still reports the old leader for
// half a minute, and a write refused meanwhile says "no etcd quorum",
// not that etcd was slow, naming the members that are gone.
func TestEtcdQuorumLossNamedAtOnce(t *testing.T) {
	etcd := storetest.StartEtcdCluster(t, 3, "--heartbeat-interval", "500", "--election-timeout", "30000")
	c := newMoatCluster(t, etcd, 1)
	s := c.servers[0]
	env := append(c.via(s), "MOAT_SERVER="+s.listen)
	mustMoat(t, env, "svc", "register", "--node", "n1", "--name", "api", "--port", "8080")

	etcd[1].Stop()
	etcd[2].Stop()
	_, errOut, err := moat(t, env, "svc", "register", "--node", "n1", "--name", "db", "--port", "5432", "--timeout", "20s")
	if err == nil {
		t.Fatal("a write succeeded without etcd quorum")
	}
	if !strings.Contains(errOut, "control-plane store unavailable: no etcd quorum (1 of 3 members reachable; ") {
		t.Fatalf("write without quorum: %v: %q, want the named cause", err, errOut)
	}
	for _, m := range etcd[1:] {
		if !strings.Contains(errOut, m.URL+" (connection refused)") {
			t.Fatalf("write without quorum: %q does not name %s as down", errOut, m.URL)
		}
	}
}

// TestEtcdQuorumLossWatchRefused: an agent that (re)connects while the
// store has no quorum is refused its watch, naming the cause, rather than
// given a snapshot from the surviving member's copy (which may be behind
// the cluster and would take back revocations the agent holds); it keeps
// running on the state it cached, and follows the watch again once quorum
// returns.
func TestEtcdQuorumLossWatchRefused(t *testing.T) {
	etcd := storetest.StartEtcdCluster(t, 3)
	c := newMoatCluster(t, etcd, 1)
	s := c.servers[0]
	mustMoat(t, append(c.via(s), "MOAT_SERVER="+s.listen), "svc", "register", "--node", "n1", "--name", "api", "--port", "8080")
	a := c.startAgent("n1")
	c.watchedServer(1)

	etcd[1].Stop()
	etcd[2].Stop()
	a.p.kill()
	var again []string
	for args, i := a.p.cmd.Args[1:], 0; i < len(args); i++ {
		if args[i] == "--join" {
			i++
			continue
		}
		again = append(again, args[i])
	}
	a.p = start(t, "agent n1 (again)", nil, moatBin, again...)
	waitForDetail(t, "the agent's watch refused, naming the lost quorum", func() (bool, string) {
		out := a.p.out.String()
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "watch stream failed") && strings.Contains(line, "no etcd quorum (1 of 3 members reachable") {
				return true, line
			}
		}
		return false, lastLine(out)
	})
	if s.p.exited() || a.p.exited() {
		t.Fatalf("a process stopped while the store had no quorum (server exited: %v, agent exited: %v)", s.p.exited(), a.p.exited())
	}

	t.Log("quorum back: the agent follows the watch again")
	etcd[1].Restart(t)
	c.watchedServer(1)
}

// lastLine is the last non-empty line of out.
func lastLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}
