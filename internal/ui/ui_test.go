package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/flow"
)

// fakeControl answers the calls the dashboard makes, and records them.
type fakeControl struct {
	mu      sync.Mutex
	calls   []string
	policy  api.Policy
	applied []string
	graph   map[int][]flow.Edge // by class
	audit   []audit.Indexed
	records []flow.Record
}

func (f *fakeControl) Call(ctx context.Context, method, path string, in, out any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, method+" "+path)
	var v any
	p, q, _ := strings.Cut(path, "?")
	switch method + " " + p {
	case "GET " + api.PathServices:
		v = []api.ServiceListing{
			{Registration: api.Registration{Name: "web", Node: "n1", Port: 80, Labels: map[string]string{"team": "shop"}},
				Health: []api.ListenerHealth{{Kind: "upstream", Upstream: "db", Addr: "127.0.0.1:1", Error: "bind: \u202eno\nweb ok"}}},
			{Registration: api.Registration{Name: "db", Node: "n2", Port: 5432}},
		}
	case "GET " + api.PathFlowGraph:
		vals, _ := url.ParseQuery(q)
		fl, _, err := api.ParseFlowValues(vals)
		if err != nil {
			return err
		}
		v = api.FlowGraph{Edges: f.graph[fl.Class], Until: time.Unix(1000, 0).UTC()}
	case "GET " + api.PathCerts:
		v = api.CertInventory{}
	case "GET " + api.PathFlowQuery:
		v = api.FlowRecords{Records: f.records}
	case "GET " + api.PathAudit:
		vals, _ := url.ParseQuery(q)
		from, _ := strconv.Atoi(vals.Get("from"))
		to, _ := strconv.Atoi(vals.Get("to"))
		v = api.AuditEntries{Size: int64(len(f.audit)), Entries: f.audit[from:to]}
	case "GET " + api.PathPolicy:
		v = f.policy
	case "POST " + api.PathPolicy:
		f.applied = append(f.applied, in.(api.PolicyRequest).YAML)
		f.policy.Version++
		v = api.PolicyApplied{Policy: f.policy}
	default:
		return &api.StatusError{Code: http.StatusNotFound, Msg: "no such call in the fake: " + path}
	}
	b, _ := json.Marshal(v)
	return json.Unmarshal(b, out)
}

func (f *fakeControl) FollowFlows(ctx context.Context, query url.Values, fn func(api.FlowFrame) error) error {
	<-ctx.Done()
	return nil
}

// start runs a dashboard over fc on a loopback port.
func start(t *testing.T, fc *fakeControl) *Server {
	t.Helper()
	s, err := New(Config{Control: fc, Admin: api.Whoami{ID: "spiffe://example.org/admin/alice", Role: api.RoleOperator}, Server: "127.0.0.1:7400"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

// login trades the printed address for a session, as a browser does.
func login(t *testing.T, s *Server) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Get(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %s", resp.Status)
	}
	return c
}

func TestLoginOnce(t *testing.T) {
	s := start(t, &fakeControl{})
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), `http-equiv="refresh" content="0;url=/"`) {
		t.Fatalf("first login: %s, a page that does not move on to the dashboard:\n%s", resp.Status, page)
	}
	select {
	case <-s.LoggedIn():
	default:
		t.Error("LoggedIn is not closed after the login")
	}
	cs := resp.Cookies()
	if len(cs) != 1 || cs[0].Name != cookieName || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteStrictMode || cs[0].Value == "" {
		t.Fatalf("session cookie = %+v", cs)
	}
	if strings.Contains(s.URL(), cs[0].Value) {
		t.Error("the session secret is the login token")
	}
	for _, u := range []string{s.URL(), "http://" + s.Addr() + "/login?token=", "http://" + s.Addr() + "/login?token=" + cs[0].Value} {
		resp, err := noRedirect.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
			t.Errorf("login at %s after the first: %s, cookies %v", u, resp.Status, resp.Cookies())
		}
	}
}

