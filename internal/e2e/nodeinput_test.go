package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/ca"
	"moat/internal/flow"
	"moat/internal/testkit"
)

// nodeClient calls the control plane with an agent's node credentials, as
// a compromised agent (or anything holding its key) would.
func (c *cluster) nodeClient(node string) *api.Client {
	c.t.Helper()
	cl, err := api.NewClientFromDir(c.addr, filepath.Join(c.dir, "agent-"+node, "node"))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

func flowRecord(uid, src, dst string, bytes int64) flow.Record {
	r := flow.Header(flow.ClassNetworkActivity, flow.ActivityClose, "moat-mesh", time.Now())
	r.Metadata.UID = uid
	r.SrcEndpoint = &flow.Endpoint{UID: "spiffe://example.org/svc/" + src, SvcName: src}
	r.DstEndpoint = &flow.Endpoint{UID: "spiffe://example.org/svc/" + dst, SvcName: dst, Port: 5432}
	r.Traffic = &flow.Traffic{Bytes: bytes}
	r.FirewallRule = &flow.Rule{Name: src + "-to-" + dst}
	r.Unmapped = &flow.Moat{Verdict: flow.VerdictAllow}
	return r
}

// TestNodeCannotForgeOrFloodFlows: a node stores only records about the
// services it runs, with a well-formed account when it names one; batches
// and records over their bounds are refused
// before they are decoded deeply; a node over its rate is slowed alone.
func TestNodeCannotForgeOrFloodFlows(t *testing.T) {
	c := newCluster(t)
	c.register(api.Registration{Name: "api", Node: "n1", Port: 8080})
	c.register(api.Registration{Name: "db", Node: "n2", Port: 5432})
	for _, n := range []string{"n1", "n2", "n3"} {
		c.startAgent(n)
	}
	n1, n3 := c.nodeClient("n1"), c.nodeClient("n3")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stored := func(uid string) bool {
		recs, err := c.flows.Query(ctx, flow.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.Metadata.UID == uid {
				return true
			}
		}
		return false
	}

	t.Log("n3 runs neither api nor db: its api → db record is refused")
	var ack api.FlowAck
	forged := flowRecord("forged-1", "api", "db", 999999999)
	if err := n3.Call(ctx, http.MethodPost, api.PathFlows, []flow.Record{forged}, &ack); err != nil {
		t.Fatal(err)
	}
	if ack.Stored != 0 || ack.Refused != 1 || stored("forged-1") {
		t.Fatalf("ack %+v: a node stored a flow about services it does not run", ack)
	}
	t.Log("a SPIFFE ID and a service name that disagree are refused too")
	mixed := flowRecord("forged-2", "api", "db", 1)
	mixed.SrcEndpoint.SvcName = "db"
	if err := n1.Call(ctx, http.MethodPost, api.PathFlows, []flow.Record{mixed}, &ack); err != nil || ack.Refused != 1 {
		t.Fatalf("ack %+v, %v: want the record refused", ack, err)
	}
	t.Log("nor may n3 name api and db by their endpoints' names alone: a record is queried and drawn under that name")
	byName := flowRecord("forged-3", "api", "db", 999999999)
	byName.SrcEndpoint = &flow.Endpoint{Name: "api", IP: "10.0.0.1"}
	byName.DstEndpoint = &flow.Endpoint{Name: "db", IP: "10.0.0.2", Port: 5432}
	if cols := flow.ColumnsOf(&byName); cols.Src != "api" || cols.Dst != "db" {
		t.Fatalf("the record's columns %+v do not name api and db", cols)
	}
	ack = api.FlowAck{}
	if err := n3.Call(ctx, http.MethodPost, api.PathFlows, []flow.Record{byName}, &ack); err != nil || ack.Refused != 1 || stored("forged-3") {
		t.Fatalf("ack %+v, %v: a node stored a flow naming services it does not run", ack, err)
	}
	t.Log("n1 may: api is its own")
	ownByName := byName
	ownByName.Metadata.UID = "own-by-name-1"
	if err := n1.Call(ctx, http.MethodPost, api.PathFlows, []flow.Record{ownByName}, &ack); err != nil || ack.Stored != 1 || !stored("own-by-name-1") {
		t.Fatalf("ack %+v, %v: want n1's record naming its own api stored", ack, err)
	}

	t.Log("an account that is no account ID is refused: detection keys an administrator's refusals by it")
	badAcct := flowRecord("bad-account-1", "api", "db", 1)
	badAcct.Unmapped.Account = "alice (account 1)"
	ack = api.FlowAck{}
	if err := n1.Call(ctx, http.MethodPost, api.PathFlows, []flow.Record{badAcct}, &ack); err != nil || ack.Refused != 1 || stored("bad-account-1") {
		t.Fatalf("ack %+v, %v: want the record with a malformed account refused", ack, err)
	}

	t.Log("n1's own record is stored, and an oversized one beside it is left out")
	big := flowRecord("big-1", "api", "db", 1)
	big.Message = strings.Repeat("x", 100<<10)
	if err := n1.Call(ctx, http.MethodPost, api.PathFlows, []flow.Record{flowRecord("own-1", "api", "db", 42), big}, &ack); err != nil {
		t.Fatal(err)
	}
	if ack.Stored != 1 || ack.Refused != 1 || !stored("own-1") || stored("big-1") {
		t.Fatalf("ack %+v: want own-1 stored and the 100 KiB record refused", ack)
	}

	t.Log("a batch over the byte bound is refused whole, before it is decoded")
	huge := flowRecord("huge-1", "api", "db", 1)
	huge.Message = strings.Repeat("y", 9<<20)
	err := n1.Call(ctx, http.MethodPost, api.PathFlows, []flow.Record{huge}, &ack)
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("a 9 MiB batch: %v, want 413", err)
	}

	t.Log("a node sending batch after batch is slowed; another node is not")
	limited := false
	for i := 0; i < 400 && !limited; i++ {
		err := n3.Call(ctx, http.MethodPost, api.PathFlows, []flow.Record{}, &ack)
		if errors.As(err, &se) && se.Code == http.StatusTooManyRequests {
			limited = true
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if !limited {
		t.Fatal("400 batches in a row and no 429")
	}
	if err := n1.Call(ctx, http.MethodPost, api.PathFlows, []flow.Record{flowRecord("own-2", "api", "db", 1)}, &ack); err != nil || ack.Stored != 1 {
		t.Fatalf("n1 while n3 is limited: %+v, %v", ack, err)
	}
}

// TestRenewValidatesAndAuditsMeshAddr: a node cannot point its peers at a
// metadata service or at garbage; a valid new address is audited.
func TestRenewValidatesAndAuditsMeshAddr(t *testing.T) {
	c := newCluster(t)
	c.startAgent("n1")
	n1 := c.nodeClient("n1")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"not a host:port <script>", "169.254.169.254:80", "[fe80::1%eth0]:80", "0.0.0.0:443", "224.0.0.1:80", "host:0", "host:99999", "exa mple.org:80"} {
		err := n1.Call(ctx, http.MethodPost, api.PathNodeRenew, api.RenewRequest{CSR: csr, MeshAddr: bad}, nil)
		if !errors.Is(err, api.ErrInvalid) {
			t.Errorf("mesh_addr %q: %v, want 400", bad, err)
		}
	}
	var nodes []api.Node
	if err := c.call(http.MethodGet, api.PathNodes, nil, &nodes); err != nil || len(nodes) != 1 {
		t.Fatal(nodes, err)
	}
	if strings.Contains(nodes[0].MeshAddr, "169.254") || strings.Contains(nodes[0].MeshAddr, "script") {
		t.Fatalf("the registry took a refused address: %+v", nodes[0])
	}
	moved := "127.0.0.1:" + itoa(freePort(t))
	if err := n1.Call(ctx, http.MethodPost, api.PathNodeRenew, api.RenewRequest{CSR: csr, MeshAddr: moved}, nil); err != nil {
		t.Fatal(err)
	}
	entries, err := c.alog.Entries(0, c.alog.Size())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		if e.Entry.Action == "node.update" {
			got = append(got, e.Entry.Result+" "+e.Entry.Detail["mesh_addr"])
		}
	}
	if strings.Join(got, ",") != "pending "+moved+",ok "+moved {
		t.Fatalf("node.update entries %q, want the intent and outcome of the move to %s", got, moved)
	}
}

