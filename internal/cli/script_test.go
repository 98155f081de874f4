//go:build unix

package cli

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"moat/internal/audit"
	"moat/internal/flow/ocsfcheck"
	"moat/internal/seal"
	"moat/internal/server"
	"moat/internal/store"
	"moat/internal/store/storetest"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// TestScripts runs testdata/script/*.txtar against the moat and moat-agent
// binaries built from cmd/moat and cmd/moat-agent, as an operator runs them: real processes, real sealed data
// directories, loopback listeners. Besides testscript's own commands
// ("exec moat …" and "exec moat-agent …" run the built binaries) the
// scripts have:
//
//	server NAME [RUN_FLAG...]
//	    init a control plane in $WORK/NAME (trust domain example.org, KEK
//	    in $WORK/NAME.kek) unless it exists, run "moat server run" on a port
//	    picked by the kernel, wait until it listens, and point the admin
//	    commands at it: MOAT_SERVER, MOAT_ADMIN_DIR and NAME_ADDR.
//	agent [-ready MSG] NODE [AGENT_FLAG...]
//	    make a join token for NODE on $MOAT_SERVER (unless $WORK/NODE holds
//	    its identity), run moat-agent with its data in $WORK/NODE and a
//	    free mesh port, and wait until it has its first snapshot ("agent
//	    ready"), or until it logs MSG. Sets NODE_MESH.
//	start [-ready MSG | -nowait] NAME moat|moat-agent ARGS...
//	    run moat (or moat-agent) in the background (stdout in $WORK/NAME.out, JSON logs in
//	    $WORK/NAME.log) and wait for the log line whose msg is MSG (default:
//	    the ready line of server run, agent, egress, moat-agent or gateway). Every string
//	    attribute of that line becomes NAME_ATTR (e.g. NAME_ADDR). With
//	    -nowait (for a command that logs nothing, such as flows --follow)
//	    it neither adds --log-format nor waits.
//	terminate [-int] NAME
//	               SIGTERM (-int: SIGINT, as Ctrl-C), then expect a clean
//	               exit (! terminate: a failure)
//	sigkill NAME   SIGKILL, without waiting for anything
//	cmdline NAME   print the command line of running process NAME as every
//	               local user may read it (/proc/PID/cmdline), one
//	               argument a line
//	backend NAME   an HTTP app on 127.0.0.1 (in the test process) answering
//	               "hello from NAME", or ?size=N bytes; sets NAME_PORT
//	traffic [-n CONNS] ADDR SEND RECV
//	    CONNS connections (default 1) to ADDR, each one POST of SEND body
//	    bytes answered with RECV bytes; sets TRAFFIC_SENT, TRAFFIC_RECEIVED
//	    and TRAFFIC_BYTES to what went over the wire in each direction and
//	    in all, counted at the client's socket. While ADDR refuses
//	    connections (an agent opens an upstream's port once the registry
//	    reaches it) it waits.
//	freeport VAR... set each VAR to a distinct free port below the kernel's
//	               ephemeral range (for ports a registration must name);
//	               freeport -run N VAR sets VAR to the first of N in a row
//	etcd NAME      run a real single-member etcd (storetest.StartEtcd) for
//	               the script's servers to share; sets NAME_URL
//	alertmanager NAME
//	    run Prometheus Alertmanager (Debian's prometheus-alertmanager) on a
//	    port picked by the kernel, with a throwaway configuration and
//	    storage; sets NAME_URL
//	httpget [-k] URL
//	               print the body of a GET (fails unless 200; -k trusts any
//	               server certificate)
//	token NODE VAR set VAR to a fresh join token for NODE
//	selfsigned DIR write DIR/edge.crt and DIR/edge.key, a certificate for
//	               127.0.0.1 (for a gateway's TLS)
//	tlsprobe [-claim ID SERVICE] ADDR
//	               a TLS handshake to ADDR without a client certificate,
//	               as any non-peer would make (! tlsprobe: it is refused);
//	               with -claim, with a self-signed one naming SPIFFE ID ID,
//	               asking a mesh port for SERVICE
//	waitserver ADDR
//	               wait until ADDR accepts connections
//	auditforge DIR I [plain]
//	               rewrite entry I of the (stopped) server's audit log in
//	               DIR and re-sign every checkpoint from there with the
//	               log's own key, unsealed from the store with the KEK
//	               DIR.kek: what someone holding the data directory and the
//	               KEK can do; with plain the new entry is unencrypted
//	grantrevive DIR GRANT
//	               clear the revocation of access grant GRANT in the
//	               (stopped) server's store in DIR, opened with the KEK
//	               DIR.kek: what someone holding the data directory and the
//	               KEK can do
//	gunzip GLOB    print the contents of the gzipped files GLOB matches, in
//	               name order (fails when none match)
//	ocsfcheck FILE [CLASS...]
//	               check every JSON line of FILE against OCSF 1.3.0
//	               (internal/flow/ocsfcheck), and that each CLASS uid occurs
//	expand FILE... replace $VAR and ${VAR} in each file with the script's
//	               variables (for configs that name ports and paths)
//	connect [!] PROXY HOST:PORT
//	               ask the HTTP CONNECT proxy PROXY for HOST:PORT from the
//	               test process (uid $UID) and print its status line; once
//	               granted, GET / of HOST through the tunnel and print the
//	               body (! connect: the proxy refuses)
//	capture VAR REGEXP
//	               set VAR to the first group REGEXP matches in the last
//	               command's stdout (fails when it matches nothing)
//	uniq VAR       set VAR to a name prefix ("mts…-") no other script or
//	               test process uses now (for network namespaces)
//	netns VAR      a network namespace of the script's own (loopback up),
//	               named in VAR: every moat the script runs from then on
//	               runs inside it (Linux, root; deleted at the end)
//	grantcert, grantdial, certexpired, hold, heldget
//	    break-glass session certificates and held connections: see
//	    script_access_test.go
//	eventually [-timeout D] [-poke ADDR] PATTERN PROG ARGS...
//	    rerun PROG (a program, httpget, or traffic ADDR SEND RECV: one
//	    connection, not waiting while ADDR refuses it, printing "ok" or
//	    "failed: ERR") (backing off from 100ms to 2s)
//	    until it exits 0 with
//	    stdout matching PATTERN (default timeout 60s); its last output is
//	    the command's output. "! eventually" waits until PROG exits 0
//	    with stdout that does not match. -poke ADDR makes one connection
//	    of traffic to ADDR (10 bytes each way, its outcome ignored) before
//	    each run: for what only a new connection produces, such as the
//	    record of a refused handshake.
//
// Besides testscript's conditions, [root] holds when the test runs as root.
// $SERVER is a free loopback address, for a server a script runs itself;
// $UID is the test process's uid (what a proxy sees of a harness client);
// $ACCESS_USER is the local account an agent runs break-glass shells as
// (--access-user): the test's own, or nobody when the test runs as root.
// Every process a script starts is stopped when it ends, and its log is
// shown when the script fails.
func TestScripts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the moat binary")
	}
	bin := moatBinary(t)
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script"),
		Setup:               func(env *testscript.Env) error { return scriptSetup(env, bin) },
		Cmds:                ScriptCmds(),
		Condition:           scriptCondition,
		RequireExplicitExec: true,
	})
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// moatBinary builds cmd/moat and cmd/moat-agent, side by side, once per
// test binary, and returns moat's path.
func moatBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "moat-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "moat")
		for _, prog := range []string{"moat", "moat-agent"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(dir, prog), "moat/cmd/"+prog)
			if prog == "moat-agent" {
				// As it is shipped (cmd/moat-agent's doc).
				cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			}
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build moat/cmd/%s: %v\n%s", prog, err, out)
				return
			}
		}
		buildErr = writeNetnsWrappers(dir)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// scriptSetup puts the built binaries first on PATH.
