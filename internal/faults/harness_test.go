package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"moat/internal/store/storetest"
	"moat/internal/testkit"
)

// moatBin is the moat binary built once for the package's tests.
var moatBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "moat-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	moatBin = filepath.Join(dir, "moat")
	build := exec.Command("go", "build", "-o", moatBin, "moat/cmd/moat")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building moat:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// waitLimit bounds every wait: a guard against hangs, not a speed claim.
const waitLimit = 60 * time.Second

var waitFor = testkit.WaitFor

var waitForDetail = testkit.WaitForDetail

// ports are below the kernel's ephemeral range, split between the packages
// that hand them out so that their test binaries, run in parallel by go
// test, never hand out the same one: this package takes 20000-25999,
// internal/cli 26000-31999.
var ports = testkit.NewPorts(20000, 26000)

// freePorts returns n consecutive loopback ports that were free a moment
// ago and that no other caller in this process was given.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	base, err := ports.Run(n)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int, n)
	for i := range out {
		out[i] = base + i
	}
	return out
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// logBuffer collects a process's output while the test reads it.
type logBuffer = testkit.Buffer

// proc is a child process.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *logBuffer
	done chan struct{}
}

// start runs bin with args; the process is stopped at cleanup and its
// output shown when the test failed.
func start(t *testing.T, name string, env []string, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, out: &logBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			out := p.out.String()
			if len(out) > 6000 {
				out = "…" + out[len(out)-6000:]
			}
			t.Logf("--- %s output:\n%s", name, out)
		}
	})
	return p
}

// kill ends the process with SIGKILL, as a crash or a pulled plug would.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Kill()
	<-p.done
}

// stop asks the process to end (SIGTERM), then kills it after a while.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.kill()
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// moat runs a moat command to its end and returns its output.
func moat(t *testing.T, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return moatFor(t, 2*waitLimit, env, args...)
}

// moatFor is moat with the command ended after limit.
func moatFor(t *testing.T, limit time.Duration, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, moatBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// mustMoat runs a moat command that must succeed.
func mustMoat(t *testing.T, env []string, args ...string) string {
	t.Helper()
	out, errOut, err := moat(t, env, args...)
	if err != nil {
		t.Fatalf("moat %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return strings.TrimSpace(out)
}

func endpoints(ms []*storetest.EtcdMember) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.URL)
	}
	return out
}

// scrape returns the lines of a Prometheus text endpoint, or nil.
func scrape(metricsAddr string) []string {
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.Split(string(b), "\n")
}

// sample parses the value of one exposition line after its series.
func sample(rest string) (float64, bool) {
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return 0, false
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	return v, err == nil
}

// metric reads one sample: the line of series (name and labels as
// exposed), or -1.
func metric(t *testing.T, metricsAddr, series string) float64 {
	t.Helper()
	for _, line := range scrape(metricsAddr) {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			if v, ok := sample(rest); ok {
				return v
			}
		}
	}
	return -1
}

// metricSum adds up every series of the metric name (any labels), or
// returns -1 when the endpoint cannot be read.
func metricSum(t *testing.T, metricsAddr, name string) float64 {
	t.Helper()
	lines := scrape(metricsAddr)
	if lines == nil {
		return -1
	}
	sum := 0.0
	for _, line := range lines {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		if v, ok := sample(rest[strings.LastIndex(rest, "}")+1:]); ok {
			sum += v
		}
	}
	return sum
}

// leader returns the member that leads the cluster now, asking each live
// member's status through etcd's JSON gateway.
func leader(t *testing.T, ms []*storetest.EtcdMember) *storetest.EtcdMember {
	t.Helper()
	type status struct {
		Header struct {
			MemberID string `json:"member_id"`
		} `json:"header"`
		Leader string `json:"leader"`
	}
	var found *storetest.EtcdMember
	waitFor(t, "an etcd leader", func() bool {
		ids := map[string]*storetest.EtcdMember{}
		lead := ""
		for _, m := range ms {
			if m.Exited() {
				continue
			}
			resp, err := http.Post(m.URL+"/v3/maintenance/status", "application/json", strings.NewReader("{}"))
			if err != nil {
				continue
			}
			var st status
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if err != nil {
				continue
			}
			ids[st.Header.MemberID] = m
			if st.Leader != "" && st.Leader != "0" {
				lead = st.Leader
			}
		}
		found = ids[lead]
		return found != nil
	})
	return found
}