func TestRefusals(t *testing.T) {
	s := start(t, &fakeControl{})
	c := login(t, s)
	base := "http://" + s.Addr()
	u, _ := url.Parse(base)
	cookie := c.Jar.Cookies(u)[0]
	csrf := s.csrf.text()
	tests := []struct {
		name    string
		method  string
		path    string
		headers map[string]string
		cookie  bool
		want    int
	}{
		{"session", "GET", "/api/session", nil, true, 200},
		{"no session", "GET", "/api/session", nil, false, 401},
		{"no session, page", "GET", "/", nil, false, 200},
		{"rebound host", "GET", "/api/session", map[string]string{"Host": "evil.example:" + u.Port()}, true, 421},
		{"other port", "GET", "/api/session", map[string]string{"Host": "127.0.0.1:1"}, true, 421},
		{"localhost", "GET", "/api/session", map[string]string{"Host": "localhost:" + u.Port()}, true, 200},
		{"cross origin", "GET", "/api/session", map[string]string{"Origin": "http://evil.example"}, true, 403},
		{"https origin", "GET", "/api/session", map[string]string{"Origin": "https://" + u.Host}, true, 403},
		{"cross site", "GET", "/api/session", map[string]string{"Sec-Fetch-Site": "cross-site"}, true, 403},
		{"same site, another port", "GET", "/api/session", map[string]string{"Sec-Fetch-Site": "same-site"}, true, 403},
		{"null origin", "POST", "/api/policy/diff", map[string]string{"Origin": "null", "Content-Type": "application/json", csrfHeader: csrf}, true, 403},
		{"rebound host, change", "POST", "/api/policy/diff", map[string]string{"Host": "evil.example:" + u.Port(), "Content-Type": "application/json", csrfHeader: csrf}, true, 421},
		{"host without its port", "GET", "/api/session", map[string]string{"Host": "127.0.0.1"}, true, 421},
		{"cross origin event stream", "GET", "/api/flows/follow", map[string]string{"Origin": "http://evil.example", "Accept": "text/event-stream"}, true, 403},
		{"rebound event stream", "GET", "/api/graph/live", map[string]string{"Host": "evil.example:" + u.Port()}, true, 421},
		{"login from another site", "GET", "/login?token=x", map[string]string{"Sec-Fetch-Site": "cross-site"}, false, 403},
		// Another page's navigation to the login address passes the
		// guard ("moat ui --open" opens one); without the token it fails.
		{"another page's login navigation, wrong token", "GET", "/login?token=x", navigation("cross-site", "document"), false, 403},
		{"login framed by another site", "GET", "/login?token=x", navigation("cross-site", "iframe"), false, 403},
		{"another site's navigation elsewhere", "GET", "/api/session", navigation("cross-site", "document"), true, 403},
		{"another port's navigation elsewhere", "GET", "/", navigation("same-site", "document"), false, 403},
		{"change without CSRF", "POST", "/api/policy/apply", map[string]string{"Content-Type": "application/json"}, true, 403},
		{"change with a wrong CSRF", "POST", "/api/policy/apply", map[string]string{"Content-Type": "application/json", csrfHeader: "x"}, true, 403},
		{"change as a form", "POST", "/api/policy/apply", map[string]string{"Content-Type": "text/plain", csrfHeader: csrf}, true, 415},
		{"change without confirmation", "POST", "/api/policy/apply", map[string]string{"Content-Type": "application/json", csrfHeader: csrf}, true, 400},
		{"unknown parameter", "GET", "/api/graph?x=1", nil, true, 400},
		{"long window", "GET", "/api/graph?window=" + strings.Repeat("1", 600), nil, true, 400},
		{"bad group", "GET", "/api/graph?group=team", nil, true, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, base+tt.path, strings.NewReader(`{"yaml":"default: deny\n"}`))
			for k, v := range tt.headers {
				if k == "Host" {
					req.Host = v
				} else {
					req.Header.Set(k, v)
				}
			}
			if tt.cookie {
				req.AddCookie(cookie)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("%s %s = %d, want %d: %s", tt.method, tt.path, resp.StatusCode, tt.want, body)
			}
			csp := resp.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") || !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Errorf("Content-Security-Policy = %q", csp)
			}
		})
	}
}

// navigation is the headers of a navigation made by a page of site (as
// Sec-Fetch-Site says) loading a dest.
func navigation(site, dest string) map[string]string {
	return map[string]string{"Sec-Fetch-Site": site, "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": dest}
}

func TestListenLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0"} {
		_, err := New(Config{Control: &fakeControl{}, Admin: api.Whoami{ID: "spiffe://example.org/admin/a"}, Listen: addr})
		if err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("New(listen %s) = %v, want a refusal", addr, err)
		}
	}
}