func scriptSetup(env *testscript.Env, bin string) error {
	path := filepath.Dir(bin) + string(os.PathListSeparator) + env.Getenv("PATH")
	env.Setenv("PATH", path)
	var names []string
	for _, kv := range env.Vars {
		if k, _, ok := strings.Cut(kv, "="); ok {
			names = append(names, k)
		}
	}
	// $SERVER is a free loopback address for scripts that run a server
	// on a port of their choosing.
	env.Setenv("SERVER", net.JoinHostPort("127.0.0.1", strconv.Itoa(freePorts(func(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }, 1)[0])))
	env.Setenv("UID", strconv.Itoa(os.Getuid()))
	access := "nobody"
	if os.Getuid() != 0 {
		u, err := user.Current()
		if err != nil {
			return err
		}
		access = u.Username
	}
	env.Setenv("ACCESS_USER", access)
	names = append(names, "SERVER", "UID", "ACCESS_USER", netnsVar)
	env.Values[envNamesKey{}] = names
	env.Values[procsKey{}] = &procs{m: map[string]*proc{}}
	env.Values[scriptTBKey{}] = env.T()
	env.Values[heldKey{}] = &heldConns{m: map[string]*heldConn{}}
	env.Values[etcdsKey{}] = map[string]*storetest.EtcdMember{}
	return nil
}

type envNamesKey struct{}
type scriptTBKey struct{}

func cmdEtcd(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("usage: etcd NAME | etcd pause|continue NAME")
	}
	if len(args) == 2 && (args[0] == "pause" || args[0] == "continue") {
		m := ts.Value(etcdsKey{}).(map[string]*storetest.EtcdMember)[args[1]]
		if m == nil {
			ts.Fatalf("etcd %s: no etcd %s started", args[0], args[1])
		}
		tb, _ := ts.Value(scriptTBKey{}).(testing.TB)
		if args[0] == "pause" {
			m.Pause(tb)
		} else {
			m.Continue(tb)
		}
		return
	}
	if len(args) != 1 {
		ts.Fatalf("usage: etcd NAME | etcd pause|continue NAME")
	}
	// The script's own test: etcd stops, and shows its output on a
	// failure, when the script ends.
	tb, ok := ts.Value(scriptTBKey{}).(testing.TB)
	if !ok {
		ts.Fatalf("etcd: the script runs without a testing.TB")
	}
	m := storetest.StartEtcdCluster(tb, 1)[0]
	ts.Value(etcdsKey{}).(map[string]*storetest.EtcdMember)[args[0]] = m
	// A member left paused would not stop when the test ends.
	ts.Defer(func() { m.Continue(tb) })
	ts.Setenv(args[0]+"_URL", m.URL)
}

// etcdsKey keys the etcd members a script started, by name.
type etcdsKey struct{}

