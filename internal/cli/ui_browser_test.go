//go:build unix

package cli

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// TestDashboardBrowser runs the built moat dev, sends the demo's traffic,
// and drives the dashboard it prints in headless Chromium: the graph shows
// the allowed frontend → api and api → db edges and the denied frontend →
// db edge; clicking the denied edge shows rule default-deny and its
// explanation; the flow tail shows a new connection; a pasted policy
// without api-to-db shows the flows it would deny; no view logs a console
// error; and the backend refuses whoever lacks the start's secret. A
// screenshot of each view is written to $MOAT_UI_ARTIFACTS (or the test's
// temporary directory).
func TestDashboardBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("builds moat and runs Chromium")
	}
	chrome, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is needed (scripts/test installs Debian's): %v", err)
	}
	artifacts := os.Getenv("MOAT_UI_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := moatBinary(t)
	base := freePortRun(t.Fatalf, devPortCount)
	p := defaultDevPorts(base)
	dash := startDashboardDev(t, bin, base)
	t.Logf("dashboard at %s", dash)

	// The demo's traffic: frontend's page calls api, which calls db; and
	// frontend's port to db, which no rule allows.
	demoGet(t, fmt.Sprintf("http://127.0.0.1:%d/", p.Frontend), true)
	demoGet(t, fmt.Sprintf("http://127.0.0.1:%d/", p.FrontToDB), false)
	// And an SQL injection the gateway's WAF refuses.
	gw := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if resp, err := gw.Get(fmt.Sprintf("https://127.0.0.1:%d/?id=1%%27%%20OR%%20%%271%%27=%%271", p.HTTPS)); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("the WAF let an SQL injection through: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}

	ctx, cancel := browser(t, chrome)
	defer cancel()
	var mu sync.Mutex
	var consoleErrors []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == chromedp.ConsoleType("error") {
				mu.Lock()
				consoleErrors = append(consoleErrors, m.String())
				mu.Unlock()
			}
		}
	}()
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		path := filepath.Join(artifacts, name+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		step, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := chromedp.Do(step, actions...); err != nil {
			page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 3000) : ""`))
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("%s: %v\nthe page reads:\n%s\nconsole errors:\n%s", what, err, page, strings.Join(consoleErrors, "\n"))
		}
	}
	text := func(sel string) string {
		t.Helper()
		step, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		v, err := chromedp.Run(step, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}

	t.Log("graph: the three edges, after that traffic")
	run("open the dashboard", chromedp.Navigate(dash), chromedp.WaitVisible(`#graph[data-ready="1"]`))
	for _, id := range []string{"frontend|api|allow", "api|db|allow", "frontend|db|deny"} {
		run("edge "+id, chromedp.WaitReady(fmt.Sprintf(`path.edge[data-id=%q]`, id)))
	}
	shot("graph")

	t.Log("graph: clicking the denied edge shows default-deny and why")
	xy, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`(() => {
		const p = document.querySelector('path.edge[data-id="frontend|db|deny"]');
		const pt = p.getPointAtLength(p.getTotalLength() / 2).matrixTransform(p.getScreenCTM());
		return [pt.x, pt.y];
	})()`))
	if err != nil || len(xy) != 2 {
		t.Fatalf("locate the denied edge: %v %v", xy, err)
	}
	run("click the denied edge", chromedp.MouseClickXY(xy[0], xy[1]), chromedp.WaitVisible(`#edge-explain`))
	rule, explain := text(`#edge-rule`), text(`#edge-explain`)
	if rule != "default-deny" {
		t.Errorf("the denied edge's rule reads %q, want default-deny", rule)
	}
	if !strings.Contains(explain, "frontend → db:") || !strings.Contains(explain, "DENY (rule default-deny)") || !strings.Contains(explain, "nothing allows it") {
		t.Errorf("the denied edge's explanation reads %q", explain)
	}
	shot("graph-edge")

	t.Log("graph: a service by keyboard: its identity, SVID expiry and rules")
	run("open api with the keyboard", chromedp.Focus(`g.node[data-id="api"]`), chromedp.KeyEvent("\r"), chromedp.WaitVisible(`#service-svid`))
	svc := text(`#detail`)
	for _, want := range []string{"spiffe://moat.dev/svc/api", "Node", "web-to-api", "api-to-db"} {
		if !strings.Contains(svc, want) {
			t.Errorf("the api service's details lack %q:\n%s", want, svc)
		}
	}
	svid := text(`#service-svid`)
	if !regexp.MustCompile(`serial [0-9a-f]{12}`).MatchString(svid) {
		t.Errorf("the api service's SVID expiry reads %q", svid)
	}

	// A new connection: frontend's upstream port to api, without
	// keep-alive (frontend's own page reuses its connection to api).
	t.Log("flows: the tail shows a new connection")
	run("open the flows view", chromedp.Navigate(strings.Split(dash, "/login")[0]+"/#flows"),
		chromedp.WaitVisible(`#flows-table`), chromedp.WaitReady(`#flows-table tbody tr`))
	sent := time.Now()
	demoGet(t, fmt.Sprintf("http://127.0.0.1:%d/", p.FrontToAPI), true)
	shown, err := chromedp.Run(ctx, chromedp.Poll[float64](fmt.Sprintf(`(() => {
		for (const r of document.querySelectorAll('#flows-table tbody tr')) {
			if (Number(r.dataset.time) >= %d && r.textContent.includes('frontend') && r.textContent.includes('api')) return Date.now();
		}
		return false;
	})()`, sent.UnixMilli()), chromedp.WithPollingTimeout(60*time.Second)))
	if err != nil {
		t.Fatalf("the new connection never showed in the tail: %v", err)
	}
	t.Logf("the tail showed the connection %v after it was made", time.UnixMilli(int64(shown)).Sub(sent).Round(time.Millisecond))
	shot("flows")

	t.Log("policy: a file without api-to-db shows the flows it would deny")
	next := strings.Replace(devPolicy(p), fmt.Sprintf("  - name: api-to-db\n    from: [api]\n    to: db\n    ports: [%d]\n", p.DB), "", 1)
	if next == devPolicy(p) {
		t.Fatal("the demo policy has no api-to-db rule to remove")
	}
	run("diff", chromedp.Navigate(strings.Split(dash, "/login")[0]+"/#policy"), chromedp.WaitReady(`#policy-table tbody tr[data-rule="api-to-db"]`),
		chromedp.SetValue(`#policy-yaml`, next), chromedp.Click(`#policy-diff`), chromedp.WaitVisible(`#policy-denied`))
	denied := text(`#policy-denied`)
	if !strings.Contains(denied, fmt.Sprintf("api → db:%d", p.DB)) || !strings.Contains(denied, "api-to-db") {
		t.Errorf("the flows the new policy would deny read %q", denied)
	}
	changes := text(`#policy-changes`)
	if !strings.Contains(changes, "rule api-to-db") {
		t.Errorf("the policy's changes read %q", changes)
	}
	shot("policy")

	t.Log("security and audit views")
	run("security", chromedp.Navigate(strings.Split(dash, "/login")[0]+"/#security"), chromedp.WaitVisible(`#sec-certs table`), chromedp.WaitVisible(`#sec-waf-rule table`))
	if waf := text(`#sec-waf-rule`); !regexp.MustCompile(`waf \d+\s+1`).MatchString(waf) {
		t.Errorf("the WAF blocks by rule read %q", waf)
	}
	if svids := text(`#sec-certs`); !strings.Contains(svids, "svc db") || !strings.Contains(svids, "CA signing") {
		t.Errorf("the certificate timeline reads %q", svids)
	}
	shot("security")
	run("audit", chromedp.Navigate(strings.Split(dash, "/login")[0]+"/#audit"), chromedp.WaitVisible(`#audit-table tbody tr`))
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById('audit-status').textContent.includes('Verified')`, chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		t.Fatalf("the audit view never said the log verified: %v (%s)", err, text(`#audit-status`))
	}
	audit := text(`#audit-status`)
	t.Logf("audit: %s", audit)
	// The account of the administrator who acted, as "moat audit log"
	// shows it: the dev admin's calls carry one, the server's own none.
	accounts, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
		const i = [...document.querySelectorAll('#audit-table thead th')].findIndex((th) => th.textContent === 'Account');
		if (i < 0) return 'no Account column';
		return [...document.querySelectorAll('#audit-table tbody tr')].map((tr) => tr.children[i].textContent).join(' ');
	})()`))
	if err != nil || !regexp.MustCompile(`(^| )[0-9a-f]{32}( |$)`).MatchString(accounts) || !strings.Contains(accounts, "—") {
		t.Errorf("the audit table's accounts read %q (%v), want an administrator's account ID and \"—\" for entries without one", accounts, err)
	}
	shot("audit")

	t.Log("dark mode: the graph again, as a browser that prefers it draws it")
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}); err != nil {
		t.Fatalf("emulate dark mode: %v", err)
	}
	run("graph, dark", chromedp.Navigate(strings.Split(dash, "/login")[0]+"/#graph"), chromedp.WaitVisible(`#graph[data-painted-at]`))
	bg, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.body).backgroundColor`))
	if err != nil || bg != "rgb(17, 19, 24)" {
		t.Errorf("dark mode: the page's background is %q (%v)", bg, err)
	}
	shot("graph-dark")

	mu.Lock()
	if len(consoleErrors) > 0 {
		t.Errorf("the page logged errors:\n%s", strings.Join(consoleErrors, "\n"))
	}
	mu.Unlock()

	t.Log("the backend refuses whoever lacks the start's secret")
	got, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		t.Fatalf("cookies: %v", err)
	}
	refusals(t, dash, got.Cookies)
}

// refusals checks the dashboard's backend against callers without the
// session: no cookie, another Host (DNS rebinding), another origin, a
// change without the CSRF token, the login token a second time.
func refusals(t *testing.T, dash string, cookies []*network.Cookie) {
	u, err := url.Parse(dash)
	if err != nil {
		t.Fatal(err)
	}
	origin := "http://" + u.Host
	var session string
	for _, c := range cookies {
		if c.Name == "moat_ui" {
			session = c.Name + "=" + c.Value
			if !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict {
				t.Errorf("the session cookie is not HttpOnly and SameSite=Strict: %+v", c)
			}
		}
	}
	if session == "" {
		t.Fatal("the browser holds no session cookie")
	}
	tests := []struct {
		name, method, path, host, origin, cookie, csrf string
		want                                           int
	}{
		{name: "with the session", method: "GET", path: "/api/session", cookie: session, want: 200},
		{name: "no cookie", method: "GET", path: "/api/session", want: 401},
		{name: "a wrong cookie", method: "GET", path: "/api/graph", cookie: "moat_ui=guess", want: 401},
		{name: "another host name", method: "GET", path: "/api/session", host: "attacker.example:" + u.Port(), cookie: session, want: 421},
		{name: "another origin", method: "GET", path: "/api/session", origin: "http://attacker.example", cookie: session, want: 403},
		{name: "another local port", method: "GET", path: "/api/session", origin: "http://127.0.0.1:1", cookie: session, want: 403},
		{name: "a change without the CSRF token", method: "POST", path: "/api/policy/diff", origin: origin, cookie: session, want: 403},
		{name: "a change with a wrong CSRF token", method: "POST", path: "/api/policy/diff", origin: origin, cookie: session, csrf: "guess", want: 403},
		{name: "the login token again", method: "GET", path: u.RequestURI(), want: 403},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(tt.method, "http://"+u.Host+tt.path, strings.NewReader(`{"yaml":"default: deny\n"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if tt.host != "" {
			req.Host = tt.host
		}
		if tt.origin != "" {
			req.Header.Set("Origin", tt.origin)
		}
		if tt.cookie != "" {
			req.Header.Set("Cookie", tt.cookie)
		}
		if tt.csrf != "" {
			req.Header.Set("X-Moat-CSRF", tt.csrf)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %s %s answered %d, want %d: %s", tt.name, tt.method, tt.path, resp.StatusCode, tt.want, body)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: Content-Security-Policy %q", tt.name, csp)
		}
	}
}

