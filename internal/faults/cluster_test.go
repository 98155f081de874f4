package faults

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"moat/internal/store/storetest"
)

// moatServer is one control-plane server of a test cluster.
type moatServer struct {
	name, data, config, listen, metrics string
	p                                   *proc
}

// moatCluster is n moat servers on one etcd cluster, made the way an
// operator makes one: init on the first, then every other server started
// with only the store settings and a copy of the KEK.
type moatCluster struct {
	t       *testing.T
	dir     string
	etcd    []*storetest.EtcdMember
	servers []*moatServer
	admin   string // the admin credentials directory
	mfa     *totpAdmin
	gateway *proc // the gateway startGateway started
}

// newMoatCluster writes each server's configuration (validated with the
// server's own --validate), inits the control plane through the first
// and starts every server. initArgs are added to server init.
func newMoatCluster(t *testing.T, etcd []*storetest.EtcdMember, n int, initArgs ...string) *moatCluster {
	t.Helper()
	return newMoatClusterStore(t, etcd, n, "", initArgs...)
}

// newMoatClusterStore is newMoatCluster with storeExtra (YAML lines at the
// store section's indent) added to each server's store section.
func newMoatClusterStore(t *testing.T, etcd []*storetest.EtcdMember, n int, storeExtra string, initArgs ...string) *moatCluster {
	t.Helper()
	c := &moatCluster{t: t, dir: t.TempDir(), etcd: etcd}
	ports := freePorts(t, 2*n)
	var eps []string
	for _, e := range endpoints(etcd) {
		eps = append(eps, fmt.Sprintf("%q", e))
	}
	for i := range n {
		s := &moatServer{name: fmt.Sprintf("s%d", i+1), listen: addr(ports[2*i]), metrics: addr(ports[2*i+1])}
		s.data = filepath.Join(c.dir, s.name)
		s.config = filepath.Join(c.dir, s.name+".yaml")
		cfg := fmt.Sprintf("data_dir: %s\nlisten: %s\nname: %s\nmetrics: %s\nstore:\n  backend: etcd\n  endpoints: [%s]\n  prefix: /moat/faults/\n  timeout: 3s\n%s",
			s.data, s.listen, s.name, s.metrics, strings.Join(eps, ", "), storeExtra)
		if err := os.WriteFile(s.config, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		if out := mustMoat(t, nil, "server", "run", "--config", s.config, "--validate"); out != "configuration OK" {
			t.Fatalf("server run --validate %s: %q", s.config, out)
		}
		c.servers = append(c.servers, s)
	}
	first := c.servers[0]
	c.admin = first.data + ".admin"
	mustMoat(t, nil, append([]string{"server", "init", "--config", first.config, "--trust-domain", "example.org"}, initArgs...)...)
	kek, err := os.ReadFile(first.data + ".kek")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range c.servers[1:] {
		// The only thing a new server is given besides the store settings.
		if err := os.WriteFile(s.data+".kek", kek, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range c.servers {
		c.start(s)
	}
	c.mfa = enrolMFA(t, c.addrs(), c.admin)
	return c
}

// start runs s and waits until it answers.
func (c *moatCluster) start(s *moatServer) {
	c.t.Helper()
	s.p = start(c.t, "server "+s.name, nil, moatBin, "server", "run", "--config", s.config)
	waitFor(c.t, "server "+s.name+" listening", func() bool {
		if s.p.exited() {
			c.t.Fatalf("server %s exited:\n%s", s.name, s.p.out.String())
		}
		conn, err := net.DialTimeout("tcp", s.listen, time.Second)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
}

// addrs lists the servers' API addresses, comma-separated, as agents and
// the CLI take them.
func (c *moatCluster) addrs() string {
	var out []string
	for _, s := range c.servers {
		out = append(out, s.listen)
	}
	return strings.Join(out, ",")
}

// env is the admin CLI's environment for the whole cluster.
func (c *moatCluster) env() []string {
	return []string{"MOAT_SERVER=" + c.addrs(), "MOAT_ADMIN_DIR=" + c.admin}
}

// via is the admin CLI's environment for one server only.
func (c *moatCluster) via(s *moatServer) []string {
	return []string{"MOAT_SERVER=" + s.listen, "MOAT_ADMIN_DIR=" + c.admin}
}

// moatAgent is a running agent process.
type moatAgent struct {
	node, data, metrics string
	p                   *proc
}

// startAgent joins node with a fresh token and runs its agent, given
// every server's address.
func (c *moatCluster) startAgent(node string) *moatAgent {
	c.t.Helper()
	ports := freePorts(c.t, 2)
	a := &moatAgent{node: node, data: filepath.Join(c.dir, "agent-"+node), metrics: addr(ports[1])}
	tok := mustMoat(c.t, c.env(), "token", "create", "--node", node)
	a.p = start(c.t, "agent "+node, nil, moatBin, "agent", "--data-dir", a.data, "--server", c.addrs(), "--node", node,
		"--join", tok, "--listen", addr(ports[0]), "--metrics", a.metrics)
	return a
}

// watchedServer returns the server whose watch streams the agents follow
// (the one with the most), waiting until the agents follow one.
func (c *moatCluster) watchedServer(streams int) *moatServer {
	c.t.Helper()
	var found *moatServer
	waitFor(c.t, fmt.Sprintf("%d watch streams on the servers", streams), func() bool {
		total, best := 0.0, -1.0
		for _, s := range c.servers {
			if s.p.exited() {
				continue
			}
			v := metric(c.t, s.metrics, "moat_server_watch_streams")
			if v > 0 {
				total += v
			}
			if v > best {
				best, found = v, s
			}
		}
		return int(total) == streams
	})
	return found
}