// TestApply: an apply needs the confirmation and the version the diff was
// made against.
func TestApply(t *testing.T) {
	fc := &fakeControl{policy: api.Policy{Version: 3, YAML: "default: deny\n"}}
	s := start(t, fc)
	c := login(t, s)
	post := func(body string) (int, string) {
		req, _ := http.NewRequest("POST", "http://"+s.Addr()+"/api/policy/apply", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(csrfHeader, s.csrf.text())
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	doc := `"default: deny\nrules: []\n"`
	if code, body := post(`{"yaml":` + doc + `,"base":3}`); code != 400 || !strings.Contains(body, "confirmation") {
		t.Errorf("apply without confirmation: %d %s", code, body)
	}
	if code, body := post(`{"yaml":` + doc + `,"base":2,"confirm":true}`); code != 409 || !strings.Contains(body, "changed") {
		t.Errorf("apply over a newer version: %d %s", code, body)
	}
	if code, body := post(`{"yaml":` + doc + `,"base":3,"confirm":true,"extra":1}`); code != 400 {
		t.Errorf("apply with an unknown field: %d %s", code, body)
	}
	if len(fc.applied) != 0 {
		t.Fatalf("applied %q before a confirmed apply", fc.applied)
	}
	if code, body := post(`{"yaml":` + doc + `,"base":3,"confirm":true}`); code != 200 {
		t.Errorf("confirmed apply: %d %s", code, body)
	}
	if len(fc.applied) != 1 {
		t.Errorf("applied %d times, want once", len(fc.applied))
	}
}

// TestAuditAccount: the audit table names the account of the
// administrator who acted, as "moat audit log" does, and nothing for an
// entry that records none; newest first.
func TestAuditAccount(t *testing.T) {
	const acct = "3f0123456789abcdef0123456789abcd"
	fc := &fakeControl{audit: []audit.Indexed{
		{Index: 0, Entry: audit.Entry{Actor: "local:root", Action: "server.init", Result: "ok"}},
		{Index: 1, Entry: audit.Entry{Actor: "spiffe://example.org/admin/alice", Role: "admin", Action: "policy.apply", Result: "ok",
			Detail: map[string]string{audit.DetailAccount: acct, audit.DetailTargetAccount: "fedcba9876543210fedcba9876543210"}}},
	}}
	s := start(t, fc)
	c := login(t, s)
	resp, err := c.Get("http://" + s.Addr() + "/api/audit")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		Entries []struct {
			Index   int64       `json:"index"`
			Entry   audit.Entry `json:"entry"`
			Account *string     `json:"account"`
		} `json:"entries"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/audit: %s, %v", resp.Status, err)
	}
	if len(v.Entries) != 2 || v.Entries[0].Index != 1 || v.Entries[1].Index != 0 {
		t.Fatalf("entries %+v, want 1 then 0", v.Entries)
	}
	if a := v.Entries[0].Account; a == nil || *a != acct || v.Entries[0].Entry.Action != "policy.apply" {
		t.Errorf("alice's entry: %+v, want account %s", v.Entries[0], acct)
	}
	if a := v.Entries[1].Account; a != nil {
		t.Errorf("an entry by no administrator shows account %q", *a)
	}
}

// TestGraph: services by name, every other peer as the world, the
// gateway's refusals as edges into it, grouped by node or label.
func TestGraph(t *testing.T) {
	fc := &fakeControl{graph: map[int][]flow.Edge{
		flow.ClassNetworkActivity: {
			{Src: "spiffe://example.org/svc/web", Dst: "spiffe://example.org/svc/db", Verdict: "allow", Flows: 3, Bytes: 900},
			{Src: "spiffe://example.org/svc/web", Dst: "spiffe://example.org/svc/db", Verdict: "deny", Flows: 1},
			{Src: "203.0.113.7", Dst: "db", Verdict: "deny", Flows: 2},
			{Src: "198.51.100.1", Dst: "db", Verdict: "deny", Flows: 1},
			{Src: "127.0.0.1", Dst: "127.0.0.1", Verdict: "deny", Flows: 1},
			{Src: "spiffe://other.org/svc/web", Dst: "spiffe://example.org/svc/db", Verdict: "deny", Flows: 1},
		},
		flow.ClassHTTPActivity: {{Src: "203.0.113.9", Dst: "192.0.2.1", Verdict: "deny", Flows: 4}},
	}}
	s := start(t, fc)
	v, err := s.fetchGraph(context.Background(), time.Hour, "node")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, e := range v.Edges {
		got[e.ID] = e.Flows
	}
	want := map[string]int64{"web|db|allow": 3, "web|db|deny": 1, "world|db|deny": 4, "world|gateway|deny": 4}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("edges = %v, want %v", got, want)
	}
	groups := map[string]string{}
	for _, n := range v.Nodes {
		groups[n.ID] = n.Group
	}
	wantGroups := map[string]string{"web": "node n1", "db": "node n2", "world": "outside the mesh", "gateway": "not registered"}
	if fmt.Sprint(groups) != fmt.Sprint(wantGroups) {
		t.Errorf("groups = %v, want %v", groups, wantGroups)
	}
	v, err = s.fetchGraph(context.Background(), time.Hour, "label:team")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range v.Nodes {
		if n.ID == "web" && n.Group != "team=shop" || n.ID == "db" && n.Group != "no team" {
			t.Errorf("grouped by team: %s in %q", n.ID, n.Group)
		}
	}
	if fmt.Sprint(v.LabelKeys) != "[team]" {
		t.Errorf("label keys = %v", v.LabelKeys)
	}
}

// TestLayoutScales lays out a thousand services in boxes that do not
// overlap, each node inside its box.
func TestLayoutScales(t *testing.T) {
	var regs []api.ServiceListing
	for i := range 1000 {
		regs = append(regs, api.ServiceListing{Registration: api.Registration{Name: fmt.Sprintf("svc-%04d", i), Node: fmt.Sprintf("n%02d", i%37)}})
	}
	v := &graphView{GroupBy: "node"}
	layout(v, regs)
	if len(v.Nodes) != 1000 || len(v.Groups) != 37 {
		t.Fatalf("%d nodes in %d groups", len(v.Nodes), len(v.Groups))
	}
	for i, a := range v.Groups {
		for _, b := range v.Groups[i+1:] {
			if a.X < b.X+b.W && b.X < a.X+a.W && a.Y < b.Y+b.H && b.Y < a.Y+a.H {
				t.Fatalf("groups %q and %q overlap", a.Name, b.Name)
			}
		}
	}
	box := map[string]graphGroup{}
	for _, g := range v.Groups {
		box[g.Name] = g
	}
	for _, n := range v.Nodes {
		g := box[n.Group]
		if n.X < g.X || n.X > g.X+g.W || n.Y < g.Y || n.Y > g.Y+g.H {
			t.Fatalf("node %s at (%v,%v) is outside its box %+v", n.ID, n.X, n.Y, g)
		}
	}
}

// TestOthersTextShownAsText: a client's path, a node's names and its
// report on its listeners reach the page with what does not print (a direction override, a line break, a
// zero-width space) as escapes, in the records it lists and the graph it
// draws: the page shows text as it is, where a direction override would
// turn a path or a name round.
func TestOthersTextShownAsText(t *testing.T) {
	rec := flow.Header(flow.ClassHTTPActivity, flow.ActivityOpen, "moat-gateway", time.Unix(1000, 0))
	rec.Metadata.UID = "r1"
	rec.SrcEndpoint = &flow.Endpoint{IP: "198.51.100.7"}
	rec.HTTPRequest = &flow.HTTPRequest{Method: "GET", URL: &flow.URL{Path: "/login\u202egnp.exe\nGET /ok"}}
	rec.Unmapped = &flow.Moat{Verdict: flow.VerdictDeny, Kind: "waf", Rules: []string{"9\u200b41100"}}
	fc := &fakeControl{records: []flow.Record{rec}, graph: map[int][]flow.Edge{
		flow.ClassNetworkActivity: {{Src: "we\u202eb", Dst: "db", Verdict: flow.VerdictAllow, Flows: 1, Bytes: 1}},
	}}
	s := start(t, fc)
	c := login(t, s)
	get := func(path string) string {
		resp, err := c.Get("http://" + s.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %s", path, resp.Status, b)
		}
		return string(b)
	}
	var flows api.FlowRecords
	if err := json.Unmarshal([]byte(get("/api/flows")), &flows); err != nil || len(flows.Records) != 1 {
		t.Fatalf("flows %+v, %v", flows, err)
	}
	if p := flows.Records[0].HTTPRequest.URL.Path; p != `/login\u202egnp.exe\nGET /ok` {
		t.Errorf("the page is given the path %q, want its override and line break as escapes", p)
	}
	if r := flows.Records[0].Unmapped.Rules[0]; r != `9\u200b41100` {
		t.Errorf("the page is given the rule %q", r)
	}
	var svc struct {
		Listing api.ServiceListing `json:"listing"`
	}
	if err := json.Unmarshal([]byte(get("/api/service?name=web")), &svc); err != nil || len(svc.Listing.Health) != 1 {
		t.Fatalf("service %+v, %v", svc, err)
	}
	if e := svc.Listing.Health[0].Error; e != `bind: \u202eno\nweb ok` {
		t.Errorf("the page is given the listener's error %q", e)
	}
	var g struct {
		Nodes []struct {
			ID string `json:"id"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(get("/api/graph")), &g); err != nil {
		t.Fatal(err)
	}
	for _, n := range g.Nodes {
		if strings.ContainsRune(n.ID, '\u202e') {
			t.Errorf("the graph's node %q holds a direction override", n.ID)
		}
	}
}