// startDashboardDev runs the built moat dev on ports from base and returns the
// dashboard's address once it printed it.
func startDashboardDev(t *testing.T, bin string, base int) string {
	t.Helper()
	cmd := exec.Command(bin, "dev", "--port-base", fmt.Sprint(base))
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	found := make(chan string, 1)
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		re := regexp.MustCompile(`dashboard (http://127\.0\.0\.1:\d+/login\?token=\S+)`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		_ = cmd.Wait()
	}()
	select {
	case u := <-found:
		return u
	case <-done:
		t.Fatalf("moat dev exited before it printed the dashboard's address:\n%s", stderr.String())
	case <-time.After(startTimeout):
		t.Fatalf("moat dev printed no dashboard address within %v:\n%s", startTimeout, stderr.String())
	}
	return ""
}

// demoGet makes one connection through the demo; ok says whether it must
// succeed (a denied one is cut by the mesh).
func demoGet(t *testing.T, u string, ok bool) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(u)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if ok && (err != nil || resp.StatusCode != 200) {
		t.Fatalf("GET %s: %v %v", u, err, resp)
	}
}

// browser starts headless Chromium with a fresh profile and nothing that
// reaches out to the network.
func browser(t *testing.T, chrome string) (context.Context, context.CancelFunc) {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chrome),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	if err := chromedp.Do(ctx); err != nil {
		acancel()
		t.Fatalf("start chromium: %v", err)
	}
	return ctx, func() { cancel(); acancel() }
}
