package faults

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"moat/internal/flow"
	"moat/internal/store/storetest"
)

// flowMesh registers frontend (node n1) → api (node n2), allows it, runs
// the agents given only the servers ship names (n1's first, n2's second,
// or one for both), so the flow records are stored where the test says,
// and starts traffic through the mesh.
func flowMesh(t *testing.T, c *moatCluster, ship ...*moatServer) *traffic {
	t.Helper()
	app, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	appPort := app.Addr().(*net.TCPAddr).Port
	go http.Serve(app, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "api ok") }))
	local := freePorts(t, 2)
	env := c.env()
	mustMoat(t, env, "svc", "register", "--node", "n1", "--name", "frontend", "--port", fmt.Sprint(local[1]), "--upstream", fmt.Sprintf("api:%d", local[0]))
	mustMoat(t, env, "svc", "register", "--node", "n2", "--name", "api", "--port", fmt.Sprint(appPort))
	policy := filepath.Join(c.dir, "intentions.yaml")
	os.WriteFile(policy, []byte(fmt.Sprintf("default: deny\nrules:\n  - name: to-api\n    from: [frontend]\n    to: api\n    ports: [%d]\n", appPort)), 0o600)
	mustMoat(t, env, "policy", "apply", "-f", policy)
	for i, node := range []string{"n1", "n2"} {
		ports := freePorts(t, 1)
		tok := mustMoat(t, env, "token", "create", "--node", node)
		start(t, "agent "+node, nil, moatBin, "agent", "--data-dir", filepath.Join(c.dir, "agent-"+node), "--server", ship[min(i, len(ship)-1)].listen,
			"--node", node, "--join", tok, "--listen", addr(ports[0]))
	}
	target := "http://" + addr(local[0]) + "/"
	waitFor(t, "a request through the mesh", func() bool {
		resp, err := http.Get(target)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	tr := startTraffic(&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}, target)
	t.Cleanup(func() {
		close(tr.stop)
		<-tr.done
	})
	return tr
}

// followed counts the distinct records a `moat flows --follow --output
// json` printed, and those printed more than once.
func followed(t *testing.T, out string) (uids map[string]int, dups int) {
	t.Helper()
	uids = map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var r flow.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			continue // a line still being written
		}
		uids[r.Metadata.UID]++
		if uids[r.Metadata.UID] == 2 {
			dups++
		}
	}
	return uids, dups
}

// TestClusterFollow: every agent ships to one server; `moat flows --follow`
// through another server shows their records as they are stored, and when
// the server it follows through is killed it goes on through the next
// one, each record shown once.
func TestClusterFollow(t *testing.T) {
	etcd := storetest.StartEtcdCluster(t, 3)
	c := newMoatCluster(t, etcd, 3)
	ship, via, next := c.servers[0], c.servers[1], c.servers[2]
	for _, s := range c.servers {
		waitForDetail(t, "three members through "+s.name, func() (bool, string) {
			out, errOut, err := moat(t, c.via(s), "server", "members")
			return err == nil && strings.Count(out, "alive") == 3, out + errOut
		})
	}
	tr := flowMesh(t, c, ship)
	tr.advance(t, "traffic through the mesh, shipped to "+ship.name, 10)

	t.Logf("follow through %s, then %s; the agents ship to %s", via.name, next.name, ship.name)
	f := start(t, "moat flows --follow", []string{"MOAT_SERVER=" + via.listen + "," + next.listen, "MOAT_ADMIN_DIR=" + c.admin},
		moatBin, "flows", "--follow", "--output", "json", "--limit", "5")
	var seen int
	waitForDetail(t, "records shipped to "+ship.name+" followed through "+via.name, func() (bool, string) {
		uids, _ := followed(t, f.out.String())
		seen = len(uids)
		return seen >= 20, fmt.Sprintf("%d records; output: %.400s", seen, f.out.String())
	})
	t.Logf("%d records followed through %s", seen, via.name)

	t.Logf("kill %s, the server the follow goes through", via.name)
	via.p.kill()
	waitForDetail(t, "records followed through "+next.name+" after the kill", func() (bool, string) {
		uids, _ := followed(t, f.out.String())
		return len(uids) >= seen+20, fmt.Sprintf("%d records", len(uids))
	})
	if f.exited() {
		t.Fatalf("the follow ended:\n%s", f.out.String())
	}
	out := f.out.String()
	if !strings.Contains(out, "reconnecting") {
		t.Fatalf("the follow did not say it reconnected:\n%.2000s", out)
	}
	uids, dups := followed(t, out)
	if dups > 0 {
		t.Fatalf("%d records shown more than once", dups)
	}
	t.Logf("%d records followed, none twice", len(uids))
	tr.check(t, "traffic while following")
}

