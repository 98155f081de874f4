package faults

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/flow"
	"moat/internal/store/storetest"
)

// traffic sends requests through the mesh without pause until stopped,
// each on a new connection, and counts what failed.
type traffic struct {
	ok, failed atomic.Int64
	mu         sync.Mutex // guards errs
	errs       []string
	stop       chan struct{}
	done       chan struct{}
}

func startTraffic(client *http.Client, url string) *traffic {
	tr := &traffic{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(tr.done)
		for {
			select {
			case <-tr.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			resp, err := client.Get(url)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(b) != "api ok" {
					err = fmt.Errorf("answer %d %q", resp.StatusCode, b)
				}
			}
			if err != nil {
				tr.failed.Add(1)
				tr.mu.Lock()
				if len(tr.errs) < 20 {
					tr.errs = append(tr.errs, time.Now().Format("15:04:05.000")+" "+err.Error())
				}
				tr.mu.Unlock()
				continue
			}
			tr.ok.Add(1)
		}
	}()
	return tr
}

// check fails the test if any request failed so far.
func (tr *traffic) check(t *testing.T, step string) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if n := tr.failed.Load(); n > 0 {
		t.Fatalf("%s: %d of %d requests failed: %s", step, n, n+tr.ok.Load(), strings.Join(tr.errs, "; "))
	}
	t.Logf("%s: %d requests, none failed", step, tr.ok.Load())
}

// advance waits until at least n more requests succeeded.
func (tr *traffic) advance(t *testing.T, step string, n int64) {
	t.Helper()
	from := tr.ok.Load() + tr.failed.Load()
	waitFor(t, step+": traffic flowing", func() bool { return tr.ok.Load()+tr.failed.Load() >= from+n })
	tr.check(t, step)
}

// phaseAfter is what "moat ca show" says after each rotation step.
var phaseAfter = map[string]string{"prepare": "prepared", "activate": "active", "retire": "stable"}