type procsKey struct{}

// ScriptCmds are the harness commands described at TestScripts.
func ScriptCmds() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	return map[string]func(ts *testscript.TestScript, neg bool, args []string){
		"server":       cmdServer,
		"totp":         cmdTOTP,
		"mfa":          cmdMFA,
		"agent":        cmdAgent,
		"start":        cmdStart,
		"terminate":    cmdTerminate,
		"sigkill":      cmdSigkill,
		"cmdline":      cmdCmdline,
		"backend":      cmdBackend,
		"traffic":      cmdTraffic,
		"freeport":     cmdFreeport,
		"eventually":   cmdEventually,
		"expand":       cmdExpand,
		"alertmanager": cmdAlertmanager,
		"httpget":      cmdHTTPGet,
		"token":        cmdToken,
		"selfsigned":   cmdSelfSigned,
		"tlsprobe":     cmdTLSProbe,
		"ocsfcheck":    cmdOCSFCheck,
		"gunzip":       cmdGunzip,
		"waitserver":   scriptWaitServer,
		"auditforge":   scriptAuditForge,
		"grantrevive":  scriptGrantRevive,
		"netns":        cmdNetns,
		"connect":      cmdConnect,
		"uniq":         cmdUniq,
		"capture":      cmdCapture,
		"grantcert":    cmdGrantCert,
		"grantdial":    cmdGrantDial,
		"certexpired":  cmdCertExpired,
		"hold":         cmdHold,
		"heldget":      cmdHeldGet,
		"nodepost":     cmdNodePost,
		"etcd":         cmdEtcd,
	}
}

// moatEnvNames are the variables moat reads, passed to processes the
// harness starts besides the script's own environment.
var moatEnvNames = []string{"MOAT_SERVER", "MOAT_ADMIN_DIR", "MOAT_DATA_DIR", "MOAT_KEK", "MOAT_PASSPHRASE", "MOAT_LOG_FORMAT", "MOAT_JOIN_TOKEN"}

// scriptEnv is the environment of a process started by the harness.
func scriptEnv(ts *testscript.TestScript) []string {
	names, _ := ts.Value(envNamesKey{}).([]string)
	var env []string
	seen := map[string]bool{}
	for _, n := range append(append([]string{}, names...), moatEnvNames...) {
		if seen[n] {
			continue
		}
		seen[n] = true
		if v := ts.Getenv(n); v != "" {
			env = append(env, n+"="+v)
		}
	}
	return env
}

// runMoat runs the built moat to completion and returns its stdout.
func execMoat(ts *testscript.TestScript, args ...string) (string, error) {
	cmd := exec.Command(lookMoat(ts), args...)
	cmd.Env = scriptEnv(ts)
	cmd.Dir = ts.Getenv("WORK")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("moat %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func lookMoat(ts *testscript.TestScript) string { return lookProg(ts, "moat") }

// lookProg finds prog (moat or moat-agent) on the script's PATH.
func lookProg(ts *testscript.TestScript, prog string) string {
	for _, dir := range filepath.SplitList(ts.Getenv("PATH")) {
		p := filepath.Join(dir, prog)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	ts.Fatalf("no %s on PATH", prog)
	return ""
}

// proc is a moat process running in the background.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // set before done closes
}

type procs struct {
	mu sync.Mutex // guards m
	m  map[string]*proc
}

func scriptProcs(ts *testscript.TestScript) *procs { return ts.Value(procsKey{}).(*procs) }

// readyMsg is the log line that says a long-running command is serving.
func readyMsg(prog string, args []string) string {
	switch {
	case prog == "moat-agent":
		return "agent ready"
	case len(args) >= 2 && args[0] == "server" && args[1] == "run":
		return "control plane listening"
	case len(args) >= 1 && (args[0] == "agent" || args[0] == "egress"):
		return "agent ready"
	case len(args) >= 1 && args[0] == "gateway":
		return "gateway: serving"
	case len(args) >= 1 && args[0] == "ui":
		return "dashboard serving"
	}
	return ""
}

// startTimeout bounds how long a process may take to say it is ready.
const startTimeout = 90 * time.Second

func cmdStart(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! start")
	}
	ready := ""
	switch {
	case len(args) > 1 && args[0] == "-ready":
		ready, args = args[1], args[2:]
	case len(args) > 0 && args[0] == "-nowait":
		ready, args = noWait, args[1:]
	}
	if len(args) < 2 || (args[1] != "moat" && args[1] != "moat-agent") {
		ts.Fatalf("usage: start [-ready MSG | -nowait] NAME moat|moat-agent ARGS...")
	}
	startProg(ts, args[0], ready, args[1], args[2:])
}

// noWait is the ready line of a process nobody waits for.
const noWait = "\x00"

// startMoat runs moat ARGS in the background as NAME: see startProg.
func startMoat(ts *testscript.TestScript, name, ready string, args []string) map[string]string {
	return startProg(ts, name, ready, "moat", args)
}

// startProg runs prog (moat or moat-agent) ARGS in the background as NAME
// and waits until it logs ready (or the default ready line of its
// command); it returns the string attributes of that line.
func startProg(ts *testscript.TestScript, name, ready, prog string, args []string) map[string]string {
	if ready == "" {
		ready = readyMsg(prog, args)
	}
	if ready == "" {
		ts.Fatalf("start %s: no ready line known for %s %s: pass -ready MSG", name, prog, strings.Join(args, " "))
	}
	ps := scriptProcs(ts)
	ps.mu.Lock()
	_, dup := ps.m[name]
	ps.mu.Unlock()
	if dup {
		ts.Fatalf("start: %s is already running", name)
	}
	logPath := filepath.Join(ts.Getenv("WORK"), name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	ts.Check(err)
	outFile, err := os.OpenFile(filepath.Join(ts.Getenv("WORK"), name+".out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	ts.Check(err)
	pr, pw := io.Pipe()
	if ready != noWait {
		args = append(append([]string{}, args...), "--log-format=json")
	}
	cmd := exec.Command(lookProg(ts, prog), args...)
	cmd.Env = scriptEnv(ts)
	cmd.Dir = ts.Getenv("WORK")
	cmd.Stdout = outFile
	cmd.Stderr = io.MultiWriter(logFile, pw)
	ts.Check(cmd.Start())
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		pw.Close()
		logFile.Close()
		outFile.Close()
		close(p.done)
	}()
	ps.mu.Lock()
	ps.m[name] = p
	ps.mu.Unlock()
	ts.Defer(func() {
		_ = p.stop(ts, syscall.SIGTERM)
		ts.Logf("[%s log, last lines]\n%s", name, tail(logPath, 30))
	})

	if ready == noWait {
		go func() { _, _ = io.Copy(io.Discard, pr) }()
		return nil
	}
	found := make(chan map[string]string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			if sent {
				continue // drain, so the process never blocks on the pipe
			}
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) != nil || line["msg"] != ready {
				continue
			}
			attrs := map[string]string{}
			for k, v := range line {
				if s, ok := v.(string); ok {
					attrs[k] = s
				}
			}
			found <- attrs
			sent = true
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case attrs := <-found:
		for k, v := range attrs {
			if k == "msg" || k == "level" || k == "time" {
				continue
			}
			ts.Setenv(name+"_"+strings.ToUpper(k), v)
		}
		return attrs
	case <-p.done:
		ts.Fatalf("%s exited before it was ready (%v):\n%s", name, p.err, tail(p.log, 40))
	case <-time.After(startTimeout):
		ts.Fatalf("%s did not log %q within %s:\n%s", name, ready, startTimeout, tail(p.log, 40))
	}
	return nil
}

// stop signals p and waits for it (SIGKILL after a grace period); it
// reports whether p exited cleanly.
func (p *proc) stop(ts *testscript.TestScript, sig syscall.Signal) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		ts.Logf("%s did not stop within 60s of %v; killed", p.name, sig)
		return fmt.Errorf("%s did not stop on %v", p.name, sig)
	}
	return p.err
}

