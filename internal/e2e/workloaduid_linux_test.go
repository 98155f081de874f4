package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"moat/internal/agent"
	"moat/internal/api"
)

// workloadClientEnv makes the test binary, started again as another uid by
// TestWorkloadAPIPerUID, fetch SVIDs from the Workload API socket it names
// and print each SPIFFE ID ("ID ...") or the refusal ("ERR ...").
const workloadClientEnv = "MOAT_E2E_WORKLOAD_SOCKET"

// TestWorkloadAPIPerUID: a local process asks the node's Workload API for
// every SVID it can get. A service registered with --uid is served to that
// uid alone; one registered without is served to every local user, unless
// the agent runs with require_uid, which serves none of them.
func TestWorkloadAPIPerUID(t *testing.T) {
	if sock := os.Getenv(workloadClientEnv); sock != "" {
		fetchAndPrint(sock)
		return
	}
	setpriv, bin := asOtherUID(t)
	dir := filepath.Dir(bin) // other uids reach the sockets in it (asOtherUID)
	fetchAs := func(uid int, sock string) []string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		id := fmt.Sprint(uid)
		cmd := exec.CommandContext(ctx, setpriv, "--reuid="+id, "--regid="+id, "--clear-groups", bin, "-test.run=^TestWorkloadAPIPerUID$")
		cmd.Env = append(os.Environ(), workloadClientEnv+"="+sock)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("client as uid %d: %v\n%s", uid, err, out)
		}
		var got []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "ID ") || strings.HasPrefix(l, "ERR ") {
				got = append(got, l)
			}
		}
		slices.Sort(got)
		return got
	}
	uid := func(n int) *int { return &n }

	c := newCluster(t)
	sock1 := filepath.Join(dir, "n1.sock")
	a1 := c.startAgent("n1", func(cfg *agent.Config) { cfg.Socket = sock1 })
	c.register(api.Registration{Name: "db", Node: "n1", Port: 5432, UID: uid(1)})
	c.register(api.Registration{Name: "web", Node: "n1", Port: 8080, UID: uid(65534)})
	c.register(api.Registration{Name: "cron", Node: "n1", Port: 9000})
	eventually(t, "n1's SVIDs", func() bool { return svidOf(a1, "db") != nil && svidOf(a1, "web") != nil && svidOf(a1, "cron") != nil })

	want := []string{"ID spiffe://example.org/svc/cron", "ID spiffe://example.org/svc/web"}
	if got := fetchAs(65534, sock1); !slices.Equal(got, want) {
		t.Errorf("uid 65534 got %q, want %q: its own service and the one registered without a uid", got, want)
	}
	if got := fetchAs(2, sock1); !slices.Equal(got, []string{"ID spiffe://example.org/svc/cron"}) {
		t.Errorf("uid 2, which owns no service, got %q", got)
	}

	t.Log("with require_uid a service without a uid is served to nobody")
	sock2 := filepath.Join(dir, "n2.sock")
	a2 := c.startAgent("n2", func(cfg *agent.Config) { cfg.Socket, cfg.RequireUID = sock2, true })
	c.register(api.Registration{Name: "api", Node: "n2", Port: 8081, UID: uid(65534)})
	c.register(api.Registration{Name: "batch", Node: "n2", Port: 9001})
	eventually(t, "n2's SVIDs", func() bool { return svidOf(a2, "api") != nil && svidOf(a2, "batch") != nil })
	if got := fetchAs(65534, sock2); !slices.Equal(got, []string{"ID spiffe://example.org/svc/api"}) {
		t.Errorf("uid 65534 with require_uid got %q", got)
	}
	if got := fetchAs(2, sock2); len(got) != 1 || !strings.HasPrefix(got[0], "ERR ") || !strings.Contains(got[0], "PermissionDenied") {
		t.Errorf("uid 2 with require_uid got %q, want a refusal", got)
	}
}

func fetchAndPrint(sock string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := workloadapi.New(ctx, workloadapi.WithAddr("unix://"+sock))
	if err != nil {
		fmt.Println("ERR", err)
		return
	}
	defer client.Close()
	svids, err := client.FetchX509SVIDs(ctx)
	if err != nil {
		fmt.Println("ERR", err)
		return
	}
	for _, s := range svids {
		fmt.Println("ID", s.ID)
	}
}
