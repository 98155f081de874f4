package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"moat/internal/agent"
	"moat/internal/api"
	"moat/internal/testkit"
)

// workloadFloodEnv makes the test binary, started again as another uid by
// TestWorkloadAPIFlood, open workloadFlood connections to the Workload API
// socket it names, say how many the agent kept ("HELD n CLOSED m") and
// hold them until its standard input closes.
const workloadFloodEnv = "MOAT_E2E_WORKLOAD_FLOOD"

const workloadFlood = 1024

// TestWorkloadAPIFlood: any local user may connect to the Workload API
// socket, and the agent accepted every connection and kept it for as long
// as its client wished: one unprivileged user opening a thousand and
// holding them took the agent's descriptors, so that another uid's
// workload could not fetch its SVID (nor the mesh accept a tunnel). The
// agent now holds at most 256 connections of one uid (1,024 in all) and
// closes the rest at once.
func TestWorkloadAPIFlood(t *testing.T) {
	if sock := os.Getenv(workloadFloodEnv); sock != "" {
		floodWorkloadAPI(sock)
		return
	}
	setpriv, bin := asOtherUID(t)
	dir := filepath.Dir(bin) // other uids reach the sockets in it (asOtherUID)

	c := newCluster(t)
	sock := filepath.Join(dir, "n1.sock")
	a := c.startAgent("n1", func(cfg *agent.Config) { cfg.Socket = sock })
	web := 65534
	c.register(api.Registration{Name: "web", Node: "n1", Port: 8080, UID: &web})
	eventually(t, "n1's SVID for web", func() bool { return svidOf(a, "web") != nil })

	// The agent runs in this process: room for what it and the control
	// plane open meanwhile and for the connections one uid may hold, not
	// for the whole flood.
	testkit.LimitOpenFiles(t, 512)

	t.Logf("uid 2 opens %d connections to the Workload API and holds them", workloadFlood)
	ctx, cancel := context.WithTimeout(context.Background(), 2*testkit.WaitLimit)
	defer cancel()
	flood := exec.CommandContext(ctx, setpriv, "--reuid=2", "--regid=2", "--clear-groups", bin, "-test.run=^TestWorkloadAPIFlood$")
	flood.Env = append(os.Environ(), workloadFloodEnv+"="+sock)
	hold, err := flood.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := flood.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	flood.Stderr = os.Stderr
	if err := flood.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		hold.Close()
		if err := flood.Wait(); err != nil {
			t.Errorf("flooding client: %v", err)
		}
	}()
	var held, closed int
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if _, err := fmt.Sscanf(sc.Text(), "HELD %d CLOSED %d", &held, &closed); err == nil {
			break
		}
	}
	if held+closed != workloadFlood {
		t.Fatalf("the flooding client said nothing of its connections (%v)", sc.Err())
	}
	t.Logf("the agent kept %d of them and closed %d at once", held, closed)

	t.Log("meanwhile uid 65534 fetches its SVID")
	vctx, vcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer vcancel()
	victim := exec.CommandContext(vctx, setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", bin, "-test.run=^TestWorkloadAPIPerUID$")
	victim.Env = append(os.Environ(), workloadClientEnv+"="+sock)
	got, err := victim.CombinedOutput()
	if err != nil {
		t.Fatalf("client as uid 65534: %v\n%s", err, got)
	}
	lines := strings.Split(strings.TrimSpace(string(got)), "\n")
	if !slices.Contains(lines, "ID spiffe://example.org/svc/web") {
		t.Errorf("uid 65534 got %q during the flood, want its SVID", got)
	}
	if held > 256 {
		t.Errorf("the agent holds %d Workload API connections of one uid, more than 256", held)
	}
}

// floodWorkloadAPI is the flooding client: it opens workloadFlood
// connections, sends nothing, tells which the agent closed within a
// couple of seconds, and holds the rest until its standard input closes.
func floodWorkloadAPI(sock string) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	var conns []net.Conn
	for range workloadFlood {
		c, err := net.Dial("unix", sock)
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			os.Exit(1)
		}
		conns = append(conns, c)
	}
	var closedN atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(2 * time.Second)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetReadDeadline(deadline)
			if _, err := c.Read(make([]byte, 1)); err == io.EOF {
				closedN.Add(1)
			}
		}()
	}
	wg.Wait()
	fmt.Printf("HELD %d CLOSED %d\n", int64(len(conns))-closedN.Load(), closedN.Load())
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
}