func takeProc(ts *testscript.TestScript, name string) *proc {
	ps := scriptProcs(ts)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p, ok := ps.m[name]
	if !ok {
		ts.Fatalf("no process %q", name)
	}
	delete(ps.m, name)
	return p
}

func cmdTerminate(ts *testscript.TestScript, neg bool, args []string) {
	sig := syscall.SIGTERM
	if len(args) == 2 && args[0] == "-int" {
		sig, args = syscall.SIGINT, args[1:]
	}
	if len(args) != 1 {
		ts.Fatalf("usage: terminate [-int] NAME")
	}
	err := takeProc(ts, args[0]).stop(ts, sig)
	switch {
	case err != nil && !neg:
		ts.Fatalf("%s: %v", args[0], err)
	case err == nil && neg:
		ts.Fatalf("%s exited cleanly, want a failure", args[0])
	}
}

func cmdSigkill(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: sigkill NAME")
	}
	p := takeProc(ts, args[0])
	_ = p.cmd.Process.Kill()
	<-p.done
}

func cmdCmdline(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: cmdline NAME")
	}
	ps := scriptProcs(ts)
	ps.mu.Lock()
	p, ok := ps.m[args[0]]
	ps.mu.Unlock()
	if !ok {
		ts.Fatalf("no process %q", args[0])
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.cmd.Process.Pid))
	ts.Check(err)
	ts.Stdout().Write(bytes.ReplaceAll(b, []byte{0}, []byte{'\n'}))
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func cmdServer(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 || neg {
		ts.Fatalf("usage: server NAME [RUN_FLAG...]")
	}
	name := args[0]
	data := filepath.Join(ts.Getenv("WORK"), name)
	fresh := false
	if _, err := os.Stat(data); os.IsNotExist(err) {
		if _, err := execMoat(ts, "server", "init", "--data-dir", data, "--trust-domain", "example.org"); err != nil {
			ts.Fatalf("%v", err)
		}
		fresh = true
	}
	run := append([]string{"server", "run", "--data-dir", data, "--listen", "127.0.0.1:0"}, args[1:]...)
	attrs := startMoat(ts, name, "", run)
	ts.Setenv("MOAT_SERVER", attrs["addr"])
	ts.Setenv("MOAT_ADMIN_DIR", data+".admin")
	if fresh {
		mfaEnrol(ts)
	}
}

