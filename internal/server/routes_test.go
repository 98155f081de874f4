package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"moat/internal/api"
	"moat/internal/ca"
	"moat/internal/testkit"
)

// TestRouteTableRefusesAdminPathsOutsideAdmin: the route table panics,
// when the server builds its routes, at a pattern that could answer an
// admin path without the admin checks, and at an admin call it could not
// check (no role, no action, outside /v1/admin/, an action twice).
func TestRouteTableRefusesAdminPathsOutsideAdmin(t *testing.T) {
	s := &Server{}
	nodeH := func(http.ResponseWriter, *http.Request, *caller) {}
	adminH := func(context.Context, *caller, *http.Request) (any, string, error) { return nil, "", nil }
	for _, c := range []struct {
		what string
		reg  func(*routeTable)
	}{
		{"a public call under /v1/admin/", func(t *routeTable) { t.public("GET", api.PathWhoami, func(http.ResponseWriter, *http.Request) {}) }},
		{"a node call under /v1/admin/", func(t *routeTable) { t.node("POST", "/v1/admin/node-thing", nodeH) }},
		{"a peer call under /v1/admin/", func(t *routeTable) { t.peer("GET", "/v1/admin/peer-thing", nodeH) }},
		{"a subtree holding /v1/admin/", func(t *routeTable) { t.public("GET", "/v1/", func(http.ResponseWriter, *http.Request) {}) }},
		{"a wildcard", func(t *routeTable) { t.node("GET", "/v1/{rest...}", nodeH) }},
		{"the root", func(t *routeTable) { t.public("GET", "/", func(http.ResponseWriter, *http.Request) {}) }},
		{"no method", func(t *routeTable) { t.node("", "/v1/node/x", nodeH) }},
		{"an admin call outside /v1/admin/", func(t *routeTable) { t.admin("GET", "/v1/whoami", api.RoleViewer, "x.y", adminH) }},
		{"an admin call with no role", func(t *routeTable) { t.admin("GET", "/v1/admin/x", "", "x.y", adminH) }},
		{"an admin call with no action", func(t *routeTable) { t.admin("GET", "/v1/admin/x", api.RoleViewer, "", adminH) }},
		{"an action twice", func(t *routeTable) {
			t.admin("GET", "/v1/admin/x", api.RoleViewer, "x.y", adminH)
			t.admin("POST", "/v1/admin/x", api.RoleAdmin, "x.y", adminH)
		}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: registered", c.what)
				}
			}()
			c.reg(newRouteTable(s))
		}()
	}
	// The real table builds: its registrations pass the same checks.
	rt := newRouteTable(s)
	rt.admin("GET", "/v1/admin/x", api.RoleViewer, "x.y", adminH)
	rt.node("GET", "/v1/node/x", nodeH)
	if len(rt.admins) != 1 || len(rt.entries) != 2 {
		t.Fatalf("table: %d admin calls, %d entries; want 1, 2", len(rt.admins), len(rt.entries))
	}
}

// TestHandlersOnlyThroughRouteTable reads this package's source: no file
// registers a handler, or makes a mux, but the route table's own code, so
// the table is what the server serves.
func TestHandlersOnlyThroughRouteTable(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			allowed := name == "routes.go" && (fn.Name.Name == "register" || fn.Name.Name == "newRouteTable")
			ast.Inspect(fn, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				switch sel.Sel.Name {
				case "Handle", "HandleFunc", "NewServeMux":
					if !allowed {
						t.Errorf("%s: %s calls %s: register handlers through the route table (routes.go)", fset.Position(call.Pos()), fn.Name.Name, sel.Sel.Name)
					}
				}
				return true
			})
		}
	}
	if checked < 20 {
		t.Fatalf("read %d source files; the package has more", checked)
	}
}