// TestNodeHoldsAtMostEightSVIDsPerService: root on a node asks for SVIDs
// of a service of its own, many at once, to stockpile identities: it gets
// no more than eight live ones in all (its agent's included), however the
// requests interleave, and the rest are refused as too many.
func TestNodeHoldsAtMostEightSVIDsPerService(t *testing.T) {
	c := newCluster(t)
	c.register(api.Registration{Name: "api", Node: "n1", Port: 8080})
	cfg := c.agentConfig("n1")
	a, stop := c.runAgent(cfg)
	eventually(t, "first SVID", func() bool { return svidOf(a, "api") != nil })
	stop()
	n1 := c.nodeClient("n1")
	const tries = 48
	var wg sync.WaitGroup
	var got, limited atomic.Int64
	errs := make(chan error, tries)
	for range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, csr, err := ca.NewKeyCSR()
			if err != nil {
				errs <- err
				return
			}
			var resp api.CertResponse
			err = n1.Call(t.Context(), http.MethodPost, api.PathSVID, api.SVIDRequest{Service: "api", CSR: csr}, &resp)
			var se *api.StatusError
			switch {
			case err == nil:
				got.Add(1)
			case errors.As(err, &se) && se.Code == http.StatusTooManyRequests:
				limited.Add(1)
			default:
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// The agent holds one live SVID already.
	if got.Load()+1 > 8 || got.Load()+limited.Load() != tries {
		t.Fatalf("of %d SVID requests sent at once, %d were answered and %d refused as too many: the node holds %d live SVIDs of api, want at most 8", tries, got.Load(), limited.Load(), got.Load()+1)
	}
	t.Logf("%d answered, %d refused", got.Load(), limited.Load())
}

// watchStreams is the server's moat_server_watch_streams.
func (c *cluster) watchStreams() int {
	c.t.Helper()
	var b strings.Builder
	if err := c.reg.WriteText(&b); err != nil {
		c.t.Fatal(err)
	}
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "moat_server_watch_streams "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				c.t.Fatalf("%q: %v", line, err)
			}
			return n
		}
	}
	c.t.Fatal("no moat_server_watch_streams")
	return 0
}

