package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"moat/internal/agent"
	"moat/internal/api"
	"moat/internal/config"
	"moat/internal/flow"
	"moat/internal/gateway"
	"moat/internal/server"
)

// devPorts are the loopback ports "moat dev" uses.
type devPorts struct {
	Server, MeshA, MeshB           int
	Frontend, API, DB              int
	FrontToAPI, APIToDB, FrontToDB int
	HTTPS, HTTP                    int // the gateway
	Dashboard                      int
}

// devPortCount is how many ports from --port-base moat dev uses.
const devPortCount = 12

func defaultDevPorts(base int) devPorts {
	if base == 0 {
		return devPorts{Server: 7400, MeshA: 15001, MeshB: 15002, Frontend: 9000, API: 9080, DB: 9432,
			FrontToAPI: 19080, APIToDB: 19432, FrontToDB: 19433, HTTPS: 8443, HTTP: 8080, Dashboard: 7480}
	}
	return devPorts{Server: base, MeshA: base + 1, MeshB: base + 2, Frontend: base + 3, API: base + 4, DB: base + 5,
		FrontToAPI: base + 6, APIToDB: base + 7, FrontToDB: base + 8, HTTPS: base + 9, HTTP: base + 10, Dashboard: base + 11}
}

func loop(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// devPolicy is the demo's intentions, in enforce mode.
func devPolicy(p devPorts) string {
	return fmt.Sprintf(`default: deny
rules:
  - name: edge-to-frontend
    from: [gateway]
    to: frontend
    ports: [%d]
  - name: web-to-api
    from: [gateway, frontend]
    to: api
    ports: [%d]
  - name: api-to-db
    from: [api]
    to: db
    ports: [%d]
`, p.Frontend, p.API, p.DB)
}

// devGatewayFile is the demo gateway's configuration: HTTPS with a
// certificate from moat's CA, the redirect port, the WAF with the OWASP Core
// Rule Set, and "/" routed to frontend through the mesh.
func devGatewayFile(p devPorts, events string) string {
	return fmt.Sprintf(`listen: %s
redirect_listen: %s
events: %s
routes:
  - name: web
    path: /
    service: frontend
    port: %d
    allowed_origins: ["https://%s"]
`, loop(p.HTTPS), loop(p.HTTP), events, p.Frontend, loop(p.HTTPS))
}

func devCommand() *Command {
	var dataDir string
	var portBase int
	var jsonFlows bool
	var logCfg config.Log
	return &Command{
		Name:    "dev",
		Summary: "run the whole system in one process: server, two agents, demo services",
		Usage:   "[--data-dir DIR] [--port-base N]",
		Help: "Starts a control plane, two agents (nodes a and b) and three demo services that\n" +
			"listen on loopback only: frontend (node a) calls api (node b), which calls db\n" +
			"(node a), every hop over mutual TLS and allowed by an explicit rule. It prints\n" +
			"commands to try and streams one line per flow. Ctrl-C stops everything.",
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&dataDir, "data-dir", "", "where the state lives and stays (default: a fresh temporary directory, removed on exit)")
			fs.IntVar(&portBase, "port-base", 0, "use ports N to N+11 instead of the defaults (7400, 15001, 9000, …, the dashboard's 7480)")
			fs.BoolVar(&jsonFlows, "json", false, "stream flows as OCSF JSON lines instead of one readable line each")
			logFlags(fs, &logCfg)
		},
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
			if err := logCfg.Validate(); err != nil {
				return usagef("dev: %v", err)
			}
			if portBase != 0 && (portBase < 1024 || portBase > 65000) {
				return usagef("--port-base %d: want 1024-65000", portBase)
			}
			if dataDir != "" {
				return runDev(ctx, e, dataDir, defaultDevPorts(portBase), jsonFlows, &logCfg)
			}
			// A fresh directory holds keys and credentials that mean
			// nothing once the demo ends: it goes with it.
			d, err := os.MkdirTemp("", "moat-dev-")
			if err != nil {
				return err
			}
			err = runDev(ctx, e, d, defaultDevPorts(portBase), jsonFlows, &logCfg)
			if rerr := os.RemoveAll(d); rerr != nil {
				return errors.Join(err, fmt.Errorf("dev: remove %s: %w", d, rerr))
			}
			fmt.Fprintf(e.Stdout, "moat dev: removed %s\n", d)
			return err
		},
	}
}

// devFlows prints flow records as they come: the destination's verdict for
// each connection and every refused handshake.
type devFlows struct {
	mu   sync.Mutex // guards the fields below
	live bool       // print to out; before the demo is up, records go to the file only
	out  io.Writer
	file *flow.JSONLines
	json bool // print JSON lines, not readable ones
}