// svidIntermediate returns the intermediate certificate (DER) of the SVID
// of service cached in an agent's or gateway's data directory, or nil.
func svidIntermediate(t *testing.T, dataDir, service string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "svids", service, api.CertFile))
	if err != nil {
		return nil
	}
	_, rest := pem.Decode(b)
	inter, _ := pem.Decode(rest)
	if inter == nil {
		return nil
	}
	return inter.Bytes
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// TestHighAvailability is the control plane's HA acceptance: three moat
// servers on a three-member etcd cluster, agents given every server,
// steady traffic through the mesh, and the faults an operator meets.
func TestHighAvailability(t *testing.T) {
	etcd := storetest.StartEtcdCluster(t, 3)
	c := newMoatCluster(t, etcd, 3, "--svid-ttl", "30s")
	t.Logf("servers %s on etcd %v", c.addrs(), endpoints(etcd))

	t.Log("every server lists the three members")
	for _, s := range c.servers {
		waitForDetail(t, "three members through "+s.name, func() (bool, string) {
			out, errOut, err := moat(t, c.via(s), "server", "members")
			return err == nil && strings.Count(out, "alive") == 3, out + errOut
		})
	}

	t.Log("a second init against the cluster's etcd is refused with a clear answer")
	_, errOut, err := moat(t, nil, "server", "init", "--config", c.servers[1].config, "--trust-domain", "example.org")
	if err == nil || !strings.Contains(errOut, "already holds a moat control plane") {
		t.Fatalf("second init: %v\n%s", err, errOut)
	}
	if _, err := os.Stat(c.servers[1].data + ".admin"); !os.IsNotExist(err) {
		t.Fatalf("the refused init left admin credentials behind: %v", err)
	}

	app, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	appPort := app.Addr().(*net.TCPAddr).Port
	go http.Serve(app, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "api ok") }))
	local := freePorts(t, 2)
	env := c.env()
	mustMoat(t, env, "svc", "register", "--node", "n1", "--name", "frontend", "--port", fmt.Sprint(local[1]), "--upstream", fmt.Sprintf("api:%d", local[0]))
	mustMoat(t, env, "svc", "register", "--node", "n2", "--name", "api", "--port", fmt.Sprint(appPort))
	mustMoat(t, env, "svc", "register", "--node", "n2", "--name", "batch", "--port", "1")
	policy := filepath.Join(c.dir, "intentions.yaml")
	os.WriteFile(policy, []byte(fmt.Sprintf("default: deny\nrules:\n  - name: to-api\n    from: [frontend, gateway]\n    to: api\n    ports: [%d]\n", appPort)), 0o600)
	mustMoat(t, env, "policy", "apply", "-f", policy)
	n1, n2 := c.startAgent("n1"), c.startAgent("n2")

	target := addr(local[0])
	waitFor(t, "a request through the mesh", func() bool {
		resp, err := http.Get("http://" + target + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	plain := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	tr := startTraffic(plain, "http://"+target+"/")
	defer func() {
		close(tr.stop)
		<-tr.done
	}()
	tr.advance(t, "steady traffic", 25)

	t.Log("the gateway, given every server too, carries traffic from the edge")
	edge, edgeClient, edgeMetrics := c.startGateway(appPort)
	waitFor(t, "a request through the gateway", func() bool {
		resp, err := edgeClient.Get("https://" + edge + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	gw := startTraffic(edgeClient, "https://"+edge+"/")
	defer func() {
		close(gw.stop)
		<-gw.done
	}()
	gw.advance(t, "edge traffic", 10)

	t.Log("kill the server the agents and the gateway follow")
	watched := c.watchedServer(3)
	renewals := func(a *moatAgent) float64 {
		return metric(t, a.metrics, fmt.Sprintf("moat_svid_renewals_total{node=%q}", a.node))
	}
	before1, before2 := renewals(n1), renewals(n2)
	var renewals1AtActivate, renewals2AtActivate float64
	var oldIntermediate []byte // the intermediate that signed SVIDs before the new root
	watched.p.kill()
	t.Logf("killed %s (%s)", watched.name, watched.listen)
	next := c.watchedServer(3)
	if next == watched {
		t.Fatal("the agents still follow the killed server")
	}
	t.Logf("agents and gateway now follow %s", next.name)
	waitFor(t, "SVID renewals after the kill", func() bool {
		return renewals(n1) > before1 && renewals(n2) > before2
	})
	shipped := func() float64 {
		return metricSum(t, n1.metrics, "moat_flow_shipper_sent_records_total") + metricSum(t, n2.metrics, "moat_flow_shipper_sent_records_total")
	}
	stored := metricSum(t, next.metrics, "moat_flow_store_stored_records_total")
	sent := shipped()
	waitFor(t, "flow records shipped to and stored by the server the agents moved to", func() bool {
		return shipped() > sent && metricSum(t, next.metrics, "moat_flow_store_stored_records_total") > stored
	})
	tr.advance(t, "after killing "+watched.name, 25)
	gw.advance(t, "edge traffic after killing "+watched.name, 10)

	t.Log("the CLI fails over too: the killed server first in its list, or a name with several addresses")
	mustMoat(t, []string{"MOAT_SERVER=" + watched.listen + "," + next.listen, "MOAT_ADMIN_DIR=" + c.admin}, "svc", "list")
	_, port, _ := net.SplitHostPort(next.listen)
	mustMoat(t, []string{"MOAT_SERVER=localhost:" + port, "MOAT_ADMIN_DIR=" + c.admin}, "svc", "list")

	t.Log("a revocation issued through a server the agents do not follow reaches them")
	var other *moatServer
	for _, s := range c.servers {
		if s != watched && s != next {
			other = s
		}
	}
	reached := func(a *moatAgent) bool {
		b, _ := os.ReadFile(filepath.Join(a.data, "state.json"))
		return strings.Contains(string(b), "spiffe://example.org/svc/batch")
	}
	if reached(n1) || reached(n2) {
		t.Fatal("the agents' state names svc/batch before its revocation: the check below proves nothing")
	}
	// The call itself, timed from the test (a CLI process's start would
	// dwarf what is measured).
	admin, err := api.NewClientFromDir(other.listen, c.admin)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	issued := time.Now()
	if err := admin.Call(context.Background(), http.MethodPost, api.PathRevoke, api.RevokeRequest{Service: "batch"}, nil); err != nil {
		t.Fatal(err)
	}
	answered := time.Since(issued)
	waitFor(t, "the revocation at both agents", func() bool { return reached(n1) && reached(n2) })
	t.Logf("revocation through %s: answered in %s, in both agents' state %s after the call was sent",
		other.name, answered.Round(time.Millisecond), time.Since(issued).Round(time.Millisecond))

	t.Log("kill the etcd leader: everything continues")
	lead := leader(t, etcd)
	lead.Stop()
	t.Logf("killed etcd %s, the leader", lead.Name)
	for _, s := range c.servers {
		if s == watched {
			continue
		}
		if out := mustMoat(t, c.via(s), "svc", "list"); !strings.Contains(out, "frontend") {
			t.Fatalf("svc list through %s: %s", s.name, out)
		}
	}
	mustMoat(t, c.via(next), "svc", "register", "--node", "n2", "--name", "reports", "--port", "2")
	tr.advance(t, "with one etcd member down", 25)

	t.Log("the killed server comes back and rejoins with what etcd holds")
	c.start(watched)

	t.Log("rotate the data key through one server; every other server reads the state at once")
	rot := c.servers[1]
	out := mustMoat(t, c.via(rot), "keys", "rotate")
	t.Logf("keys rotate through %s: %s", rot.name, out)
	for _, s := range c.servers {
		if out := mustMoat(t, c.via(s), "svc", "list"); !strings.Contains(out, "reports") {
			t.Fatalf("svc list through %s after the rotation: %s", s.name, out)
		}
		mustMoat(t, c.via(s), "token", "create", "--node", "later-"+s.name)
	}
	primary := func(s *moatServer) string {
		out := mustMoat(t, c.via(s), "keys", "status", "--output", "json")
		i := strings.Index(out, `"primary":`)
		if i < 0 {
			t.Fatalf("keys status through %s: %s", s.name, out)
		}
		return strings.SplitN(out[i:], ",", 2)[0]
	}
	want := primary(rot)
	for _, s := range c.servers {
		if got := primary(s); got != want {
			t.Fatalf("keys status through %s: %s, through %s: %s", s.name, got, rot.name, want)
		}
	}
	waitForDetail(t, "every server's local copy of the cluster keyring refreshed", func() (bool, string) {
		first, _ := os.ReadFile(filepath.Join(c.servers[0].data, "keyring.json"))
		for _, s := range c.servers[1:] {
			b, _ := os.ReadFile(filepath.Join(s.data, "keyring.json"))
			if len(first) == 0 || string(b) != string(first) {
				return false, s.name + "'s keyring.json differs from " + c.servers[0].name + "'s"
			}
		}
		return true, ""
	})
	tr.advance(t, "after the key rotation", 25)

	t.Log("flows answer for the whole cluster through any server, the one no agent ships to included")
	cut := time.Now().Add(-time.Second)
	// The agents and the gateway ship their records in batches, and each
	// server answers from what has arrived when it is asked: wait until
	// each has delivered what it had spooled by now (its records stamped
	// before the cut among them), so that the three answers are over the
	// same records.
	for _, p := range []struct{ name, metrics string }{{"n1", n1.metrics}, {"n2", n2.metrics}, {"the gateway", edgeMetrics}} {
		spooled := metricSum(t, p.metrics, "moat_flow_shipper_spooled_records_total")
		if spooled < 0 {
			t.Fatalf("%s's metrics at %s do not answer", p.name, p.metrics)
		}
		waitForDetail(t, p.name+"'s records up to the cut delivered", func() (bool, string) {
			sent := metricSum(t, p.metrics, "moat_flow_shipper_sent_records_total")
			return sent >= spooled, fmt.Sprintf("%v of %v sent", sent, spooled)
		})
		t.Logf("%s: the %v records it spooled by the cut are delivered", p.name, spooled)
	}
	var counts []int
	for _, s := range c.servers {
		cl, err := api.NewClientFromDir(s.listen, c.admin)
		if err != nil {
			t.Fatal(err)
		}
		var out api.FlowRecords
		err = cl.Call(context.Background(), http.MethodGet, api.PathFlowQuery+"?"+api.FlowValues(flow.Filter{Until: cut, Limit: api.MaxFlowRecords}, 0).Encode(), nil, &out)
		cl.Close()
		if err != nil {
			t.Fatalf("flows through %s: %v", s.name, err)
		}
		if len(out.Missing) > 0 || len(out.Servers) != 3 || out.Truncated {
			t.Fatalf("flows through %s: servers %v, missing %v, truncated %v", s.name, out.Servers, out.Missing, out.Truncated)
		}
		counts = append(counts, len(out.Records))
	}
	if counts[0] == 0 || counts[0] != counts[1] || counts[1] != counts[2] {
		t.Fatalf("records up to %s through s1, s2, s3: %v; want the same, not none", cut.Format(time.RFC3339Nano), counts)
	}
	own := metricSum(t, other.metrics, "moat_flow_store_stored_records_total")
	if float64(counts[0]) <= own {
		t.Fatalf("%s answered %d records and stores %v itself: its answer holds nothing from the other servers", other.name, counts[0], own)
	}
	t.Logf("%d records through each of the three servers (%s stores %v of them)", counts[0], other.name, own)

	t.Log("rotate the root through one server, step by step; admin calls through every other server work at each step")
	for _, step := range []string{"prepare", "activate", "retire"} {
		args := []string{"ca", "rotate", step}
		if step == "retire" {
			waitFor(t, "SVID renewals under the new root", func() bool {
				return renewals(n1) >= renewals1AtActivate+2 && renewals(n2) >= renewals2AtActivate+2
			})
			// Retiring distrusts what the old root signed: every SVID that
			// carries traffic (the gateway's too) must have been renewed
			// under the new one first, or its tunnels are cut mid-request.
			for _, h := range []struct{ data, svc string }{{n1.data, "frontend"}, {n2.data, "api"}, {filepath.Join(c.dir, "edge"), "gateway"}} {
				waitForDetail(t, h.svc+"'s SVID under the new root", func() (bool, string) {
					inter := svidIntermediate(t, h.data, h.svc)
					return inter != nil && !bytes.Equal(inter, oldIntermediate), fmt.Sprintf("intermediate %x…", inter[:min(len(inter), 8)])
				})
			}
			// A tunnel keeps the SVIDs of its handshake: one frontend or the
			// gateway opened before api's renewal under the new root still
			// carries api's old one, and retiring cuts what it carries. Each
			// calling side renews once more (new streams then go to tunnels
			// dialed to an api holding its new SVID) and the traffic, one
			// request after another, moves past the old tunnels.
			for _, h := range []struct{ data, svc string }{{n1.data, "frontend"}, {filepath.Join(c.dir, "edge"), "gateway"}} {
				file := filepath.Join(h.data, "svids", h.svc, api.CertFile)
				held, _ := os.ReadFile(file)
				waitFor(t, h.svc+" renewed once more, every peer holding its new SVID", func() bool {
					b, err := os.ReadFile(file)
					return err == nil && len(b) > 0 && !bytes.Equal(b, held)
				})
			}
			tr.advance(t, "the mesh's traffic on tunnels opened after the renewals", 5)
			gw.advance(t, "the edge traffic on tunnels opened after the renewals", 5)
			args = append(args, "--force")
		}
		out := mustMoat(t, c.via(rot), args...)
		t.Logf("ca rotate %s through %s: %s", step, rot.name, firstLine(out))
		if step == "activate" {
			renewals1AtActivate, renewals2AtActivate = renewals(n1), renewals(n2)
			if oldIntermediate = svidIntermediate(t, n1.data, "frontend"); oldIntermediate == nil {
				t.Fatal("no intermediate in frontend's cached SVID chain")
			}
			// The MFA session was issued under the old root, which retire
			// ends: the administrator logs in again under the new one.
			c.mfa.login(t, rot.listen)
		}
		for _, s := range c.servers {
			if s == rot {
				continue
			}
			waitForDetail(t, "ca show through "+s.name+" after "+step, func() (bool, string) {
				out, errOut, err := moat(t, c.via(s), "ca", "show")
				return err == nil && strings.Contains(out, "phase: "+phaseAfter[step]), errOut + firstLine(out)
			})
			mustMoat(t, c.via(s), "svc", "list")
		}
		tr.advance(t, "after ca rotate "+step, 25)
	}

	t.Log("the agents' node certificates, issued under the retired root, were replaced by re-attestation with their node keys")
	for _, a := range []*moatAgent{n1, n2} {
		series := fmt.Sprintf("moat_agent_reattestations_total{method=%q,node=%q}", "node-key", a.node)
		waitForDetail(t, a.node+" re-attested", func() (bool, string) {
			v := metric(t, a.metrics, series)
			return v >= 1, fmt.Sprintf("%s = %v", series, v)
		})
	}
	tr.advance(t, "after the re-attestations", 25)

	t.Log("one audit log for the cluster: it holds entries written through every server and verifies through each")
	written := map[string]int{}
	admin1, err := api.NewClientFromDir(c.servers[0].listen, c.admin)
	if err != nil {
		t.Fatal(err)
	}
	defer admin1.Close()
	for from := int64(0); ; {
		var page api.AuditEntries
		if err := admin1.Call(context.Background(), http.MethodGet, fmt.Sprintf("%s?from=%d", api.PathAudit, from), nil, &page); err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Entries {
			written[e.Entry.Detail["server"]]++
		}
		from += int64(len(page.Entries))
		if len(page.Entries) == 0 || from >= page.Size {
			break
		}
	}
	for _, s := range c.servers {
		if written[s.name] == 0 {
			t.Fatalf("no audit entry written through %s: %v", s.name, written)
		}
	}
	t.Logf("audit entries by the server that wrote them: %v", written)
	for _, s := range c.servers {
		out := mustMoat(t, c.via(s), "audit", "verify")
		t.Logf("audit verify through %s: %s", s.name, firstLine(out))
	}
	tr.check(t, "end")
	gw.check(t, "edge traffic at the end")
}