// apiPaths are the string constants of package api that are paths of the
// control plane's API: every call a client knows of.
func apiPaths(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../api/*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var out []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			if v, err := strconv.Unquote(lit.Value); err == nil && strings.HasPrefix(v, "/v1/") {
				out = append(out, v)
			}
			return true
		})
	}
	if len(out) < 50 {
		t.Fatalf("found %d API paths in package api; it names more", len(out))
	}
	return out
}

// TestEveryAPIPathAnswersAsRegistered walks a real server's listener: every
// path package api names, every pattern the route table registered, and
// paths no one registered under /v1/admin/, with every method and no
// certificate. A method and path the table registered answers 401 unless
// it is public; anything else answers 404 or 405, so no handler under
// /v1/admin/ (nor anywhere) is served that AdminRoutes does not list.
// Then each kind of call refuses the other kinds' certificates: an agent's
// on admin and peer calls, an administrator's (with an MFA session) on node
// and peer calls; a server's is taken on peer calls.
func TestEveryAPIPathAnswersAsRegistered(t *testing.T) {
	f := newAuthFixture(t)
	entries := f.srv.table().entries
	kinds := map[string]string{} // "METHOD path" → kind
	for _, e := range entries {
		kinds[e.Method+" "+e.Path] = e.Kind
	}
	listed := map[string]bool{}
	for _, r := range f.srv.AdminRoutes() {
		listed[r.Method+" "+r.Path] = true
	}
	for _, e := range entries {
		if (e.Kind == routeAdmin) != listed[e.Method+" "+e.Path] {
			t.Errorf("%s %s (%s): AdminRoutes lists it: %v", e.Method, e.Path, e.Kind, listed[e.Method+" "+e.Path])
		}
	}

	var nonce [6]byte
	rand.Read(nonce[:])
	paths := apiPaths(t)
	for _, e := range entries {
		paths = append(paths, e.Path)
	}
	paths = append(paths, "/v1/admin", "/v1/admin/", "/v1/admin/unregistered-"+hex.EncodeToString(nonce[:]),
		api.PathWhoami+"/", api.PathAccessRec+"/x", "/v1/admin/access/recordings", "/v1/peer/", "/v1/node/")
	slices.Sort(paths)
	paths = slices.Compact(paths)

	noRedirect := func(cert *tls.Certificate) *http.Client {
		var src api.CertSource
		if cert != nil {
			src = func() (*tls.Certificate, error) { return cert, nil }
		}
		tr := &http.Transport{TLSClientConfig: api.ClientTLS(src, f.srv.trust), ForceAttemptHTTP2: true}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	probe := func(c *http.Client, method, path string) int {
		t.Helper()
		ctx, cancel := context.WithTimeout(f.ctx, testkit.WaitLimit)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, "https://"+f.srv.Addr()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	t.Logf("no certificate: %d paths, 6 methods", len(paths))
	anon := noRedirect(nil)
	served := 0
	for _, p := range paths {
		for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} {
			key := m + " " + p
			if m == "HEAD" {
				key = "GET " + p // a GET pattern answers HEAD too
			}
			code := probe(anon, m, p)
			kind, ok := kinds[key]
			switch {
			case !ok && code != http.StatusNotFound && code != http.StatusMethodNotAllowed:
				t.Errorf("%s %s: %d, but the route table registered no such call (want 404 or 405)", m, p, code)
			case ok && kind != routePublic && code != http.StatusUnauthorized:
				t.Errorf("%s %s (%s call): %d without a certificate, want 401", m, p, kind, code)
			case ok:
				served++
			}
		}
	}
	if served < len(entries) {
		t.Errorf("%d registered calls answered, fewer than the %d registered", served, len(entries))
	}

	t.Log("an agent joins: its node certificate")
	var tok api.TokenResponse
	if code, e := f.call(t, f.accs["op"].session, "POST", api.PathTokens, api.TokenRequest{Node: "web-1"}, &tok); code != http.StatusOK {
		t.Fatalf("token create: %d %s", code, e.Error)
	}
	nodeCert := f.join(t, tok.Token, "web-1")
	node := noRedirect(nodeCert)
	admin := noRedirect(f.accs["admin"].session)
	peer := noRedirect(f.srv.ownCert())
	t.Log("a service on web-1 gets its SVID, as its workload would hold it")
	if code, e := f.call(t, f.accs["op"].session, "POST", api.PathServices, api.Registration{Name: "api", Node: "web-1", Port: 8080}, nil); code != http.StatusOK {
		t.Fatalf("svc register: %d %s", code, e.Error)
	}
	svcKey, csr, err := ca.NewKeyCSR()
	if err != nil {
		t.Fatal(err)
	}
	var svid api.CertResponse
	if code, e := f.call(t, nodeCert, "POST", api.PathSVID, api.SVIDRequest{Service: "api", CSR: csr}, &svid); code != http.StatusOK {
		t.Fatalf("svid: %d %s", code, e.Error)
	}
	chain, err := api.ParseChain(svid.Chain)
	if err != nil {
		t.Fatal(err)
	}
	workload := noRedirect(ca.TLSCertificate(chain, svcKey))
	for _, e := range entries {
		refused := map[string]*http.Client{}
		if e.Kind != routePublic {
			refused["a workload's SVID"] = workload
		}
		switch e.Kind {
		case routeAdmin:
			refused["a node certificate"] = node
			refused["a server certificate"] = peer
		case routeNode:
			refused["an admin's MFA session"] = admin
			refused["a server certificate"] = peer
		case routePeer:
			refused["an admin's MFA session"] = admin
			refused["a node certificate"] = node
			if code := probe(peer, e.Method, e.Path); code == http.StatusUnauthorized || code == http.StatusForbidden {
				t.Errorf("%s %s (peer call) with a server certificate: %d", e.Method, e.Path, code)
			}
		}
		for who, c := range refused {
			if code := probe(c, e.Method, e.Path); code != http.StatusUnauthorized {
				t.Errorf("%s %s (%s call) with %s: %d, want 401", e.Method, e.Path, e.Kind, who, code)
			}
		}
	}
}