func (d *devFlows) Write(r flow.Record) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.file.Write(r); err != nil {
		return err
	}
	if !d.live {
		return nil
	}
	if r.ConnectionInfo != nil && r.ConnectionInfo.DirectionID == flow.DirectionOutbound && r.Verdict() != flow.VerdictDeny {
		return nil // the inbound record of the same connection says it all
	}
	// What clients and peers wrote in a record (a path, a User-Agent) goes
	// to a terminal: as text, what does not print escaped.
	if d.json {
		return writeJSONLine(d.out, r)
	}
	_, err := fmt.Fprintln(d.out, flow.PrintableText(flowLine(r)))
	return err
}

// flowLine renders a record in one readable line.
func flowLine(r flow.Record) string {
	if r.HTTPRequest != nil {
		return eventLine(r)
	}
	var b strings.Builder
	b.WriteString(time.UnixMilli(r.Time).Format("15:04:05.000"))
	verdict := strings.ToUpper(r.Verdict())
	if r.Unmapped != nil && r.Unmapped.Kind == "handshake" {
		verdict = "REFUSED"
	}
	fmt.Fprintf(&b, " %-7s", verdict)
	side := func(e *flow.Endpoint) string {
		switch {
		case e == nil:
			return "?"
		case e.SvcName != "":
			return e.SvcName
		case e.UID != "":
			return e.UID
		}
		addr := net.JoinHostPort(e.IP, strconv.Itoa(e.Port))
		if c := flow.ShownClaim(&r, e); c != "" {
			return addr + " (" + c + ")"
		}
		return addr
	}
	dst := side(r.DstEndpoint)
	if r.DstEndpoint != nil && r.DstEndpoint.SvcName != "" && r.DstEndpoint.Port != 0 {
		dst += ":" + strconv.Itoa(r.DstEndpoint.Port)
	}
	fmt.Fprintf(&b, " %s → %s", side(r.SrcEndpoint), dst)
	if r.FirewallRule != nil {
		fmt.Fprintf(&b, " rule=%s", r.FirewallRule.Name)
	}
	if r.Traffic != nil {
		fmt.Fprintf(&b, " in=%dB out=%dB", r.Traffic.BytesIn, r.Traffic.BytesOut)
	}
	if r.Duration > 0 {
		fmt.Fprintf(&b, " %dms", r.Duration)
	}
	if r.TLS != nil {
		fmt.Fprintf(&b, " %s", r.TLS.Version)
	}
	if r.Unmapped != nil {
		if r.Unmapped.Node != "" {
			fmt.Fprintf(&b, " node=%s", r.Unmapped.Node)
		}
		if r.Unmapped.Reason != "" {
			fmt.Fprintf(&b, " reason=%q", r.Unmapped.Reason)
		}
	}
	return b.String()
}

// eventLine renders a gateway security event.
func eventLine(r flow.Record) string {
	var b strings.Builder
	b.WriteString(time.UnixMilli(r.Time).Format("15:04:05.000"))
	kind := "EVENT"
	if r.Unmapped != nil && r.Unmapped.Kind != "" {
		kind = strings.ToUpper(r.Unmapped.Kind)
	}
	fmt.Fprintf(&b, " %-7s", kind)
	if r.HTTPResponse != nil {
		fmt.Fprintf(&b, " %d", r.HTTPResponse.Code)
	}
	req := r.HTTPRequest
	fmt.Fprintf(&b, " %s", req.Method)
	if req.URL != nil {
		u := req.URL.Path
		if req.URL.QueryString != "" {
			u += "?" + req.URL.QueryString
		}
		fmt.Fprintf(&b, " %q", u)
	}
	if r.SrcEndpoint != nil && r.SrcEndpoint.IP != "" {
		fmt.Fprintf(&b, " from %s", r.SrcEndpoint.IP)
	}
	if r.Unmapped != nil {
		if len(r.Unmapped.Rules) > 0 {
			fmt.Fprintf(&b, " rules=%s", strings.Join(r.Unmapped.Rules, ","))
		}
		if r.Unmapped.Route != "" {
			fmt.Fprintf(&b, " route=%s", r.Unmapped.Route)
		}
	}
	if r.Disposition != "" {
		fmt.Fprintf(&b, " %s", strings.ToLower(r.Disposition))
	}
	if req.UID != "" {
		fmt.Fprintf(&b, " request=%s", req.UID)
	}
	return b.String()
}

