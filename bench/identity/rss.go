package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"moat/internal/api"
)

// benchRSS starts a control plane and one agent as separate processes of the
// real binary, lets the agent settle, and samples its VmRSS.
func benchRSS(ctx context.Context, o options) error {
	w, err := os.MkdirTemp(o.dir, "identitybench-rss-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(w)
	bin := o.moatBin
	if bin == "" {
		bin = filepath.Join(w, "moat")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/moat")
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("go build ./cmd/moat (run from the module root): %w", err)
		}
	}
	// The admin credentials live beside the data directory (DIR.admin), as
	// moat server init writes them.
	srvDir, agentDir, adminDir := filepath.Join(w, "server"), filepath.Join(w, "agent"), filepath.Join(w, "server.admin")
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	apiAddr, meshAddr, upPort := loopback(ports[0]), loopback(ports[1]), ports[2]

	if out, err := exec.CommandContext(ctx, bin, "server", "init", "--data-dir", srvDir, "--trust-domain", "example.org").CombinedOutput(); err != nil {
		return fmt.Errorf("server init: %w: %s", err, out)
	}
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			stopProc(p)
		}
	}()
	srv, err := startProc(ctx, bin, filepath.Join(w, "server.log"), "server", "run", "--data-dir", srvDir, "--listen", apiAddr)
	if err != nil {
		return err
	}
	procs = append(procs, srv)

	admin := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, bin, append(args, "--server", apiAddr, "--output", "json")...)
		cmd.Env = append(os.Environ(), "MOAT_ADMIN_DIR="+adminDir)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("moat %s: %w: %s", strings.Join(args, " "), err, errb.Bytes())
		}
		return out.Bytes(), nil
	}
	for start := time.Now(); ; {
		if _, err = admin("svc", "list"); err == nil {
			break
		}
		if time.Since(start) > 20*time.Second || ctx.Err() != nil {
			return fmt.Errorf("the control plane did not answer: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Join tokens and registrations need a fresh second factor: enrol an
	// authenticator and log in, as an administrator does after init; the
	// session is kept in the admin directory, where the CLI finds it.
	mc, err := mfaAdmin(ctx, apiAddr, adminDir)
	if err != nil {
		return err
	}
	defer mc.Close()
	var tok api.TokenResponse
	if err := mc.Call(ctx, http.MethodPost, api.PathTokens, api.TokenRequest{Node: "n1"}, &tok); err != nil {
		return fmt.Errorf("token create: %w", err)
	}
	// Two services on the node, one calling the other, so the agent holds
	// two SVIDs and one outbound listener, as a small real node would.
	if _, err := admin("svc", "register", "--node", "n1", "--name", "db", "--port", "5432"); err != nil {
		return err
	}
	if _, err := admin("svc", "register", "--node", "n1", "--name", "web", "--port", "8080", "--upstream", "db:"+strconv.Itoa(upPort)); err != nil {
		return err
	}
	agent, err := startProc(ctx, bin, filepath.Join(w, "agent.log"), "agent", "--data-dir", agentDir, "--server", apiAddr,
		"--join", tok.Token, "--node", "n1", "--listen", meshAddr)
	if err != nil {
		return err
	}
	procs = append(procs, agent)

	fmt.Printf("\n== idle agent RSS: working state, settle %s, then %d samples 1 s apart\n", o.rssSettle, o.rssSamples)
	// The agent must have done its work before it is measured idle:
	// joined, fetched both SVIDs and opened the outbound listener for
	// web's upstream. A loaded machine takes longer to get there; the
	// wait is bounded.
	state := func() (joined bool, svids int, listening bool, log []byte) {
		log, _ = os.ReadFile(filepath.Join(w, "agent.log"))
		joined = bytes.Contains(log, []byte(`msg=joined`))
		svids = bytes.Count(log, []byte(`msg="SVID renewed"`))
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(upPort), time.Second); err == nil {
			c.Close()
			listening = true
		}
		return
	}
	for start := time.Now(); ; {
		joined, svids, listening, log := state()
		if joined && svids >= 2 && listening {
			break
		}
		if time.Since(start) > 2*time.Minute || ctx.Err() != nil {
			fmt.Printf("agent state: joined %v, SVIDs issued %d, outbound listener up %v\nagent log:\n%s\n", joined, svids, listening, log)
			return errors.New("the agent did not reach its working state")
		}
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(o.rssSettle):
	}
	var agentKB, serverKB []float64
	var hwm float64
	for i := 0; i < o.rssSamples; i++ {
		a, ah, aparts, err := procMem(agent.Process.Pid)
		if err != nil {
			log, _ := os.ReadFile(filepath.Join(w, "agent.log"))
			return fmt.Errorf("agent: %w; its log:\n%s", err, log)
		}
		s, _, _, err := procMem(srv.Process.Pid)
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		agentKB, serverKB, hwm = append(agentKB, a), append(serverKB, s), max(hwm, ah)
		fmt.Printf("sample %d: agent VmRSS %.1f MB (%s), server VmRSS %.1f MB\n", i+1, a/1024, strings.Join(aparts, ", "), s/1024)
		if i+1 < o.rssSamples {
			time.Sleep(time.Second)
		}
	}
	// It still works after the samples.
	joined, svids, listening, log := state()
	m := median(agentKB) / 1024
	fmt.Printf("agent VmRSS median %.1f MB (peak VmHWM %.1f MB), server VmRSS median %.1f MB\n", m, hwm/1024, median(serverKB)/1024)
	fmt.Printf("agent state: joined %v, SVIDs issued %d, outbound listener up %v\n", joined, svids, listening)
	if !joined || svids < 2 || !listening {
		fmt.Printf("agent log:\n%s\n", log)
		return errors.New("the agent did not reach its working state")
	}
	fmt.Printf("target: agent <= 20 MB idle: %s\n", verdict(m <= 20))
	return nil
}

func startProc(ctx context.Context, bin, logPath string, args ...string) (*exec.Cmd, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group, so an interrupt of the harness does not reach
	// it before stopProc does.
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	go func() { _ = cmd.Wait(); f.Close() }()
	return cmd, nil
}

// stopProc asks the process to stop, then kills it after 5 s.
func stopProc(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	for i := 0; i < 50; i++ {
		if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
}

// procMem returns VmRSS and VmHWM of pid in kB, and the split of the
// resident set into anonymous memory and mapped files (the binary's pages).
func procMem(pid int) (rss, hwm float64, parts []string, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, nil, err
	}
	if bytes.Contains(b, []byte("State:\tZ")) {
		return 0, 0, nil, errors.New("the process has exited")
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = v
		case "VmHWM:":
			hwm = v
		}
		if f[0] == "RssAnon:" || f[0] == "RssFile:" {
			parts = append(parts, fmt.Sprintf("%s %.1f MB", strings.TrimSuffix(f[0], ":"), v/1024))
		}
	}
	return rss, hwm, parts, nil
}

// freePorts returns n distinct loopback ports that were free a moment ago,
// from 10000-13999: below the kernel's ephemeral range, where the ports
// other programs get from ":0" (their listeners and the source ports of
// their connections) are never handed out. The server, the agent and its
// outbound listener bind them only after "server init" and a start, and
// the bench smoke run (bench/smoke_test.go) runs this harness while go
// test runs other packages' tests; a port from 127.0.0.1:0, closed and
// named later, could meanwhile be taken by any of their connections. The
// range is bench/mesh's and bench/gateway's, which the smoke run starts
// only after this harness has stopped its processes; no test package's
// ports overlap it (internal/testkit's Ports lists theirs).
func freePorts(n int) ([]int, error) {
	var out []int
	for attempt := 0; len(out) < n && attempt < 2000; attempt++ {
		p := 10000 + rand.IntN(4000)
		if slices.Contains(out, p) {
			continue
		}
		l, err := net.Listen("tcp", loopback(p))
		if err != nil {
			continue
		}
		l.Close()
		out = append(out, p)
	}
	if len(out) < n {
		return nil, fmt.Errorf("found only %d free ports in 10000-13999", len(out))
	}
	return out, nil
}

func loopback(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }
