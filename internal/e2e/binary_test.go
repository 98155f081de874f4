package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"moat/internal/netlab"
	"moat/internal/testkit"
)

// The built moat binary, shared by the tests of this package that run
// real processes.
var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

// moatBinary builds cmd/moat once and returns its path.
func moatBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "moat-e2e-bin")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "moat")
		out, err := exec.Command("go", "build", "-o", binPath, "moat/cmd/moat").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// cmdEnv is the environment of the moat processes a test runs.
type cmdEnv map[string]string

func (e cmdEnv) list() []string {
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range e {
		out = append(out, k+"="+v)
	}
	return out
}

func (e cmdEnv) with(k, v string) cmdEnv {
	out := cmdEnv{}
	for a, b := range e {
		out[a] = b
	}
	out[k] = v
	return out
}

// result is a finished command.
type result struct {
	code        int
	out, errOut string
}

// moatRun runs the binary with args to completion (a minute at most),
// stdin as its standard input.
func moatRun(t *testing.T, env cmdEnv, stdin string, args ...string) result {
	t.Helper()
	// Build first: the minute is the command's, not the build's (a first
	// build on a busy host takes longer than that).
	bin := moatBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env.list()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("moat %s: %v", strings.Join(args, " "), err)
	}
	return result{code: code, out: out.String(), errOut: errb.String()}
}

// must runs a command that must succeed and returns its trimmed stdout.
func must(t *testing.T, env cmdEnv, args ...string) string {
	t.Helper()
	r := moatRun(t, env, "", args...)
	if r.code != 0 {
		t.Fatalf("moat %s: exit %d: %s%s", strings.Join(args, " "), r.code, r.out, r.errOut)
	}
	return strings.TrimSpace(r.out)
}

// proc is a moat process running in the background.
type proc struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	errb *lockedBuffer
	done chan struct{}
	code int
}

// moatStart starts the binary with args; the test's end stops it.
func moatStart(t *testing.T, env cmdEnv, stdin io.Reader, args ...string) *proc {
	t.Helper()
	return moatStartUnder(t, env, stdin, nil, args...)
}

// moatStartUnder is moatStart with the binary run by wrap (setpriv and its
// options, say); a nil wrap runs it directly.
func moatStartUnder(t *testing.T, env cmdEnv, stdin io.Reader, wrap []string, args ...string) *proc {
	t.Helper()
	argv := append(append(append([]string{}, wrap...), moatBinary(t)), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env.list()
	cmd.Stdin = stdin
	p := &proc{cmd: cmd, out: &lockedBuffer{}, errb: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := cmd.Wait()
		p.code = 0
		if ee, ok := err.(*exec.ExitError); ok {
			p.code = ee.ExitCode()
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("moat %s stderr:\n%s", args[0], p.errb.String())
		}
	})
	return p
}

// stop ends the process (SIGTERM, then SIGKILL) and waits for it.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// listeners returns the TCP addresses pid listens on.
func listeners(t *testing.T, pid int) []netip.AddrPort {
	t.Helper()
	out, err := netlab.Listening(pid)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var waitUntil = testkit.WaitWithin
