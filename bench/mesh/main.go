// Command meshbench measures, in one run and on loopback only, the same
// traffic carried three ways: direct (client → backend), through a pair of
// real node agents (cmd/moat-agent, the executable that links the agent
// alone) joined to a real control plane ("moat server run", sealed, made by
// "moat server init"), and through a pair of HAProxy processes (mode tcp,
// TLS 1.3 with client certificates both ways and session resumption). See README.md for what each phase measures and the
// figures.
//
//	go run ./bench/mesh                 # 3 repetitions of 10 s phases
//	go run ./bench/mesh -smoke          # a few seconds: CI checks it runs
//	go run ./bench/mesh -profile DIR    # also CPU profiles of both agents per phase
//
// It installs the peers it needs (Debian's haproxy and wrk) when they are
// missing and it runs as root, and builds cmd/moat and cmd/moat-agent itself.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"moat/internal/api"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pquerna/otp/totp"
)

type options struct {
	reps   int
	dur    time.Duration
	bulkMB int64
	// bulkSliceMB is the MiB of one bulk slice (one connection).
	bulkSliceMB int64
	rate        int // keep-alive requests per second
	connRate    int // new connections per second
	profile     string
	keep        bool
	hold        bool
	procs       int // the agents' --procs; 0 leaves their default
	// oneBinary runs the agents as "moat agent" from cmd/moat.
	oneBinary bool
	// agentDefaultBuild builds cmd/moat-agent with go build's defaults
	// (cgo, gRPC's tracing) instead of as it is shipped.
	agentDefaultBuild bool
	// backendPID is the backends' process, which every path shares.
	backendPID int
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "backends" {
		if err := backends(); err != nil {
			fmt.Fprintln(os.Stderr, "meshbench backends:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	smoke := flag.Bool("smoke", false, "a run of a few seconds that only checks the harness produces its figures")
	flag.IntVar(&o.reps, "reps", 3, "repetitions (figures are medians)")
	flag.DurationVar(&o.dur, "dur", 10*time.Second, "length of each load phase")
	flag.Int64Var(&o.bulkMB, "bulk-mb", 1024, "MiB each path carries per repetition in the bulk phase")
	flag.Int64Var(&o.bulkSliceMB, "bulk-slice-mb", 128, "MiB of one bulk slice (one connection); the paths alternate slice by slice")
	flag.IntVar(&o.rate, "rate", 1000, "requests per second of the latency phases")
	flag.IntVar(&o.connRate, "conn-rate", 200, "new connections per second of the new-connection phase")
	flag.StringVar(&o.profile, "profile", "", "write CPU profiles of both agents for every phase to this directory")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (logs, configs)")
	flag.IntVar(&o.procs, "procs", 0, "run the agents with --procs N (0: their default), to compare thread counts")
	flag.BoolVar(&o.oneBinary, "one-binary", false, `run the agents as "moat agent" from cmd/moat instead of cmd/moat-agent, to compare their memory`)
	flag.BoolVar(&o.agentDefaultBuild, "agent-default-build", false, "build cmd/moat-agent with go build's defaults (cgo, gRPC's tracing) instead of as shipped, to compare their memory")
	flag.BoolVar(&o.hold, "hold", false, "after setting up, print every path's addresses and processes and keep them serving until interrupted (to profile or measure by hand)")
	flag.Parse()
	if *smoke {
		o.reps, o.dur, o.bulkMB = 1, time.Second, 8
	}
	if o.reps < 1 || o.dur < time.Second || o.bulkMB < 1 || o.bulkSliceMB < 1 {
		fmt.Fprintln(os.Stderr, "meshbench: -reps, -bulk-mb and -bulk-slice-mb must be at least 1, -dur at least 1s")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "meshbench:", err)
		os.Exit(1)
	}
}

// path is one way of carrying the traffic: where the client connects for
// each backend, and the processes in between.
type path struct {
	name             string
	http, echo, sink string
	pids             []int // the proxy processes, source side first
}

func run(o options) error {
	if err := needTools(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "meshbench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(os.Stderr, "work directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	ps := &procs{}
	defer ps.stopAll()

	self, err := os.Executable()
	if err != nil {
		return err
	}
	be, err := ps.start("backends", nil, self, "backends")
	if err != nil {
		return err
	}
	m, err := be.waitOutput(regexp.MustCompile(`http (\S+)\necho (\S+)\nsink (\S+)\n`), 30*time.Second)
	if err != nil {
		return err
	}
	direct := path{name: "direct", http: m[1], echo: m[2], sink: m[3]}
	o.backendPID = be.cmd.Process.Pid

	moat, err := setupMoat(o, dir, ps, direct)
	if err != nil {
		return fmt.Errorf("moat: %w", err)
	}
	ha, err := setupHAProxy(dir, ps, direct)
	if err != nil {
		return fmt.Errorf("haproxy: %w", err)
	}
	paths := []path{direct, moat, ha}
	fmt.Fprintf(os.Stderr, "peers: %s; ghostunnel: not compared (the Go module proxy refuses github.com/ghostunnel/ghostunnel and Debian has no package)\n", haproxyVersion())

	if o.hold {
		for _, p := range paths {
			fmt.Printf("%s: http %s echo %s sink %s pids %v\n", p.name, p.http, p.echo, p.sink, p.pids)
		}
		if o.profile != "" {
			fmt.Printf("pprof of the moat agents: %v\n", pprofAddrs(moat))
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		return nil
	}
	// Idle: joined, serving, no traffic yet but the readiness probes.
	time.Sleep(2 * time.Second)
	idle := map[string]*result{}
	for _, p := range paths {
		r := &result{}
		for _, pid := range p.pids {
			u := usageOf(pid)
			r.idleKB = append(r.idleKB, u.rssKB)
			r.idleAnonKB = append(r.idleAnonKB, u.anonKB)
			r.idleFileKB = append(r.idleFileKB, u.fileKB)
		}
		idle[p.name] = r
	}
	var reps []map[string]*result
	for rep := 1; rep <= o.reps; rep++ {
		fmt.Fprintf(os.Stderr, "== repetition %d of %d\n", rep, o.reps)
		r, err := repetition(o, dir, paths, rep, idle)
		if err != nil {
			return err
		}
		reps = append(reps, r)
	}
	printReport(os.Stdout, o, reps)
	return nil
}

// needTools installs haproxy and wrk from Debian when they are missing.
func needTools() error {
	var missing []string
	for cmd, pkg := range map[string]string{"haproxy": "haproxy", "wrk": "wrk"} {
		if _, err := exec.LookPath(cmd); err != nil {
			missing = append(missing, pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("install %s (apt-get install -y %s)", strings.Join(missing, ", "), strings.Join(missing, " "))
	}
	fmt.Fprintln(os.Stderr, "installing", strings.Join(missing, " "))
	for _, args := range [][]string{{"update", "-qq"}, append([]string{"install", "-y", "-qq", "--no-install-recommends"}, missing...)} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

func haproxyVersion() string {
	out, _ := exec.Command("haproxy", "-v").Output()
	if f := strings.Fields(string(out)); len(f) >= 3 {
		return "HAProxy " + f[2]
	}
	return "HAProxy"
}

var listening = regexp.MustCompile(`msg="control plane listening" addr=(\S+)`)

// setupMoat builds cmd/moat and cmd/moat-agent, makes and runs a sealed
// control plane, joins agents a (the callers' side) and b (the backends'
// side) and waits until every upstream carries traffic.
func setupMoat(o options, dir string, ps *procs, direct path) (path, error) {
	bin, agentBin := filepath.Join(dir, "moat"), filepath.Join(dir, "moat-agent")
	for _, b := range [][2]string{{bin, "./cmd/moat"}, {agentBin, "./cmd/moat-agent"}} {
		var tags []string
		if o.profile != "" {
			tags = append(tags, "pprof")
		}
		cmd := exec.Command("go")
		if b[1] == "./cmd/moat-agent" && !o.agentDefaultBuild {
			// As it is shipped (cmd/moat-agent's doc).
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		}
		args := []string{"build", "-o", b[0]}
		if len(tags) > 0 {
			args = append(args, "-tags", strings.Join(tags, ","))
		}
		cmd.Args = append(append(cmd.Args, args...), b[1])
		if out, err := cmd.CombinedOutput(); err != nil {
			return path{}, fmt.Errorf("go build %s (run from the module root): %v\n%s", b[1], err, out)
		}
	}
	srvDir := filepath.Join(dir, "server")
	env := []string{"MOAT_ADMIN_DIR=" + srvDir + ".admin"}
	moat := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.Output()
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				return "", fmt.Errorf("moat %s: %v: %s", strings.Join(args, " "), err, ee.Stderr)
			}
			return "", err
		}
		return strings.TrimSpace(string(out)), nil
	}
	if _, err := moat("server", "init", "--data-dir", srvDir, "--trust-domain", "bench.moat"); err != nil {
		return path{}, err
	}
	srv, err := ps.start("moat server", env, bin, "server", "run", "--data-dir", srvDir, "--listen", "127.0.0.1:0")
	if err != nil {
		return path{}, err
	}
	m, err := srv.waitOutput(listening, 60*time.Second)
	if err != nil {
		return path{}, err
	}
	env = append(env, "MOAT_SERVER="+m[1])
	ports, err := freePorts(7)
	if err != nil {
		return path{}, err
	}
	meshA, meshB, upHTTP, upEcho, upSink := addr(ports[0]), addr(ports[1]), ports[2], ports[3], ports[4]
	// Registrations, join tokens and policy changes need a fresh second
	// factor: enrol a TOTP authenticator and log in, as an administrator
	// does.
	enrol, err := moat("admin", "mfa", "enroll", "--no-qr", "--output", "json")
	if err != nil {
		return path{}, err
	}
	var en api.MFAEnrollment
	if err := json.Unmarshal([]byte(enrol), &en); err != nil {
		return path{}, fmt.Errorf("mfa enroll: %v", err)
	}
	for i, verb := range []string{"confirm", "login"} {
		code, err := totp.GenerateCode(en.Secret, time.Now().Add(time.Duration(i)*30*time.Second))
		if err != nil {
			return path{}, err
		}
		if _, err := moat("admin", "mfa", verb, code); err != nil {
			return path{}, err
		}
	}
	backend := map[string]string{"web": direct.http, "echo": direct.echo, "sink": direct.sink}
	policy := "default: deny\nrules:\n"
	for _, svc := range []string{"web", "echo", "sink"} {
		port := backend[svc][strings.LastIndexByte(backend[svc], ':')+1:]
		if _, err := moat("svc", "register", "--node", "b", "--name", svc, "--port", port); err != nil {
			return path{}, err
		}
		policy += fmt.Sprintf("  - name: client-to-%s\n    from: [client]\n    to: %s\n    ports: [%s]\n", svc, svc, port)
	}
	if _, err := moat("svc", "register", "--node", "a", "--name", "client", "--port", "1",
		"--upstream", fmt.Sprintf("web:%d", upHTTP), "--upstream", fmt.Sprintf("echo:%d", upEcho), "--upstream", fmt.Sprintf("sink:%d", upSink)); err != nil {
		return path{}, err
	}
	polFile := filepath.Join(dir, "intentions.yaml")
	if err := os.WriteFile(polFile, []byte(policy), 0o600); err != nil {
		return path{}, err
	}
	if _, err := moat("policy", "apply", "-f", polFile); err != nil {
		return path{}, err
	}
	var pids []int
	for i, node := range []string{"a", "b"} {
		tok, err := moat("token", "create", "--node", node)
		if err != nil {
			return path{}, err
		}
		listen := []string{meshA, meshB}[i]
		agentEnv := env
		if o.profile != "" {
			agentEnv = append(agentEnv, "MOAT_PPROF="+addr(ports[5+i]))
		}
		args := []string{"--data-dir", filepath.Join(dir, node), "--server", m[1], "--node", node, "--join", tok, "--listen", listen}
		if o.procs > 0 {
			args = append(args, "--procs", fmt.Sprint(o.procs))
		}
		// Each node has its own copy of the executable, as two hosts do:
		// the agents share no page cache (see README, "Where the agent's
		// memory goes").
		nodeBin, src := agentBin+"-"+node, agentBin
		if o.oneBinary {
			nodeBin, src = bin+"-"+node, bin
			args = append([]string{"agent"}, args...)
		}
		if err := copyExecutable(src, nodeBin); err != nil {
			return path{}, err
		}
		p, err := ps.start("moat-agent "+node, agentEnv, nodeBin, args...)
		if err != nil {
			return path{}, err
		}
		pids = append(pids, p.cmd.Process.Pid)
	}
	p := path{name: "moat", http: addr(upHTTP), echo: addr(upEcho), sink: addr(upSink), pids: pids}
	if err := waitEcho(p.echo, 60*time.Second); err != nil {
		return path{}, err
	}
	return p, nil
}

// setupHAProxy runs HAProxy A (plain TCP in, TLS 1.3 out with a client
// certificate) and B (TLS 1.3 in, verify required, plain TCP to the
// backends), one frontend per backend.
func setupHAProxy(dir string, ps *procs, direct path) (path, error) {
	certs, err := makePKI(dir)
	if err != nil {
		return path{}, err
	}
	ports, err := freePorts(6)
	if err != nil {
		return path{}, err
	}
	common := "global\n  maxconn 4000\n  nbthread 2\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n"
	a, b := common, common
	targets := []string{direct.http, direct.echo, direct.sink}
	for i, target := range targets {
		a += fmt.Sprintf("frontend fa%d\n  bind %s\n  default_backend ba%d\nbackend ba%d\n  server b %s ssl crt %s ca-file %s verify required ssl-min-ver TLSv1.3\n",
			i, addr(ports[i]), i, i, addr(ports[3+i]), certs.client, certs.ca)
		b += fmt.Sprintf("frontend fb%d\n  bind %s ssl crt %s ca-file %s verify required ssl-min-ver TLSv1.3\n  default_backend bb%d\nbackend bb%d\n  server app %s\n",
			i, addr(ports[3+i]), certs.server, certs.ca, i, i, target)
	}
	var pids []int
	for _, c := range []struct{ name, cfg string }{{"haproxy B", b}, {"haproxy A", a}} {
		file := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".cfg")
		if err := os.WriteFile(file, []byte(c.cfg), 0o600); err != nil {
			return path{}, err
		}
		p, err := ps.start(c.name, nil, "haproxy", "-db", "-f", file)
		if err != nil {
			return path{}, err
		}
		pids = append([]int{p.cmd.Process.Pid}, pids...) // A first
	}
	p := path{name: "haproxy", http: addr(ports[0]), echo: addr(ports[1]), sink: addr(ports[2]), pids: pids}
	if err := waitEcho(p.echo, 30*time.Second); err != nil {
		return path{}, err
	}
	return p, nil
}

// result is one repetition's figures for one path.
type result struct {
	uniP50, uniP99, burstP50, burstP99 time.Duration
	maxRPS, bulkMBs                    float64
	connP50, connP99                   time.Duration
	idleKB, loadedKB, peakKB           []int64       // per proxy process
	idleAnonKB, idleFileKB             []int64       // of idleKB, RssAnon and RssFile
	loadedAnonKB, loadedFileKB         []int64       // of loadedKB (its highest sample), RssAnon and RssFile
	cpuUni, cpuConn                    time.Duration // all proxy processes together
	// The max req/s phase, medians of its slices: the proxy processes'
	// CPU per request, the whole host's (every process and the kernel,
	// both cores; on a shared host, others' work too) and the share of
	// the cores left idle; and how long the proxy processes and the
	// backends, runnable, waited for a core, per request.
	proxyUSPerReq, hostUSPerReq, hostIdle float64
	proxyWaitUS, backendWaitUS            float64
	// The bulk phase, medians of its slices: CPU per GiB carried of the
	// proxy processes, of the backends' process (the sink) and of the
	// whole host, and the share of the cores left idle.
	bulkProxyMS, bulkBackendMS, bulkHostMS, bulkIdle float64
	slices                                           []string // the throughput phases' figure of every slice
}

func repetition(o options, dir string, paths []path, rep int, idle map[string]*result) (map[string]*result, error) {
	res := map[string]*result{}
	for _, p := range paths {
		r := &result{idleKB: idle[p.name].idleKB, idleAnonKB: idle[p.name].idleAnonKB, idleFileKB: idle[p.name].idleFileKB}
		r.loadedKB = make([]int64, len(p.pids))
		r.loadedAnonKB = make([]int64, len(p.pids))
		r.loadedFileKB = make([]int64, len(p.pids))
		r.peakKB = make([]int64, len(p.pids))
		res[p.name] = r
	}
	cpu := func(p path) time.Duration {
		var t time.Duration
		for _, pid := range p.pids {
			t += usageOf(pid).cpu
		}
		return t
	}
	// Latency phases interleave the paths in slices of a second (the first
	// path of each slice rotating), so that the machine's load, which
	// swings from second to second on a shared host, falls on every path
	// alike; each path's samples are pooled over its slices.
	interleave := func(name string, loaded bool, run func(p path, d time.Duration) (latencies, int, error), set func(r *result, lat latencies, cpu time.Duration)) error {
		slice := min(time.Second, o.dur)
		n := max(int(o.dur/slice), 1)
		fmt.Fprintf(os.Stderr, "   %-8s %s (%d slices of %v per path)\n", "all", name, n, slice)
		lats := map[string]latencies{}
		cpus := map[string]time.Duration{}
		var stops []func()
		for _, p := range paths {
			stops = append(stops, profile(o, p, fmt.Sprintf("%d-%s", rep, name), time.Duration(n*len(paths))*slice))
		}
		for i := range n {
			for k := range paths {
				p := paths[(i+k)%len(paths)]
				r := res[p.name]
				var l *result
				if loaded {
					l = r
				}
				sampler := sampleRSS(p, r.peakKB, l)
				before := cpu(p)
				lat, fails, err := run(p, slice)
				cpus[p.name] += cpu(p) - before
				sampler()
				if err := failed(err, fails, len(lat)); err != nil {
					return fmt.Errorf("%s, %s: %w", p.name, name, err)
				}
				lats[p.name] = append(lats[p.name], lat...)
			}
		}
		for _, stop := range stops {
			stop()
		}
		for _, p := range paths {
			set(res[p.name], lats[p.name], cpus[p.name])
		}
		return nil
	}
	// Throughput phases interleave the paths the same way: a phase is cut
	// into n slices per path, run in turn with the first path of each slice
	// rotating (and each repetition starting one further on), and a path's
	// figure is the median of its slices, so that a quiet or a busy stretch
	// of the host does not fall on one path's whole phase.
	throughput := func(name string, n int, span time.Duration, run func(p path) (float64, error), set func(r *result, v float64)) error {
		fmt.Fprintf(os.Stderr, "   %-8s %s (%d slices per path)\n", "all", name, n)
		vals := map[string][]float64{}
		var stops []func()
		for _, p := range paths {
			stops = append(stops, profile(o, p, fmt.Sprintf("%d-%s", rep, name), span))
		}
		for i := range n {
			for k := range paths {
				p := paths[(rep+i+k)%len(paths)]
				sampler := sampleRSS(p, res[p.name].peakKB, nil)
				v, err := run(p)
				sampler()
				if err != nil {
					return fmt.Errorf("%s, %s: %w", p.name, name, err)
				}
				vals[p.name] = append(vals[p.name], v)
			}
		}
		for _, stop := range stops {
			stop()
		}
		for _, p := range paths {
			set(res[p.name], median(vals[p.name]))
			res[p.name].slices = append(res[p.name].slices, fmt.Sprintf("%s: %s", name, fmtSlices(vals[p.name])))
		}
		return nil
	}
	if err := interleave("1 KB at "+fmt.Sprint(o.rate)+" req/s, uniform", true, func(p path, d time.Duration) (latencies, int, error) {
		return keepAliveLoad(p.http, 16, arrivals{rate: o.rate, burst: 1}, d)
	}, func(r *result, lat latencies, cpu time.Duration) {
		r.uniP50, r.uniP99, r.cpuUni = lat.pct(50), lat.pct(99), cpu
	}); err != nil {
		return nil, err
	}
	if err := interleave("1 KB at "+fmt.Sprint(o.rate)+" req/s, bursts of 16", false, func(p path, d time.Duration) (latencies, int, error) {
		return keepAliveLoad(p.http, 16, arrivals{rate: o.rate, burst: 16}, d)
	}, func(r *result, lat latencies, _ time.Duration) {
		r.burstP50, r.burstP99 = lat.pct(50), lat.pct(99)
	}); err != nil {
		return nil, err
	}
	// wrk in slices of 2 s (-dur's whole seconds when shorter): each slice
	// is a wrk run of its own, 16 new connections.
	wrkSlice := min(2*time.Second, max(o.dur.Truncate(time.Second), time.Second))
	wrkN := max(int(o.dur/wrkSlice), 1)
	// Each slice also reads what CPU a request took, the proxies' and the
	// host's, how much of the cores stayed idle, and how long the proxies
	// and the backends waited for a core while runnable: a path whose
	// processes wait for a core while the cores stand idle is held by when
	// its work comes (bursts, wake-ups), not by how much there is.
	proxyUS, hostUS, hostIdle := map[string][]float64{}, map[string][]float64{}, map[string][]float64{}
	proxyWait, backendWait := map[string][]float64{}, map[string][]float64{}
	if err := throughput(fmt.Sprintf("wrk, 16 connections, 1 KB POST, %v slices", wrkSlice), wrkN, time.Duration(wrkN*len(paths))*wrkSlice, func(p path) (float64, error) {
		proxy0 := cpu(p)
		pw0, bw0 := waited(p.pids...), waited(o.backendPID)
		busy0, idle0 := hostTicks()
		rps, n, err := wrkMax(dir, p.http, wrkSlice)
		busy1, idle1 := hostTicks()
		proxy := cpu(p) - proxy0
		pw, bw := waited(p.pids...)-pw0, waited(o.backendPID)-bw0
		if busy, idle := busy1-busy0, idle1-idle0; err == nil && n > 0 && busy+idle > 0 {
			proxyUS[p.name] = append(proxyUS[p.name], us(proxy)/float64(n))
			proxyWait[p.name] = append(proxyWait[p.name], us(pw)/float64(n))
			backendWait[p.name] = append(backendWait[p.name], us(bw)/float64(n))
			hostUS[p.name] = append(hostUS[p.name], float64(busy)*1e4/float64(n)) // USER_HZ ticks of 10 ms
			hostIdle[p.name] = append(hostIdle[p.name], 100*float64(idle)/float64(busy+idle))
		}
		return rps, err
	}, func(r *result, v float64) { r.maxRPS = v }); err != nil {
		return nil, err
	}
	for _, p := range paths {
		r := res[p.name]
		r.proxyUSPerReq, r.hostUSPerReq, r.hostIdle = median(proxyUS[p.name]), median(hostUS[p.name]), median(hostIdle[p.name])
		r.proxyWaitUS, r.backendWaitUS = median(proxyWait[p.name]), median(backendWait[p.name])
	}
	// Bulk: -bulk-mb per path and repetition, in slices of -bulk-slice-mb,
	// each through a connection of its own.
	bulkN := max(o.bulkMB/o.bulkSliceMB, 1)
	bulkSlice := o.bulkMB << 20 / bulkN
	// Each slice also reads the CPU a GiB carried took: the proxies',
	// the sink's and the host's, and the share of the cores left idle. A
	// path's rate is what its CPU per byte allows the two cores, unless
	// they stand idle: these say which of the two a ratio shows.
	bulkProxy, bulkBackend, bulkHost, bulkIdle := map[string][]float64{}, map[string][]float64{}, map[string][]float64{}, map[string][]float64{}
	gib := float64(bulkSlice) / (1 << 30)
	if err := throughput(fmt.Sprintf("bulk %d MiB, %d MiB slices", o.bulkMB, bulkSlice>>20), int(bulkN), time.Duration(len(paths))*time.Duration(o.bulkMB)*5*time.Millisecond, func(p path) (float64, error) {
		proxy0, backend0 := cpu(p), usageOf(o.backendPID).cpu
		busy0, idle0 := hostTicks()
		mbs, err := bulk(p.sink, bulkSlice)
		busy1, idle1 := hostTicks()
		proxy, backend := cpu(p)-proxy0, usageOf(o.backendPID).cpu-backend0
		if busy, idle := busy1-busy0, idle1-idle0; err == nil && busy+idle > 0 {
			bulkProxy[p.name] = append(bulkProxy[p.name], float64(proxy.Milliseconds())/gib)
			bulkBackend[p.name] = append(bulkBackend[p.name], float64(backend.Milliseconds())/gib)
			bulkHost[p.name] = append(bulkHost[p.name], float64(busy)*10/gib) // USER_HZ ticks of 10 ms
			bulkIdle[p.name] = append(bulkIdle[p.name], 100*float64(idle)/float64(busy+idle))
		}
		return mbs, err
	}, func(r *result, v float64) { r.bulkMBs = v }); err != nil {
		return nil, err
	}
	for _, p := range paths {
		r := res[p.name]
		r.bulkProxyMS, r.bulkBackendMS = median(bulkProxy[p.name]), median(bulkBackend[p.name])
		r.bulkHostMS, r.bulkIdle = median(bulkHost[p.name]), median(bulkIdle[p.name])
	}
	if err := interleave(fmt.Sprintf("a new connection per request at %d/s", o.connRate), false, func(p path, d time.Duration) (latencies, int, error) {
		lat, fails := newConnLoad(p.echo, o.connRate, d)
		return lat, fails, nil
	}, func(r *result, lat latencies, cpu time.Duration) {
		r.connP50, r.connP99, r.cpuConn = lat.pct(50), lat.pct(99), cpu
	}); err != nil {
		return nil, err
	}
	return res, nil
}

func failed(err error, fails, ok int) error {
	if err != nil {
		return err
	}
	if fails > 0 || ok == 0 {
		return fmt.Errorf("%d requests failed, %d answered", fails, ok)
	}
	return nil
}

// sampleRSS keeps in peak the highest resident set of each proxy process
// while it runs and, when loaded is not nil, in its loadedKB the same with
// that sample's split in loadedAnonKB and loadedFileKB; the returned func
// stops it.
func sampleRSS(p path, peak []int64, loaded *result) func() {
	if len(p.pids) == 0 {
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	take := func() {
		for i, pid := range p.pids {
			u := usageOf(pid)
			peak[i] = max(peak[i], u.rssKB)
			if loaded != nil && u.rssKB > loaded.loadedKB[i] {
				loaded.loadedKB[i], loaded.loadedAnonKB[i], loaded.loadedFileKB[i] = u.rssKB, u.anonKB, u.fileKB
			}
		}
	}
	go func() {
		defer close(stopped)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				take()
			}
		}
	}()
	return func() {
		take()
		close(done)
		<-stopped
	}
}

// profile fetches a CPU profile of each agent over d when -profile is set.
// The returned stop waits for the profiles (a phase shorter than d, as bulk
// is, waits out the rest of d: a profile cut short is never written) for
// at most d and a few seconds more.
func profile(o options, p path, name string, d time.Duration) func() {
	if o.profile == "" || p.name != "moat" {
		return func() {}
	}
	_ = os.MkdirAll(o.profile, 0o755)
	secs := max(int(d.Seconds())-1, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second+5*time.Second)
	var wg sync.WaitGroup
	for i, at := range pprofAddrs(p) {
		if at == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", at, secs), nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			f, err := os.Create(filepath.Join(o.profile, fmt.Sprintf("%s-%s.pprof", sanitize(name), []string{"a", "b"}[i])))
			if err != nil {
				return
			}
			defer f.Close()
			_, _ = io.Copy(f, resp.Body)
		}()
	}
	return func() {
		wg.Wait()
		cancel()
	}
}

// pprofAddrs is where each of p's processes serves net/http/pprof (built
// with -profile), "" for one that does not.
func pprofAddrs(p path) []string {
	var out []string
	for _, pid := range p.pids {
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		m := regexp.MustCompile(`MOAT_PPROF=([^\x00]+)`).FindSubmatch(env)
		if m == nil {
			out = append(out, "")
			continue
		}
		out = append(out, string(m[1]))
	}
	return out
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, strings.ToLower(s))
}

// copyExecutable writes a copy of the executable src to dst.
func copyExecutable(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
}