func cmdAgent(ts *testscript.TestScript, neg bool, args []string) {
	ready := ""
	if len(args) > 1 && args[0] == "-ready" {
		ready, args = args[1], args[2:]
	}
	if len(args) < 1 || neg {
		ts.Fatalf("usage: agent [-ready MSG] NODE [AGENT_FLAG...]")
	}
	node := args[0]
	data := filepath.Join(ts.Getenv("WORK"), node)
	run := []string{"--data-dir", data, "--server", ts.Getenv("MOAT_SERVER"), "--node", node}
	if _, err := os.Stat(filepath.Join(data, "node")); os.IsNotExist(err) {
		tok, err := execMoat(ts, "token", "create", "--node", node)
		if err != nil {
			ts.Fatalf("%v", err)
		}
		run = append(run, "--join", strings.TrimSpace(tok))
	}
	mesh := "127.0.0.1:" + strconv.Itoa(freePorts(ts.Fatalf, 1)[0])
	run = append(append(run, "--listen", mesh), args[1:]...)
	startProg(ts, node, ready, "moat-agent", run)
}

func cmdBackend(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: backend NAME")
	}
	name := args[0]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		size := -1
		if v := r.URL.Query().Get("size"); v != "" {
			if size, err = strconv.Atoi(v); err != nil || size < 0 {
				http.Error(w, "bad size", http.StatusBadRequest)
				return
			}
		}
		if size < 0 {
			fmt.Fprintf(w, "hello from %s\n", name)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(size))
		_, _ = io.Copy(w, io.LimitReader(zeros{}, int64(size)))
	})}
	go srv.Serve(ln)
	ts.Defer(func() { srv.Close() })
	ts.Setenv(name+"_PORT", strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

// countingConn counts the bytes that cross a connection.
type countingConn struct {
	net.Conn
	mu        sync.Mutex // guards in and out
	in, out   int64
	onClosing func(in, out int64)
	closed    bool
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.in += int64(n)
	c.mu.Unlock()
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	c.out += int64(n)
	c.mu.Unlock()
	return n, err
}

func (c *countingConn) Close() error {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		c.onClosing(c.in, c.out)
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

func cmdTraffic(ts *testscript.TestScript, neg bool, args []string) {
	conns := 1
	if len(args) > 1 && args[0] == "-n" {
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 1 {
			ts.Fatalf("traffic: -n %q: want a positive count", args[1])
		}
		conns, args = n, args[2:]
	}
	if len(args) != 3 {
		ts.Fatalf("usage: traffic [-n CONNS] ADDR SEND RECV")
	}
	send, err1 := strconv.Atoi(args[1])
	recv, err2 := strconv.Atoi(args[2])
	if err1 != nil || err2 != nil || send < 0 || recv < 0 {
		ts.Fatalf("traffic: SEND and RECV are byte counts")
	}
	var mu sync.Mutex
	var sent, received int64
	var failures []string
	for i := 0; i < conns; i++ {
		done := make(chan struct{})
		tr := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialListening(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: c, onClosing: func(in, out int64) {
				mu.Lock()
				received += in
				sent += out
				mu.Unlock()
				close(done)
			}}, nil
		}}
		client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		resp, err := client.Post("http://"+args[0]+"/?size="+strconv.Itoa(recv), "application/octet-stream", io.LimitReader(zeros{}, int64(send)))
		if err == nil {
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || n != int64(recv) {
				err = fmt.Errorf("%s with %d body bytes, want 200 with %d", resp.Status, n, recv)
			}
		}
		tr.CloseIdleConnections()
		if err != nil {
			failures = append(failures, err.Error())
			continue
		}
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			ts.Fatalf("traffic: connection %d never closed", i)
		}
	}
	switch {
	case len(failures) > 0 && !neg:
		ts.Fatalf("traffic: %d of %d connections failed: %s", len(failures), conns, failures[0])
	case len(failures) < conns && neg:
		ts.Fatalf("traffic: %d of %d connections succeeded, want none", conns-len(failures), conns)
	}
	ts.Setenv("TRAFFIC_SENT", strconv.FormatInt(sent, 10))
	ts.Setenv("TRAFFIC_RECEIVED", strconv.FormatInt(received, 10))
	ts.Setenv("TRAFFIC_BYTES", strconv.FormatInt(sent+received, 10))
	fmt.Fprintf(ts.Stdout(), "%d connections, %d bytes sent, %d received\n", conns-len(failures), sent, received)
}

// trafficOnce makes one connection of traffic ADDR SEND RECV, without
// waiting while ADDR refuses it, and prints "ok" or "failed: ERR": for
// eventually, which waits for a path to open or to close.
func trafficOnce(ts *testscript.TestScript, args []string, w io.Writer) {
	if len(args) != 3 {
		ts.Fatalf("usage: eventually PATTERN traffic ADDR SEND RECV")
	}
	send, err1 := strconv.Atoi(args[1])
	recv, err2 := strconv.Atoi(args[2])
	if err1 != nil || err2 != nil || send < 0 || recv < 0 {
		ts.Fatalf("traffic: SEND and RECV are byte counts")
	}
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	resp, err := client.Post("http://"+args[0]+"/?size="+strconv.Itoa(recv), "application/octet-stream", io.LimitReader(zeros{}, int64(send)))
	if err == nil {
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || n != int64(recv) {
			err = fmt.Errorf("%s with %d body bytes, want 200 with %d", resp.Status, n, recv)
		}
	}
	if err != nil {
		fmt.Fprintf(w, "failed: %v\n", err)
		return
	}
	fmt.Fprintln(w, "ok")
}

