//go:build linux

package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"moat/internal/flow"
	"moat/internal/netlab"
)

// TestDevBinaryFirstFlowAndStop runs the built moat dev as a user does.
// It prints that it is running only once the demo path works: the demo's
// own start left no denied or not-ready flow, and the first flow after the
// ready line is allowed. Every port it listens on comes from --port-base,
// the dashboard's included. SIGINT stops it, its process group is gone and
// none of its ports is still bound.
func TestDevBinaryFirstFlowAndStop(t *testing.T) {
	bin := moatBinary(t)
	base := freePortRun(t.Fatalf, devPortCount)
	p := defaultDevPorts(base)
	dir := filepath.Join(t.TempDir(), "dev")
	cmd := exec.Command(bin, "dev", "--port-base", strconv.Itoa(base), "--data-dir", dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &syncBuffer{}
	var stderr syncBuffer
	cmd.Stdout, cmd.Stderr = out, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	exited := false
	t.Cleanup(func() {
		if !exited {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})

	deadline := time.After(startTimeout)
	for !strings.Contains(out.String(), "moat dev is running") {
		select {
		case err := <-done:
			exited = true
			t.Fatalf("moat dev exited before it was running (%v):\n%s\n%s", err, out.String(), stderr.String())
		case <-deadline:
			t.Fatalf("moat dev did not say it is running within %v:\n%s\n%s", startTimeout, out.String(), stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}

	t.Log("the demo's own start made no refused flow")
	for _, r := range readFlowLines(t, filepath.Join(dir, "flows.jsonl")) {
		code := ""
		if r.Unmapped != nil {
			code = r.Unmapped.ReasonCode
		}
		if r.Verdict() != flow.VerdictAllow {
			t.Errorf("flow before the ready line: %s, reason %q (%s)", r.Verdict(), code, r.Message)
		}
	}

	t.Log("the first flow after the ready line is allowed")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get("http://" + loop(p.Frontend) + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"served_by":"db"`) {
		t.Fatalf("frontend → api → db: %s %s", resp.Status, body)
	}
	var first string
	waitFor(t, "the first flow line", func() bool {
		_, after, ok := strings.Cut(out.String(), "Flows (also in ")
		if !ok {
			return false
		}
		lines := strings.Split(after, "\n")
		if len(lines) < 3 { // the header's end, a flow line, its newline
			return false
		}
		first = lines[1]
		return true
	})
	if !strings.Contains(first, " ALLOW ") {
		t.Fatalf("first flow after the ready line: %q", first)
	}

	t.Log("every listener is on a port from --port-base")
	m := regexp.MustCompile(`dashboard http://127\.0\.0\.1:(\d+)/`).FindStringSubmatch(out.String())
	if m == nil || m[1] != strconv.Itoa(p.Dashboard) {
		t.Fatalf("dashboard address %q, want port %d", m, p.Dashboard)
	}
	ls, err := netlab.Listening(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	// A loopback listener is held on 127.0.0.1 and on ::1 (mesh.ListenLoopback):
	// a port on ::1 must be the twin of one on 127.0.0.1.
	ports := map[uint16]bool{}
	for _, l := range ls {
		if port := int(l.Port()); port < base || port >= base+devPortCount {
			t.Errorf("moat dev listens on %v, outside --port-base %d..%d", l, base, base+devPortCount-1)
		}
		if l.Addr().Is4() {
			ports[l.Port()] = true
		}
	}
	for _, l := range ls {
		if l.Addr().Is6() && (l.Addr() != netip.IPv6Loopback() || !ports[l.Port()]) {
			t.Errorf("moat dev listens on %v, which is no IPv6 twin of a port it holds on 127.0.0.1", l)
		}
	}
	if len(ports) != devPortCount {
		t.Errorf("moat dev listens on %v, want the %d ports from %d", ls, devPortCount, base)
	}

	t.Log("SIGINT stops it, with nothing left behind")
	start := time.Now()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		exited = true
		if err != nil {
			t.Fatalf("moat dev after SIGINT: %v\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("moat dev did not exit within 60s of SIGINT")
	}
	t.Logf("moat dev exited %v after SIGINT", time.Since(start).Round(time.Millisecond))
	if err := syscall.Kill(-cmd.Process.Pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("a process of moat dev's group outlived it (kill -0: %v)", err)
	}
	for port := base; port < base+devPortCount; port++ {
		l, err := net.Listen("tcp", loop(port))
		if err != nil {
			t.Errorf("port %d still bound after moat dev exited: %v", port, err)
			continue
		}
		l.Close()
	}
	if !strings.Contains(out.String(), "moat dev: stopping") {
		t.Errorf("no stop message:\n%s", out.String())
	}
}

// readFlowLines reads a JSON-lines flow file.
func readFlowLines(t *testing.T, path string) []flow.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []flow.Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var r flow.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, r)
	}
	return out
}

// TestDevJSONFlowsShowClientTextAsText: what a client of moat dev's
// gateway writes reaches the terminal moat dev --json streams to as text.
// A User-Agent may hold C1 controls and direction overrides (HTTP admits
// those bytes); the line shows them as \u escapes.
func TestDevJSONFlowsShowClientTextAsText(t *testing.T) {
	bin := moatBinary(t)
	base := freePortRun(t.Fatalf, devPortCount)
	p := defaultDevPorts(base)
	cmd := exec.Command(bin, "dev", "--port-base", strconv.Itoa(base), "--json")
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &syncBuffer{}
	var stderr syncBuffer
	cmd.Stdout, cmd.Stderr = out, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	waitFor(t, "moat dev running", func() bool { return strings.Contains(out.String(), "moat dev is running") })

	t.Log("a client sends an attack with a User-Agent that would act on a terminal")
	err := httpGet([]string{"-k", "-A", `"\u009b31m\u202eevil"`, "https://" + loop(p.HTTPS) + "/?q=%3Cscript%3Ealert(1)%3C/script%3E"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("the attack: %v, want 403 from the WAF", err)
	}
	waitFor(t, "the WAF's event on the terminal", func() bool { return strings.Contains(out.String(), "evil") })
	if o := out.String(); strings.ContainsAny(o, "\u009b\u202e") || !strings.Contains(o, `"user_agent":"\u009b31m\u202eevil"`) {
		t.Fatalf("the User-Agent reached the terminal as it was sent, not as escapes:\n%q", o[strings.Index(o, "Flows"):])
	}
}
