package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
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
	srvDir, agentDir, adminDir := filepath.Join(w, "server"), filepath.Join(w, "agent"), filepath.Join(w, "server", "admin")
	apiAddr, meshAddr, upPort := freeAddr(), freeAddr(), freePort()

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
	var tokOut []byte
	for start := time.Now(); ; {
		if tokOut, err = admin("token", "create", "--node", "n1"); err == nil {
			break
		}
		if time.Since(start) > 20*time.Second || ctx.Err() != nil {
			return fmt.Errorf("the control plane did not answer: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(tokOut, &tok); err != nil || tok.Token == "" {
		return fmt.Errorf("token create printed %q", tokOut)
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

	fmt.Printf("\n== idle agent RSS: settle %s, then %d samples 1 s apart\n", o.rssSettle, o.rssSamples)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(o.rssSettle):
	}
	var agentKB, serverKB []float64
	var hwm float64
	for i := 0; i < o.rssSamples; i++ {
		a, ah, err := procMem(agent.Process.Pid)
		if err != nil {
			log, _ := os.ReadFile(filepath.Join(w, "agent.log"))
			return fmt.Errorf("agent: %w; its log:\n%s", err, log)
		}
		s, _, err := procMem(srv.Process.Pid)
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		agentKB, serverKB, hwm = append(agentKB, a), append(serverKB, s), max(hwm, ah)
		fmt.Printf("sample %d: agent VmRSS %.1f MB, server VmRSS %.1f MB\n", i+1, a/1024, s/1024)
		if i+1 < o.rssSamples {
			time.Sleep(time.Second)
		}
	}
	// The agent must have done its work: joined and fetched both SVIDs.
	log, _ := os.ReadFile(filepath.Join(w, "agent.log"))
	joined := bytes.Contains(log, []byte("joined"))
	m := median(agentKB) / 1024
	fmt.Printf("agent VmRSS median %.1f MB (peak VmHWM %.1f MB), server VmRSS median %.1f MB; agent log shows join: %v\n",
		m, hwm/1024, median(serverKB)/1024, joined)
	fmt.Printf("target: agent <= 20 MB idle: %s\n", verdict(m <= 20))
	if !joined {
		fmt.Printf("agent log:\n%s\n", log)
	}
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
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
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

// procMem returns VmRSS and VmHWM of pid in kB.
func procMem(pid int) (rss, hwm float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	if bytes.Contains(b, []byte("State:\tZ")) {
		return 0, 0, errors.New("the process has exited")
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
	}
	return rss, hwm, nil
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func freeAddr() string { return "127.0.0.1:" + strconv.Itoa(freePort()) }