// dialListening dials addr, waiting (bounded) while nothing listens there
// yet: an agent opens an upstream's port once the registry reaches it. A
// refused dial carried no byte, so no flow records it.
func dialListening(ctx context.Context, network, addr string) (net.Conn, error) {
	deadline := time.Now().Add(startTimeout)
	for {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil || !errors.Is(err, syscall.ECONNREFUSED) || time.Now().After(deadline) {
			return c, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func cmdFreeport(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) == 3 && args[0] == "-run" {
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 1 {
			ts.Fatalf("freeport -run %q: want a count", args[1])
		}
		ts.Setenv(args[2], strconv.Itoa(freePortRun(ts.Fatalf, n)))
		return
	}
	if len(args) == 0 || neg {
		ts.Fatalf("usage: freeport VAR... | freeport -run N VAR")
	}
	for i, p := range freePorts(ts.Fatalf, len(args)) {
		ts.Setenv(args[i], strconv.Itoa(p))
	}
}

func cmdCapture(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: capture VAR REGEXP")
	}
	re, err := regexp.Compile(`(?m)` + args[1])
	ts.Check(err)
	if re.NumSubexp() < 1 {
		ts.Fatalf("capture: %q has no group", args[1])
	}
	m := re.FindStringSubmatch(ts.ReadFile("stdout"))
	if m == nil {
		ts.Fatalf("capture: no match for %q in stdout", args[1])
	}
	ts.Setenv(args[0], m[1])
}

func cmdEventually(ts *testscript.TestScript, neg bool, args []string) {
	timeout := 60 * time.Second
	if len(args) > 1 && args[0] == "-timeout" {
		d, err := time.ParseDuration(args[1])
		if err != nil {
			ts.Fatalf("eventually: -timeout: %v", err)
		}
		timeout, args = d, args[2:]
	}
	var poke string
	if len(args) > 1 && args[0] == "-poke" {
		poke, args = args[1], args[2:]
	}
	if len(args) < 2 {
		ts.Fatalf("usage: [!] eventually [-timeout D] [-poke ADDR] PATTERN PROG ARGS...")
	}
	re, err := regexp.Compile(`(?m)` + args[0])
	ts.Check(err)
	deadline := time.Now().Add(timeout)
	pause := 100 * time.Millisecond
	var last string
	var lastErr error
	for {
		if poke != "" {
			trafficOnce(ts, []string{poke, "10", "10"}, io.Discard)
		}
		var out, errb bytes.Buffer
		switch args[1] {
		case "httpget":
			lastErr = httpGet(args[2:], &out)
		case "traffic":
			trafficOnce(ts, args[2:], &out)
		default:
			prog := args[1]
			if prog == "moat" || prog == "moat-agent" {
				prog = lookProg(ts, prog)
			}
			cmd := exec.Command(prog, args[2:]...)
			cmd.Env = scriptEnv(ts)
			cmd.Dir = ts.Getenv("WORK")
			cmd.Stdout, cmd.Stderr = &out, &errb
			lastErr = cmd.Run()
		}
		last = out.String()
		if lastErr == nil && re.MatchString(last) != neg {
			fmt.Fprint(ts.Stdout(), last)
			fmt.Fprint(ts.Stderr(), errb.String())
			return
		}
		if lastErr != nil {
			last += errb.String()
		}
		if time.Now().After(deadline) {
			what := "print"
			if neg {
				what = "succeed without printing"
			}
			ts.Fatalf("eventually: %s did not %s %q within %s (last: %v)\n%s", strings.Join(args[1:], " "), what, args[0], timeout, lastErr, last)
		}
		time.Sleep(pause)
		pause = min(2*pause, 2*time.Second)
	}
}

func cmdExpand(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) == 0 || neg {
		ts.Fatalf("usage: expand FILE...")
	}
	for _, f := range args {
		p := ts.MkAbs(f)
		b, err := os.ReadFile(p)
		ts.Check(err)
		ts.Check(os.WriteFile(p, []byte(os.Expand(string(b), ts.Getenv)), 0o600))
	}
}

func cmdAlertmanager(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: alertmanager NAME")
	}
	name := args[0]
	bin, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		ts.Fatalf("alertmanager: %v (Debian package prometheus-alertmanager)", err)
	}
	dir := filepath.Join(ts.Getenv("WORK"), name)
	ts.Check(os.MkdirAll(dir, 0o700))
	cfg := filepath.Join(dir, "alertmanager.yml")
	ts.Check(os.WriteFile(cfg, []byte("route:\n  receiver: none\nreceivers:\n  - name: none\n"), 0o600))
	logPath := filepath.Join(ts.Getenv("WORK"), name+".log")
	logFile, err := os.Create(logPath)
	ts.Check(err)
	pr, pw := io.Pipe()
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:0", "--cluster.listen-address=")
	cmd.Stdout = logFile
	cmd.Stderr = io.MultiWriter(logFile, pw)
	ts.Check(cmd.Start())
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		pw.Close()
		logFile.Close()
		close(p.done)
	}()
	ps := scriptProcs(ts)
	ps.mu.Lock()
	ps.m[name] = p
	ps.mu.Unlock()
	ts.Defer(func() { _ = p.stop(ts, syscall.SIGTERM) })
	addr := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`msg="Listening on" address=(\S+)`)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
				break
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case a := <-addr:
		ts.Setenv(name+"_URL", "http://"+a)
	case <-p.done:
		ts.Fatalf("alertmanager exited (%v):\n%s", p.err, tail(logPath, 20))
	case <-time.After(startTimeout):
		ts.Fatalf("alertmanager did not listen within %s:\n%s", startTimeout, tail(logPath, 20))
	}
}