// TestNodeWatchStreamsBounded: root on a node opens watch streams with
// its node certificate, one after another, each a subscription the
// server feeds on every change: the server keeps no more than four of
// one node's at once, ending the oldest for a new one, so the node
// cannot make the control plane carry thousands; and its own agent,
// whose stream was one of those ended, follows again.
func TestNodeWatchStreamsBounded(t *testing.T) {
	c := newCluster(t)
	c.register(api.Registration{Name: "api", Node: "n1", Port: 8080})
	a := c.startAgent("n1")
	eventually(t, "first SVID", func() bool { return svidOf(a, "api") != nil })
	n1 := c.nodeClient("n1")
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	const opened = 24
	for range opened {
		first := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			_ = n1.Watch(ctx, time.Minute, func(api.Update) error {
				once.Do(func() { close(first) })
				return nil
			})
		}()
		select {
		case <-first:
		case <-time.After(testkit.WaitLimit):
			t.Fatal("a watch stream's first update did not come")
		}
	}
	eventually(t, "the server to hold at most four of n1's watch streams", func() bool { return c.watchStreams() <= 4 })
	cancel()
	wg.Wait()
	t.Log("the agent follows again: a service registered on n1 now gets its SVID")
	c.register(api.Registration{Name: "late", Node: "n1", Port: 8081})
	c.settle("the late service's SVID", func() bool { return svidOf(a, "late") != nil })
}

// TestNodeHealthReportsRateLimited: an agent reports its listeners when
// they change and every five minutes, each report a store write of up to
// a megabyte. Root on a node sending them in a loop is held to a rate, as
// its flow records are: past ten at once they are refused (429), one more
// every ten seconds, and the node is slowed alone.
func TestNodeHealthReportsRateLimited(t *testing.T) {
	c := newCluster(t)
	c.register(api.Registration{Name: "api", Node: "n1", Port: 8080})
	c.register(api.Registration{Name: "db", Node: "n2", Port: 5432})
	a1, a2 := c.startAgent("n1"), c.startAgent("n2")
	eventually(t, "first SVIDs", func() bool { return svidOf(a1, "api") != nil && svidOf(a2, "db") != nil })
	n1, n2 := c.nodeClient("n1"), c.nodeClient("n2")
	report := api.NodeHealth{Services: map[string][]api.ListenerHealth{"api": {{Kind: "upstream", Addr: "127.0.0.1:1", OK: true}}}}
	ok, limited := 0, 0
	for i := range 40 {
		err := n1.Call(t.Context(), http.MethodPost, api.PathNodeHealth, report, nil)
		var se *api.StatusError
		switch {
		case err == nil:
			ok++
		case errors.As(err, &se) && se.Code == http.StatusTooManyRequests:
			limited++
		default:
			t.Fatalf("report %d: %v", i, err)
		}
	}
	if ok > 10 || ok+limited != 40 {
		t.Fatalf("of 40 health reports in a row, %d were taken and %d refused as too many: want at most 10 taken", ok, limited)
	}
	t.Log("another node is not slowed")
	other := api.NodeHealth{Services: map[string][]api.ListenerHealth{"db": {{Kind: "upstream", Addr: "127.0.0.1:2", OK: true}}}}
	if err := n2.Call(t.Context(), http.MethodPost, api.PathNodeHealth, other, nil); err != nil {
		t.Fatalf("n2's report: %v", err)
	}
	t.Log("ten seconds on, n1 reports again")
	c.clk.Advance(10 * time.Second)
	if err := n1.Call(t.Context(), http.MethodPost, api.PathNodeHealth, report, nil); err != nil {
		t.Fatalf("n1's report ten seconds later: %v", err)
	}
}
