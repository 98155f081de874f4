// Command ui measures the dashboard with a large fleet: a control plane in
// this process with a sealed flow store holding -services services and
// -edges distinct edges of traffic in the last hour, the dashboard's
// backend over the admin's credentials, and headless Chromium loading the
// service graph and applying live updates.
//
// It reports, each as the median of -runs:
//
//   - the control plane summing the window's edges (flowstore.Store.Edges, the
//     hourly rollup), beside the peer a dashboard without it would need:
//     reading every record of the window and summing them (Query + EdgeOf);
//   - the graph call over the API, and the dashboard backend's graph
//     (the API call, the registry, the layout);
//   - the page: from navigation to the graph painted, and the script's
//     render time;
//   - a live update: -update new connections stored, until the page has
//     applied them, and the script's cost of applying the delta, beside the
//     peer of drawing the whole graph again.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/flow"
	"moat/internal/flow/flowstore"
	"moat/internal/seal"
	"moat/internal/server"
	"moat/internal/store"
	"moat/internal/ui"
)

func main() {
	services := flag.Int("services", 1000, "registered services")
	edges := flag.Int("edges", 10000, "distinct edges of traffic in the window")
	perEdge := flag.Int("conns", 3, "connections per edge")
	update := flag.Int("update", 1000, "connections stored for one live update")
	runs := flag.Int("runs", 5, "runs of each measurement")
	dir := flag.String("dir", "", "work directory (default: a temporary one)")
	flag.Parse()
	if *edges > *services*(*services-1) || *services < 2 {
		log.Fatalf("-edges %d: at most services×(services-1)", *edges)
	}
	if err := run(options{services: *services, edges: *edges, perEdge: *perEdge, update: *update, runs: *runs, dir: *dir}); err != nil {
		log.Fatal(err)
	}
}

type options struct {
	services, edges, perEdge, update, runs int
	dir                                    string
}

const td = "example.org"

func name(i int) string { return fmt.Sprintf("svc-%04d", i) }

// pair is edge k: every source gets edges to sources after it, spread.
func pair(k, services int) (int, int) {
	a := k % services
	j := k / services
	return a, (a + 1 + j*13) % services
}

// connection returns the records a mesh connection leaves at its
// destination: open and close when allowed, one refusal when denied.
func connection(a, b int, deny bool, at time.Time) []flow.Record {
	ep := func(i, port int) *flow.Endpoint {
		return &flow.Endpoint{UID: "spiffe://" + td + "/svc/" + name(i), SvcName: name(i), Port: port}
	}
	conn := flow.NewID()
	mk := func(activity int, bytes int64, verdict, rule string) flow.Record {
		r := flow.Header(flow.ClassNetworkActivity, activity, "moat-mesh", at)
		r.SrcEndpoint, r.DstEndpoint = ep(a, 0), ep(b, 9000)
		r.ConnectionInfo = &flow.ConnectionInfo{UID: conn, ProtocolName: "tcp", ProtocolNum: 6, DirectionID: flow.DirectionInbound, Direction: "Inbound"}
		r.Traffic = &flow.Traffic{BytesIn: bytes / 2, BytesOut: bytes - bytes/2, Bytes: bytes}
		r.FirewallRule = &flow.Rule{Name: rule}
		r.Unmapped = &flow.Moat{Verdict: verdict, Node: "n1"}
		r.SecurityControl()
		return r
	}
	if deny {
		return []flow.Record{mk(flow.ActivityRefuse, 0, flow.VerdictDeny, "default-deny")}
	}
	return []flow.Record{mk(flow.ActivityOpen, 0, flow.VerdictAllow, "r"), mk(flow.ActivityClose, int64(200+(a*31+b)%5000), flow.VerdictAllow, "r")}
}