func cmdHTTPGet(ts *testscript.TestScript, neg bool, args []string) {
	err := httpGet(args, ts.Stdout())
	if (err != nil) != neg {
		ts.Fatalf("httpget: %v", err)
	}
}

// httpGet writes the body of GET to w; an answer other than 200 is an
// error. args are [-k] [-A USER_AGENT] URL, USER_AGENT a Go string
// literal ("\u202e…").
func httpGet(args []string, w io.Writer) error {
	insecure, ua := false, ""
	if len(args) >= 2 && args[0] == "-k" {
		insecure, args = true, args[1:]
	}
	if len(args) >= 3 && args[0] == "-A" {
		var err error
		if ua, err = strconv.Unquote(args[1]); err != nil {
			return fmt.Errorf("httpget -A %s: %v", args[1], err)
		}
		args = args[2:]
	}
	if len(args) != 1 {
		return errors.New("usage: httpget [-k] [-A USER_AGENT] URL")
	}
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: insecure}}}
	req, err := http.NewRequest(http.MethodGet, args[0], nil)
	if err != nil {
		return err
	}
	if ua != "" {
		req.Header.Set("User-Agent", ua)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, io.LimitReader(resp.Body, 16<<20)); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", args[0], resp.Status)
	}
	return nil
}

func cmdToken(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 || neg {
		ts.Fatalf("usage: token NODE VAR")
	}
	tok, err := execMoat(ts, "token", "create", "--node", args[0])
	if err != nil {
		ts.Fatalf("%v", err)
	}
	ts.Setenv(args[1], strings.TrimSpace(tok))
}

func cmdSelfSigned(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: selfsigned DIR")
	}
	dir := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(dir, 0o700))
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ts.Check(err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "edge"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	ts.Check(err)
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	ts.Check(err)
	ts.Check(os.WriteFile(filepath.Join(dir, "edge.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	ts.Check(os.WriteFile(filepath.Join(dir, "edge.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600))
}

func cmdTLSProbe(ts *testscript.TestScript, neg bool, args []string) {
	cfg := &tls.Config{InsecureSkipVerify: true}
	if len(args) == 4 && args[0] == "-claim" {
		cfg.Certificates = []tls.Certificate{selfSignedClaim(ts, args[1])}
		cfg.ServerName, cfg.NextProtos = args[2], []string{"moat-tunnel/2"}
		args = args[3:]
	}
	if len(args) != 1 {
		ts.Fatalf("usage: tlsprobe [-claim ID SERVICE] ADDR")
	}
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", args[0], cfg)
	if err == nil {
		// TLS 1.3 reports a refused client certificate on the first read.
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = c.Read(make([]byte, 1))
		c.Close()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = nil
		}
	}
	switch {
	case err != nil && !neg:
		ts.Fatalf("tlsprobe %s: %v", args[0], err)
	case err == nil && neg:
		ts.Fatalf("tlsprobe %s: the handshake was accepted", args[0])
	}
}