func runDev(ctx context.Context, e *Env, dir string, p devPorts, jsonFlows bool, logCfg *config.Log) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "moat dev: state in %s\n", dir)
	logFile, err := os.OpenFile(filepath.Join(dir, "moat.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	logger := logCfg.Logger(logFile)
	flowFile, err := os.OpenFile(filepath.Join(dir, "flows.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer flowFile.Close()
	flows := &devFlows{out: e.Stdout, file: flow.NewJSONLines(flowFile), json: jsonFlows}

	// Control plane.
	// A laptop demo: its one admin makes every call without a second
	// factor (a fleet's server requires one for the sensitive calls).
	noMFA := false
	sc := &server.File{DataDir: filepath.Join(dir, "server"), Listen: loop(p.Server), Name: "control", AdminDir: filepath.Join(dir, "admin"),
		MFA: server.MFAFile{Required: &noMFA}}
	kr, _, err := openKeyring(e, &sc.KEK, sc.DataDir, true)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, sc.DataDir, sc.Store, kr.AEAD())
	if err != nil {
		return err
	}
	err = server.Init(ctx, st, server.InitConfig{TrustDomain: "moat.dev", AdminDir: sc.AdminDir, Sealer: kr.AEAD()})
	st.Close()
	if err != nil && !errors.Is(err, server.ErrInitialized) {
		return err
	}
	parts, err := startServer(ctx, e, sc, logger)
	if err != nil {
		return err
	}
	defer parts.Close()
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	goRun := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	defer wg.Wait()
	defer cancel()
	goRun("server", parts.Run)
	select {
	case <-parts.srv.Ready():
	case <-ctx.Done():
		return firstErr(errc)
	}

	admin, err := api.NewAdminClient(sc.Listen, sc.AdminDir)
	if err != nil {
		return err
	}
	defer admin.Close()
	call := func(method, path string, in, out any) error { return admin.Call(ctx, method, path, in, out) }

	// Registry and intentions, applied before the agents start so that their
	// first snapshot already holds everything.
	regs := []api.Registration{
		{Name: "frontend", Node: "a", Port: p.Frontend, Upstreams: []api.Upstream{{Service: "api", LocalPort: p.FrontToAPI}, {Service: "db", LocalPort: p.FrontToDB}}},
		{Name: "api", Node: "b", Port: p.API, Upstreams: []api.Upstream{{Service: "db", LocalPort: p.APIToDB}}},
		{Name: "db", Node: "a", Port: p.DB},
		{Name: "gateway", Node: "a", Port: p.HTTPS},
	}
	for _, r := range regs {
		if err := call(http.MethodPost, api.PathServices, r, nil); err != nil {
			return fmt.Errorf("register %s: %w", r.Name, err)
		}
	}
	if err := call(http.MethodPost, api.PathPolicy, api.PolicyRequest{YAML: devPolicy(p)}, nil); err != nil {
		return fmt.Errorf("apply policy: %w", err)
	}

	// Agents.
	agents := map[string]*agent.Agent{}
	for _, n := range []struct {
		name string
		mesh int
	}{{"a", p.MeshA}, {"b", p.MeshB}} {
		ac := agent.Config{
			DataDir: filepath.Join(dir, "agent-"+n.name), Server: sc.Listen, Node: n.name, MeshAddr: loop(n.mesh),
			Socket: filepath.Join(dir, "agent-"+n.name, "workload.sock"), Flows: flows, Logger: logger.With("agent", n.name),
			// One process: the agents share the server's keyring, which
			// the server rotates.
			Keyring: parts.keyring, SharedKeyring: true,
		}
		if _, err := os.Stat(filepath.Join(ac.DataDir, "node")); errors.Is(err, os.ErrNotExist) {
			var tok api.TokenResponse
			if err := call(http.MethodPost, api.PathTokens, api.TokenRequest{Node: n.name}, &tok); err != nil {
				return err
			}
			ac.Join = tok.Token
		}
		a, err := agent.New(ctx, ac)
		if err != nil {
			return fmt.Errorf("agent %s: %w", n.name, err)
		}
		goRun("agent "+n.name, a.Run)
		agents[n.name] = a
	}

	// Demo services.
	apps := []struct {
		name string
		port int
		h    http.Handler
	}{
		{"db", p.DB, dbHandler()},
		{"api", p.API, apiHandler(loop(p.APIToDB))},
		{"frontend", p.Frontend, frontendHandler(loop(p.FrontToAPI))},
	}
	for _, app := range apps {
		d, err := startDemoApp(app.name, loop(app.port), app.h)
		if err != nil {
			return err
		}
		defer d.Close()
	}
	// Nothing calls through the mesh before every agent holds its services'
	// SVIDs and knows where their upstreams run: a call before that would
	// be refused as not ready and show up in the flows as a failure the
	// demo made itself. Then one call along the demo path proves it.
	ready, readyCancel := context.WithTimeout(ctx, 30*time.Second)
	err = waitDevAgents(ready, agents)
	if err == nil {
		err = waitHTTP(ready, "http://"+loop(p.Frontend)+"/")
	}
	readyCancel()
	if err != nil {
		return fmt.Errorf("the demo did not come up (see %s): %w", filepath.Join(dir, "moat.log"), errors.Join(err, firstErr(errc)))
	}

	// The edge: the gateway rides agent a's mesh as service "gateway".
	gw, err := startDevGateway(dir, p, parts, agents["a"], logger)
	if err != nil {
		return err
	}
	goRun("gateway", gw.Run)
	bundle := filepath.Join(sc.AdminDir, api.BundleFile)

	// The dashboard, on a loopback port of its own (from --port-base like
	// the others), with the demo's admin credentials.
	dash, err := startUI(ctx, e, &adminFlags{server: sc.Listen, adminDir: sc.AdminDir}, admin, loop(p.Dashboard), logger.With("part", "ui"))
	if err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	goRun("dashboard", dash.Run)

	// The banner and the switch to printing flows are one step under the
	// printer's lock: a call made as soon as the banner is read has its
	// flow printed (after the banner, never inside it).
	flows.mu.Lock()
	fmt.Fprintf(e.Stdout, `
moat dev is running: control plane %s, agents a (%s) and b (%s), gateway https://%s.
Try, in another terminal:
  edge     curl --cacert %s https://%s/
           gateway → frontend → api → db: TLS at the edge, then mutual TLS on every hop
  redirect curl -i http://%s/
           the plain-HTTP port only redirects to HTTPS
  blocked  curl --cacert %s "https://%s/?id=1%%27%%20OR%%20%%271%%27=%%271"
           SQL injection: the WAF answers 403 with a request ID; the event names the rule
  allowed  curl http://%s/
           frontend's own page, straight from the app on loopback
  denied   curl http://%s/
           frontend's port to db: no rule allows frontend → db, so the flow says default-deny
  refused  curl -k https://%s/
           the mesh port admits only mesh peers (a service's SVID, moat's tunnel
           protocol): curl's handshake is refused, and the REFUSED flow says why
  dashboard %s
           the service graph, flows, policy, security and the audit log (the address works once)
  admin    export MOAT_SERVER=%s MOAT_ADMIN_DIR=%s
           go run ./cmd/moat svc list
           go run ./cmd/moat policy explain --from frontend --to db --port %d
Flows (also in %s):
`, sc.Listen, loop(p.MeshA), loop(p.MeshB), loop(p.HTTPS), bundle, loop(p.HTTPS), loop(p.HTTP), bundle, loop(p.HTTPS),
		loop(p.Frontend), loop(p.FrontToDB), loop(p.MeshA),
		dash.URL(), sc.Listen, sc.AdminDir, p.DB, filepath.Join(dir, "flows.jsonl"))
	flows.live = true
	flows.mu.Unlock()

	<-ctx.Done()
	fmt.Fprintln(e.Stdout, "moat dev: stopping")
	cancel()
	wg.Wait()
	return firstErr(errc)
}

// waitDevAgents waits until every agent is ready (agent.WaitReady) and
// knows the node of each upstream of its services.
func waitDevAgents(ctx context.Context, agents map[string]*agent.Agent) error {
	for _, a := range agents {
		if err := a.WaitReady(ctx); err != nil {
			return err
		}
		for {
			updated := a.Updates()
			missing := ""
			for _, r := range a.LocalServices() {
				for _, u := range r.Upstreams {
					dst, ok := a.Registration(u.Service)
					if _, known := a.NodeAddr(dst.Node); !ok || !known {
						missing = u.Service
					}
				}
			}
			if missing == "" {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%w: the node of %q is not known yet", ctx.Err(), missing)
			case <-updated:
			}
		}
	}
	return nil
}

func firstErr(errc chan error) error {
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// startDevGateway writes the demo gateway's file and builds the gateway
// over agent a's mesh, with a certificate for 127.0.0.1 from moat's CA.
func startDevGateway(dir string, p devPorts, parts *serverParts, a *agent.Agent, logger *slog.Logger) (*gateway.Gateway, error) {
	file := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(file, []byte(devGatewayFile(p, filepath.Join(dir, "security.jsonl"))), 0o600); err != nil {
		return nil, err
	}
	cert, err := parts.srv.CA().IssueTLS([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, 30*24*time.Hour)
	if err != nil {
		return nil, err
	}
	return gateway.New(gateway.Config{
		File: file,
		Dial: func(ctx context.Context, service string, port int) (net.Conn, error) {
			return a.Mesh().Dial(ctx, "gateway", service, port)
		},
		CredentialsChanged: a.SVIDChanged,
		Services:           a.Services,
		GetCertificate:     func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil },
		Events:             a.Flows(),
		Logger:             logger.With("part", "gateway"),
	})
}