func run(o options) error {
	ctx := context.Background()
	w, err := os.MkdirTemp(o.dir, "uibench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(w)
	quiet := slog.New(slog.DiscardHandler)
	kek, err := seal.EnvKEK("K", func(string) (string, bool) { return seal.EncodeKEKKey(make([]byte, 32)), true })
	if err != nil {
		return err
	}
	kr, err := seal.Open(seal.Config{Dir: w, KEK: kek})
	if err != nil {
		return err
	}
	st, err := store.OpenBolt(store.BoltConfig{Dir: filepath.Join(w, "store"), Logger: quiet})
	if err != nil {
		return err
	}
	defer st.Close()
	al, err := audit.Open(audit.Config{Dir: filepath.Join(w, "audit"), Logger: quiet})
	if err != nil {
		return err
	}
	defer al.Close()
	fs, err := flowstore.OpenStore(flowstore.StoreConfig{Dir: filepath.Join(w, "flows"), Sealer: kr.AEAD(), Logger: quiet})
	if err != nil {
		return err
	}
	defer fs.Close()
	adminDir := filepath.Join(w, "admin")
	if err := server.Init(ctx, st, server.InitConfig{TrustDomain: td, AdminDir: adminDir}); err != nil {
		return err
	}
	// The fleet's registrations are set-up, not what is measured: they go
	// through the API without a second factor, which they would need by
	// default (svc.register).
	srv, err := server.New(ctx, server.Config{Listen: "127.0.0.1:0", Store: st, Audit: al, AuditLog: al, Flows: fs, Logger: quiet,
		MFA: server.MFAConfig{Off: true}})
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = srv.Run(sctx) }()
	<-srv.Ready()
	admin, err := api.NewAdminClient(srv.Addr(), adminDir)
	if err != nil {
		return err
	}
	defer admin.Close()

	// The fleet: registrations through the API (audited, as an operator
	// makes them), and an hour of traffic stored as agents ship it.
	t0 := time.Now()
	if err := register(ctx, admin, o.services); err != nil {
		return err
	}
	now := time.Now()
	var recs []flow.Record
	for k := range o.edges {
		a, b := pair(k, o.services)
		for c := range o.perEdge {
			at := now.Add(-time.Duration((k*o.perEdge+c)%3000) * time.Second)
			recs = append(recs, connection(a, b, k%10 == 0, at)...)
		}
	}
	for i := 0; i < len(recs); i += 5000 {
		if _, err := fs.Ingest(ctx, recs[i:min(i+5000, len(recs))]); err != nil {
			return err
		}
	}
	fmt.Printf("fleet: %d services, %d edges, %d records in the last hour (sealed store), set up in %v\n\n",
		o.services, o.edges, len(recs), time.Since(t0).Round(time.Millisecond))

	win := flow.Filter{Since: time.Now().Add(-time.Hour)}
	var got int
	edgesT, err := median(o.runs, func() error {
		es, err := fs.Edges(ctx, win)
		got = len(es)
		return err
	})
	if err != nil {
		return err
	}
	var peerGot int
	peerT, err := median(o.runs, func() error {
		all, err := fs.Query(ctx, win)
		if err != nil {
			return err
		}
		sum := map[[3]string]flow.Edge{}
		for i := range all {
			e := flow.EdgeOf(&all[i])
			k := [3]string{e.Src, e.Dst, e.Verdict}
			s := sum[k]
			s.Flows += e.Flows
			s.Bytes += e.Bytes
			sum[k] = s
		}
		peerGot = len(sum)
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("summing the window, median of %d runs:\n", o.runs)
	fmt.Printf("  rollup (flowstore.Store.Edges)          %8.1f ms  %d edges\n", ms(edgesT), got)
	fmt.Printf("  every record (Query + EdgeOf, peer) %7.1f ms  %d edges\n", ms(peerT), peerGot)
	fmt.Printf("  ratio peer/rollup                  %8.1fx\n\n", float64(peerT)/float64(edgesT))

	apiT, err := median(o.runs, func() error {
		var g api.FlowGraph
		return admin.Call(ctx, http.MethodGet, api.PathFlowGraph+"?"+api.FlowValues(flow.Filter{Since: time.Now().Add(-time.Hour)}, 0).Encode(), nil, &g)
	})
	if err != nil {
		return err
	}

	var who api.Whoami
	if err := admin.Call(ctx, http.MethodGet, api.PathWhoami, nil, &who); err != nil {
		return err
	}
	dash, err := ui.New(ui.Config{Control: admin, Admin: who, Server: srv.Addr(), Logger: quiet})
	if err != nil {
		return err
	}
	go func() { _ = dash.Run(sctx) }()
	// The browser signs in with the address printed (it works once); the
	// backend's graph is then asked with the browser's session, as the
	// page asks for it.
	b, err := newBrowser(ctx, o, dash)
	if err != nil {
		return err
	}
	defer b.close()
	cookies, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		return err
	}
	jar, _ := cookiejar.New(nil)
	base, _ := url.Parse("http://" + dash.Addr())
	for _, c := range cookies.Cookies {
		jar.SetCookies(base, []*http.Cookie{{Name: c.Name, Value: c.Value}})
	}
	hc := &http.Client{Jar: jar}
	var size int
	backT, err := median(o.runs, func() error {
		var b []byte
		err := get(hc, "http://"+dash.Addr()+"/api/graph?window=1h", &b)
		size = len(b)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Printf("the graph of the last hour, median of %d runs:\n", o.runs)
	fmt.Printf("  control plane API (%s)    %8.1f ms\n", api.PathFlowGraph, ms(apiT))
	fmt.Printf("  dashboard backend (/api/graph, layout) %5.1f ms  %d KB\n\n", ms(backT), size/1000)

	return page(ctx, o, b, dash, fs)
}

// browser is headless Chromium, signed in to the dashboard.
type browser struct {
	ctx   context.Context
	close func()
}

// newBrowser starts Chromium with a fresh profile and nothing that reaches
// out to the network, and opens the address the dashboard printed.
func newBrowser(ctx context.Context, o options, dash *ui.Server) (*browser, error) {
	chrome, err := exec.LookPath("chromium")
	if err != nil {
		return nil, fmt.Errorf("chromium: %w", err)
	}
	profile, err := os.MkdirTemp(o.dir, "uibench-chromium-")
	if err != nil {
		return nil, err
	}
	actx, acancel := chromedp.NewExecAllocator(ctx, chromedp.ExecPath(chrome), chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true), chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(profile), chromedp.WindowSize(1440, 900))
	bctx, bcancel := chromedp.NewContext(actx)
	b := &browser{ctx: bctx, close: func() { bcancel(); acancel(); os.RemoveAll(profile) }}
	// The browser starts on the context's first use: with bctx itself, so
	// that it lives as long as bctx.
	if err := chromedp.Do(bctx); err != nil {
		b.close()
		return nil, fmt.Errorf("start chromium: %w", err)
	}
	c, cancel := context.WithTimeout(bctx, 120*time.Second)
	defer cancel()
	if err := chromedp.Do(c, chromedp.Navigate(dash.URL()), chromedp.WaitVisible(`#graph[data-painted-at]`)); err != nil {
		b.close()
		return nil, fmt.Errorf("first load: %w", err)
	}
	return b, nil
}

// page loads the graph in Chromium and applies live updates.
func page(ctx context.Context, o options, b *browser, dash *ui.Server, fs *flowstore.Store) error {
	step := func(d time.Duration) (context.Context, context.CancelFunc) { return context.WithTimeout(b.ctx, d) }
	var loads, renders []float64
	for range o.runs {
		c, cancel := step(120 * time.Second)
		err := chromedp.Do(c, chromedp.Navigate("http://"+dash.Addr()+"/#graph"), chromedp.WaitVisible(`#graph[data-painted-at]`))
		if err == nil {
			var v []float64
			v, err = chromedp.Run(c, chromedp.Evaluate[[]float64](`[Number(graph.dataset.paintedAt), Number(graph.dataset.renderMs), Number(graph.dataset.edges)]`))
			if err == nil {
				loads, renders = append(loads, v[0]), append(renders, v[1])
			}
		}
		cancel()
		if err != nil {
			return fmt.Errorf("load: %w", err)
		}
	}
	fmt.Printf("the page (headless Chromium), median of %d loads:\n", o.runs)
	fmt.Printf("  navigation to graph painted       %8.1f ms\n", med(loads))
	fmt.Printf("  script render of the graph        %8.1f ms\n\n", med(renders))

	// Live updates: new connections on existing edges, until the page has
	// applied them.
	var e2e, apply []float64
	for r := range o.runs {
		c, cancel := step(60 * time.Second)
		before, err := chromedp.Run(c, chromedp.Evaluate[string](`graph.dataset.updates || "0"`))
		cancel()
		if err != nil {
			return err
		}
		var recs []flow.Record
		at := time.Now()
		for k := range o.update {
			a, b := pair((k*7+r)%o.edges, o.services)
			recs = append(recs, connection(a, b, false, at)...)
		}
		t0 := time.Now()
		if _, err := fs.Ingest(ctx, recs); err != nil {
			return err
		}
		c, cancel = step(60 * time.Second)
		_, err = chromedp.Run(c, chromedp.Poll[bool](fmt.Sprintf(`(graph.dataset.updates || "0") !== %q`, before), chromedp.WithPollingInterval(5*time.Millisecond)))
		if err == nil {
			var ms float64
			ms, err = chromedp.Run(c, chromedp.Evaluate[float64](`Number(graph.dataset.applyMs)`))
			apply = append(apply, ms)
		}
		cancel()
		if err != nil {
			return fmt.Errorf("live update: %w", err)
		}
		e2e = append(e2e, float64(time.Since(t0).Microseconds())/1000)
	}
	fmt.Printf("a live update of %d connections, median of %d:\n", o.update, o.runs)
	fmt.Printf("  stored to applied on the page     %8.1f ms (deltas go out once a second)\n", med(e2e))
	fmt.Printf("  script applying the delta         %8.1f ms\n", med(apply))
	fmt.Printf("  script drawing it all again (peer) %7.1f ms\n", med(renders))
	if a := med(apply); a > 0 {
		fmt.Printf("  ratio redraw/delta                %8.1fx\n", med(renders)/a)
	}
	return nil
}

func register(ctx context.Context, c *api.AdminClient, n int) error {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			reg := api.Registration{Name: name(i), Node: "n" + strconv.Itoa(i%40), Port: 9000, Labels: map[string]string{"team": "t" + strconv.Itoa(i%12)}}
			if err := c.Call(ctx, http.MethodPost, api.PathServices, reg, nil); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func get(hc *http.Client, u string, body *[]byte) error {
	resp, err := hc.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", u, resp.Status, strings.TrimSpace(string(b)))
	}
	if body != nil {
		*body = b
		if !json.Valid(b) {
			return fmt.Errorf("GET %s: not JSON", u)
		}
	}
	return nil
}

func median(n int, f func() error) (time.Duration, error) {
	var ds []time.Duration
	for range n {
		t := time.Now()
		if err := f(); err != nil {
			return 0, err
		}
		ds = append(ds, time.Since(t))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2], nil
}

func med(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