// selfSignedClaim is a client certificate of no CA's naming SPIFFE ID id:
// what anyone can make to claim an identity.
func selfSignedClaim(ts *testscript.TestScript, id string) tls.Certificate {
	uri, err := url.Parse(id)
	ts.Check(err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ts.Check(err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), URIs: []*url.URL{uri},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	ts.Check(err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func cmdOCSFCheck(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 || neg {
		ts.Fatalf("usage: ocsfcheck FILE [CLASS...]")
	}
	b, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	seen := map[string]int{}
	var bad []string
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var head struct {
			Class int `json:"class_uid"`
		}
		_ = json.Unmarshal([]byte(line), &head)
		seen[strconv.Itoa(head.Class)]++
		if err := ocsfcheck.Check([]byte(line)); err != nil {
			bad = append(bad, fmt.Sprintf("line %d (class %d): %v\n  %s", i+1, head.Class, err, line))
		}
	}
	for _, want := range args[1:] {
		if seen[want] == 0 {
			bad = append(bad, fmt.Sprintf("no record of class %s (have %v)", want, seen))
		}
	}
	if len(bad) > 0 {
		ts.Fatalf("%d problems:\n%s", len(bad), strings.Join(bad, "\n"))
	}
	fmt.Fprintf(ts.Stdout(), "%d records conform to OCSF %s: %v\n", len(strings.Split(strings.TrimSpace(string(b)), "\n")), ocsfcheck.Version, seen)
}

func cmdGunzip(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: gunzip GLOB")
	}
	files, err := filepath.Glob(ts.MkAbs(args[0]))
	ts.Check(err)
	if len(files) == 0 {
		ts.Fatalf("gunzip: nothing matches %s", args[0])
	}
	sort.Strings(files)
	for _, p := range files {
		f, err := os.Open(p)
		ts.Check(err)
		zr, err := gzip.NewReader(f)
		if err != nil {
			f.Close()
			ts.Fatalf("gunzip %s: %v", p, err)
		}
		_, err = io.Copy(ts.Stdout(), zr)
		f.Close()
		if err != nil {
			ts.Fatalf("gunzip %s: %v", p, err)
		}
	}
}

func scriptWaitServer(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: waitserver ADDR")
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", args[0], time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s does not accept connections: %v", args[0], err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func scriptAuditForge(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 || len(args) > 3 || (len(args) == 3 && args[2] != "plain") {
		ts.Fatalf("usage: auditforge DIR INDEX [plain]")
	}
	dir := ts.MkAbs(args[0])
	at, err := strconv.ParseInt(args[1], 10, 64)
	ts.Check(err)
	kr, st := openStoppedStore(ts, dir)
	kv, err := st.Get(context.Background(), audit.DefaultStoreKey)
	st.Close()
	ts.Check(err)
	signer, err := note.NewSigner(string(kv.Value))
	ts.Check(err)

	logDir := filepath.Join(dir, audit.DirName)
	entries := readFramesFile(ts, filepath.Join(logDir, "entries"))
	cps := readFramesFile(ts, filepath.Join(logDir, "checkpoints"))
	var sealer audit.Sealer = kr.AEAD()
	if len(args) == 3 {
		sealer = nil
	}
	forged, err := audit.EncodeEntry(at, audit.Entry{Time: time.Now().UTC(), Actor: "mallory", Action: "policy.apply", Target: "allow-all", Result: "ok"}, sealer)
	ts.Check(err)
	entries[at] = forged
	// Recompute every stored hash, and re-sign the checkpoints of every
	// size past the rewritten entry.
	var hashes []tlog.Hash
	hr := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	})
	bySize := map[int64]int{}
	for i, cp := range cps {
		n, err := note.Open(cp, note.VerifierList())
		if u, ok := err.(*note.UnverifiedNoteError); ok {
			n = u.Note
		} else {
			ts.Check(err)
		}
		c, err := audit.ParseCheckpoint([]byte(n.Text))
		ts.Check(err)
		bySize[c.Size] = i
	}
	for i, e := range entries {
		hs, err := tlog.StoredHashes(int64(i), e, hr)
		ts.Check(err)
		hashes = append(hashes, hs...)
		if k, ok := bySize[int64(i+1)]; ok && int64(i) >= at {
			root, err := tlog.TreeHash(int64(i+1), hr)
			ts.Check(err)
			cps[k], err = audit.SignCheckpoint(audit.Checkpoint{Origin: signer.Name(), Size: int64(i + 1), Root: root}, signer)
			ts.Check(err)
		}
	}
	var hb []byte
	for _, h := range hashes {
		hb = append(hb, h[:]...)
	}
	ts.Check(os.WriteFile(filepath.Join(logDir, "entries"), joinFrames(entries), 0o600))
	ts.Check(os.WriteFile(filepath.Join(logDir, "hashes"), hb, 0o600))
	ts.Check(os.WriteFile(filepath.Join(logDir, "checkpoints"), joinFrames(cps), 0o600))
	ts.Check(os.WriteFile(filepath.Join(logDir, "checkpoint"), cps[len(cps)-1], 0o644))
}

// openStoppedStore opens the store of the stopped server whose data
// directory is dir, with its keyring unsealed by the KEK in dir.kek.
func openStoppedStore(ts *testscript.TestScript, dir string) (*seal.Keyring, store.Store) {
	kek, err := seal.OpenKeyFile(dir + ".kek")
	ts.Check(err)
	kr, err := seal.Open(seal.Config{Dir: dir, KEK: kek, NoCreate: true})
	ts.Check(err)
	st, err := store.OpenBolt(store.BoltConfig{Dir: dir, Sealer: server.NewStoreSealer(kr.AEAD())})
	ts.Check(err)
	return kr, st
}

// scriptGrantRevive clears the revocation of an access grant in a stopped
// server's store: what someone holding the data directory and the KEK can
// do, and what a client must not take at its word.
func scriptGrantRevive(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 || neg {
		ts.Fatalf("usage: grantrevive DIR GRANT")
	}
	_, st := openStoppedStore(ts, ts.MkAbs(args[0]))
	defer st.Close()
	ctx := context.Background()
	key := "access/grant/" + args[1]
	kv, err := st.Get(ctx, key)
	ts.Check(err)
	var rec map[string]any
	ts.Check(json.Unmarshal(kv.Value, &rec))
	if _, ok := rec["revoked"]; !ok {
		ts.Fatalf("grant %s is not revoked", args[1])
	}
	delete(rec, "revoked")
	delete(rec, "revoked_by")
	b, err := json.Marshal(rec)
	ts.Check(err)
	_, err = st.Put(ctx, key, b)
	ts.Check(err)
}

func readFramesFile(ts *testscript.TestScript, p string) [][]byte {
	b, err := os.ReadFile(p)
	ts.Check(err)
	var out [][]byte
	for len(b) >= 4 {
		n := int(binary.BigEndian.Uint32(b))
		out = append(out, bytes.Clone(b[4:4+n]))
		b = b[4+n:]
	}
	return out
}

func joinFrames(frames [][]byte) []byte {
	var out []byte
	for _, f := range frames {
		out = binary.BigEndian.AppendUint32(out, uint32(len(f)))
		out = append(out, f...)
	}
	return out
}