// storedUIDs reads the flow records of a server's data directory offline
// (the CLI's --data-dir mode, with the KEK beside it).
func storedUIDs(t *testing.T, dataDir string) map[string]int {
	t.Helper()
	out := mustMoat(t, nil, "flows", "--data-dir", dataDir, "--limit", "1000000", "--output", "json")
	uids, _ := followed(t, out)
	return uids
}

// TestClusterBackupHoldsEveryServersFlows: the agents ship to two of three
// servers; a backup taken through the third holds both servers' flow
// records, and restoring it puts each server's records back in the data
// directory of the server of that name.
func TestClusterBackupHoldsEveryServersFlows(t *testing.T) {
	etcd := storetest.StartEtcdCluster(t, 3)
	c := newMoatCluster(t, etcd, 3)
	s1, s2, s3 := c.servers[0], c.servers[1], c.servers[2]
	for _, s := range c.servers {
		waitForDetail(t, "three members through "+s.name, func() (bool, string) {
			out, errOut, err := moat(t, c.via(s), "server", "members")
			return err == nil && strings.Count(out, "alive") == 3, out + errOut
		})
	}
	tr := flowMesh(t, c, s1, s2)
	tr.advance(t, "traffic, n1 shipping to s1 and n2 to s2", 20)
	before := map[string]map[string]int{}
	for _, s := range []*moatServer{s1, s2} {
		waitFor(t, "records stored by "+s.name, func() bool {
			before[s.name] = storedUIDs(t, s.data)
			return len(before[s.name]) > 0
		})
	}
	t.Logf("s1 stores %d records, s2 %d, s3 none", len(before["s1"]), len(before["s2"]))

	backup := filepath.Join(c.dir, "cluster.backup")
	t.Logf("backup through s3: %s", mustMoat(t, c.via(s3), "backup", "create", backup))
	kek, _ := os.ReadFile(s1.data + ".kek")

	t.Log("restore into an empty prefix: s1's data directory first, with the state; s2's with --flows-only")
	restored := map[string]string{}
	for i, name := range []string{"s1", "s2"} {
		data := filepath.Join(c.dir, "restored-"+name)
		cfg := filepath.Join(c.dir, "restored-"+name+".yaml")
		ports := freePorts(t, 1)
		os.WriteFile(cfg, []byte(fmt.Sprintf("data_dir: %s\nlisten: %s\nname: %s\nstore:\n  backend: etcd\n  endpoints: [%q]\n  prefix: /moat/restored/\n",
			data, addr(ports[0]), name, etcd[0].URL)), 0o600)
		mustMoat(t, nil, "server", "run", "--config", cfg, "--validate")
		os.WriteFile(data+".kek", kek, 0o600)
		args := []string{"backup", "restore", "--config", cfg, backup}
		if i > 0 {
			args = []string{"backup", "restore", "--flows-only", "--config", cfg, backup}
		}
		t.Logf("%s: %s", name, mustMoat(t, nil, args...))
		restored[name] = data
	}
	for _, name := range []string{"s1", "s2"} {
		got := storedUIDs(t, restored[name])
		for uid := range before[name] {
			if got[uid] != 1 {
				t.Fatalf("record %s of %s: %d times in the restored data directory (%d records there)", uid, name, got[uid], len(got))
			}
		}
		t.Logf("restored %s holds %d records, every one it held before the backup", name, len(got))
	}
	tr.check(t, "traffic during the backup")
}

