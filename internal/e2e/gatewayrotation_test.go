package e2e

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/gateway"
	"moat/internal/server"
)

// connApp is an HTTP app that answers each request with the address of
// the connection it came on (the destination agent opens one per mesh
// stream) and notes the connections closed.
type connApp struct {
	port   int
	mu     sync.Mutex
	closed map[string]bool
}

func startConnApp(t *testing.T) *connApp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	app := &connApp{port: ln.Addr().(*net.TCPAddr).Port, closed: map[string]bool{}}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.RemoteAddr) }),
		ConnState: func(c net.Conn, st http.ConnState) {
			if st == http.StateClosed || st == http.StateHijacked {
				app.mu.Lock()
				app.closed[c.RemoteAddr().String()] = true
				app.mu.Unlock()
			}
		},
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return app
}

func (a *connApp) isClosed(conn string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.closed[conn]
}

// TestGatewayUpstreamsFollowRootRotation: the edge gateway keeps its
// upstream connections (streams of a mesh tunnel opened with its SVID)
// alive between requests. Once its SVID is renewed under a new root, the
// next request goes over a new connection, dialed with the new SVID, and
// the idle old one is closed, so that `moat ca rotate retire --force`,
// which cuts what the old root signed, fails no request.
func TestGatewayUpstreamsFollowRootRotation(t *testing.T) {
	c := newCluster(t, func(ic *server.InitConfig) { ic.NodeTTL = time.Hour })
	app := startConnApp(t)
	c.register(api.Registration{Name: "api", Node: "n2", Port: app.port})
	c.register(api.Registration{Name: "gateway", Node: "edge", Port: freePort(t)})
	doc := "default: deny\nrules:\n  - name: edge-to-api\n    from: [gateway]\n    to: api\n    ports: [" + itoa(app.port) + "]\n"
	if err := c.call(http.MethodPost, api.PathPolicy, api.PolicyRequest{YAML: doc}, nil); err != nil {
		t.Fatal(err)
	}
	edge, n2 := c.startAgent("edge"), c.startAgent("n2")
	// Each upstream connection the gateway dials, with the serial of the
	// SVID it called as.
	var mu sync.Mutex
	var dials []string
	var watching <-chan struct{} // the change the gateway waits for
	gw := startGateway(t, c, edge, app.port, func(cfg *gateway.Config) {
		changed := cfg.CredentialsChanged
		cfg.CredentialsChanged = func() <-chan struct{} {
			ch := changed()
			mu.Lock()
			watching = ch
			mu.Unlock()
			return ch
		}
		dial := cfg.Dial
		cfg.Dial = func(ctx context.Context, service string, port int) (net.Conn, error) {
			mu.Lock()
			dials = append(dials, svidOf(edge, "gateway").SerialNumber.String())
			mu.Unlock()
			return dial(ctx, service, port)
		}
	})
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: gw.roots}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	get := func(step string) (string, error) {
		resp, err := client.Get("https://" + gw.addr + "/")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			return "", &stepError{step, resp.Status, string(b), err}
		}
		return string(b), nil
	}
	must := func(step string) string {
		t.Helper()
		conn, err := get(step)
		if err != nil {
			t.Fatalf("request %s: %v", step, err)
		}
		return conn
	}
	// Every upstream connection the app saw before the renewal: all of
	// them dialed with the old SVID.
	seen := map[string]bool{}
	var first string
	eventually(t, "a request through the gateway", func() bool {
		var err error
		first, err = get("first")
		return err == nil
	})
	seen[first] = true
	// The gateway keeps an upstream connection alive between requests
	// (reuse races a fresh dial in http.Transport: a few tries).
	reused := false
	for i := 0; i < 10 && !reused; i++ {
		conn := must("again")
		reused = seen[conn]
		seen[conn] = true
	}
	if !reused {
		t.Fatalf("no upstream connection kept alive over 10 requests: %v", seen)
	}
	oldSerial := svidOf(edge, "gateway").SerialNumber.String()

	t.Log("the root rotates and the gateway's SVID is renewed under the new one")
	rotate := func(step string, force bool) {
		t.Helper()
		if err := c.call(http.MethodPost, api.PathCARotate, api.CARequest{Step: step, Force: force}, nil); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	rotate("prepare", false)
	c.settle("two roots at both agents", func() bool { return rootsAt(edge) == 2 && rootsAt(n2) == 2 })
	seen[must("prepared")] = true
	// The administrator takes the new bundle, and after activate moves
	// its certificate to the new root.
	admin, err := api.NewAdminClient(c.addr, c.adminDir)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.SyncTrust(context.Background(), c.clk.Now()); err != nil {
		t.Fatal(err)
	}
	rotate("activate", false)
	if _, err := admin.SyncTrust(context.Background(), c.clk.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Renew(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	c.clk.Advance(35 * time.Minute) // past half an SVID's life: everything renews
	c.settle("SVIDs under the new root", func() bool {
		l1, l2 := svidOf(edge, "gateway"), svidOf(n2, "api")
		return l1 != nil && l2 != nil && c.clk.Now().Sub(l1.NotBefore) < 10*time.Minute && c.clk.Now().Sub(l2.NotBefore) < 10*time.Minute
	})
	caughtUp := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return watching == edge.SVIDChanged()
	}
	eventually(t, "the gateway waiting for the next change of its credentials", caughtUp)
	newSerial := svidOf(edge, "gateway").SerialNumber.String()
	if newSerial == oldSerial {
		t.Fatal("the gateway's SVID was not renewed")
	}
	mu.Lock()
	before := len(dials)
	mu.Unlock()
	// A request goes over a connection dialed since, with the new SVID.
	check := func(step string) string {
		t.Helper()
		conn := must(step)
		if seen[conn] {
			t.Fatalf("request %s went over %s, a connection dialed before the SVID changed", step, conn)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, serial := range dials[before:] {
			if serial != newSerial {
				t.Fatalf("the gateway dialed with SVID %s after it changed to %s", serial, newSerial)
			}
		}
		return conn
	}
	check("after the renewal")
	if !slices.Contains(dials, oldSerial) {
		t.Fatalf("the gateway dialed with %v, never with the old SVID %s", dials, oldSerial)
	}
	eventually(t, "the idle connections dialed with the old SVID closed", func() bool {
		for conn := range seen {
			if !app.isClosed(conn) {
				return false
			}
		}
		return true
	})
	check("again after the renewal")

	t.Log("retire --force: the old root leaves the bundles, cutting what it signed; no request fails")
	c.repinAdmin() // a new session, under the new root
	rotate("retire", true)
	c.settle("one root at both agents", func() bool { return rootsAt(edge) == 1 && rootsAt(n2) == 1 })
	eventually(t, "the gateway waiting for the next change of its credentials", caughtUp)
	for _, step := range []string{"retired", "retired again", "retired once more"} {
		check(step)
	}
}

// stepError is a request through the gateway that was not answered 200.
type stepError struct {
	step, status, body string
	err                error
}

func (e *stepError) Error() string {
	if e.err != nil {
		return e.step + ": " + e.status + ": " + e.err.Error()
	}
	return e.step + ": " + e.status + ": " + e.body
}