// exportedIDs counts each record ID in an export directory's live file and
// rotated, gzipped files (a rotated file being compressed is read once,
// as its .gz).
func exportedIDs(t *testing.T, dir string) map[string]int {
	t.Helper()
	out := map[string]int{}
	files, _ := filepath.Glob(filepath.Join(dir, "flows*"))
	for _, p := range files {
		if !strings.HasSuffix(p, ".gz") && filepath.Base(p) != "flows.jsonl" {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			continue // pruned or renamed meanwhile
		}
		var r io.Reader = f
		if strings.HasSuffix(p, ".gz") {
			zr, err := gzip.NewReader(f)
			if err != nil {
				f.Close()
				t.Fatalf("%s: %v", p, err)
			}
			r = zr
		}
		b, _ := io.ReadAll(r)
		f.Close()
		for _, line := range strings.Split(string(b), "\n") {
			var rec flow.Record
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Metadata.UID != "" {
				out[rec.Metadata.UID]++
			}
		}
	}
	return out
}

// TestExportSurvivesSIGKILL: a server exporting its flow records
// continuously (rotating every second) is killed with SIGKILL under
// traffic and started again: every record it stored since the export was
// configured is exported, none twice, and none from before.
func TestExportSurvivesSIGKILL(t *testing.T) {
	etcd := storetest.StartEtcdCluster(t, 1)
	c := newMoatCluster(t, etcd, 1)
	s := c.servers[0]
	export := filepath.Join(c.dir, "export")
	s.p.stop()
	// What the server stored before the export was configured (the
	// fixture's own records: the detection finding of the administrator's
	// MFA enrolment) is history: a new export starts after it, and
	// `moat flows export` writes it.
	history := storedUIDs(t, s.data)
	cfg, _ := os.ReadFile(s.config)
	cfg = append(cfg, []byte(fmt.Sprintf("export:\n  - {dir: %s, format: ocsf, rotate_every: 1s}\n", export))...)
	os.WriteFile(s.config, cfg, 0o600)
	if out := mustMoat(t, nil, "server", "run", "--config", s.config, "--validate"); out != "configuration OK" {
		t.Fatalf("--validate: %q", out)
	}
	c.start(s)
	tr := flowMesh(t, c, s)
	waitForDetail(t, "records exported", func() (bool, string) {
		n := len(exportedIDs(t, export))
		return n >= 50, fmt.Sprintf("%d records", n)
	})
	t.Logf("SIGKILL %s while it exports (%d records out so far)", s.name, len(exportedIDs(t, export)))
	s.p.kill()
	c.start(s)
	tr.advance(t, "traffic after the restart", 10)
	stored := storedUIDs(t, s.data)
	for uid := range history {
		delete(stored, uid)
	}
	t.Logf("%d records stored since the export began (%d before); waiting for each in the export", len(stored), len(history))
	var got map[string]int
	waitForDetail(t, "every stored record exported", func() (bool, string) {
		got = exportedIDs(t, export)
		var missing []string
		for uid := range stored {
			if got[uid] == 0 {
				missing = append(missing, uid)
			}
		}
		sort.Strings(missing)
		return len(missing) == 0, fmt.Sprintf("%d of %d missing (%s)", len(missing), len(stored), strings.Join(missing[:min(len(missing), 3)], ", "))
	})
	s.p.stop()
	got = exportedIDs(t, export)
	for uid, n := range got {
		if n != 1 {
			t.Fatalf("record %s exported %d times", uid, n)
		}
		if history[uid] > 0 {
			t.Fatalf("record %s, stored before the export was configured, was exported", uid)
		}
	}
	gz, _ := filepath.Glob(filepath.Join(export, "*.gz"))
	t.Logf("%d records exported once each, over %d rotated files and the live one", len(got), len(gz))
}
