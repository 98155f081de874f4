package cli

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/flow"
	"moat/internal/flow/flowstore"
	"moat/internal/seal"
	"moat/internal/store"
)

// runningServer is "moat server run" in a goroutine.
type runningServer struct {
	cancel context.CancelFunc
	done   chan int
	errb   *syncBuffer
	once   sync.Once
	addr   string
}

func startServerCLI(t *testing.T, env map[string]string, args ...string) *runningServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rs := &runningServer{cancel: cancel, done: make(chan int, 1), errb: &syncBuffer{}}
	go func() {
		rs.done <- Run(ctx, &Env{Stdout: &syncBuffer{}, Stderr: rs.errb, Stdin: strings.NewReader(""),
			Getenv: func(k string) string { return env[k] }}, append([]string{"server", "run"}, args...))
	}()
	t.Cleanup(rs.stop)
	return rs
}

func (rs *runningServer) stop() {
	rs.once.Do(func() {
		rs.cancel()
		select {
		case <-rs.done:
		case <-time.After(30 * time.Second):
		}
	})
}

// treeDigest hashes every file's name and content under root.
func treeDigest(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		lines = append(lines, fmt.Sprintf("%s %x", p, sha256.Sum256(b)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func adminJSON(t *testing.T, addr, adminDir string, out any, args ...string) {
	t.Helper()
	args = append(args, "--server", addr, "--admin-dir", adminDir, "--output", "json")
	code, stdout, stderr := runCLI(t, nil, args...)
	if code != 0 {
		t.Fatalf("moat %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(stdout), out); err != nil {
			t.Fatalf("moat %s: %v: %q", strings.Join(args, " "), err, stdout)
		}
	}
}

// TestKeysAndBackup runs a server from the command line: state is written,
// the data key rotated and everything moved onto the new key, a backup
// taken, and restored into a fresh directory where a new server serves the
// same registrations and policy, the flow records and the audit log (with the
// rotation) are back, and the audit log verifies. Damaged backups and a wrong KEK
// are refused without changing anything.
func TestKeysAndBackup(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "data")
	adminDir := filepath.Join(tmp, "admin")
	if code, _, stderr := runCLI(t, nil, "server", "init", "--data-dir", dir, "--trust-domain", "example.org", "--admin-dir", adminDir); code != 0 {
		t.Fatalf("init: %s", stderr)
	}
	writeFlows(t, dir, dir+".kek", 5)
	addr := loop(freePortBase(t, 1))
	srv := startServerCLI(t, nil, "--data-dir", dir, "--listen", addr)
	waitFor(t, "the server", func() bool {
		select {
		case code := <-srv.done:
			t.Fatalf("server exited %d: %s", code, srv.errb.String())
		default:
		}
		code, _, _ := runCLI(t, nil, "svc", "list", "--server", addr, "--admin-dir", adminDir)
		return code == 0
	})
	mfaLogin(t, nil, addr, adminDir)
	adminJSON(t, addr, adminDir, nil, "svc", "register", "--node", "n1", "--name", "web", "--port", "8080")
	adminJSON(t, addr, adminDir, nil, "svc", "register", "--node", "n1", "--name", "db", "--port", "5432")
	policyFile := filepath.Join(tmp, "policy.yaml")
	os.WriteFile(policyFile, []byte("default: deny\nrules:\n  - name: web-to-db\n    from: [web]\n    to: db\n    ports: [5432]\n"), 0o600)
	adminJSON(t, addr, adminDir, nil, "policy", "apply", "-f", policyFile)
	var policy api.Policy
	adminJSON(t, addr, adminDir, &policy, "policy", "show")
	if !strings.Contains(policy.YAML, "web-to-db") {
		t.Fatalf("applied policy: %+v", policy)
	}

	var st api.KeyStatus
	adminJSON(t, addr, adminDir, &st, "keys", "status")
	if len(st.Keys) != 1 || st.Keys[0].Records == 0 || st.Keys[0].State != "primary" {
		t.Fatalf("status before rotation: %+v", st)
	}
	first := st.Primary

	var rot api.KeyRotateResponse
	adminJSON(t, addr, adminDir, &rot, "keys", "rotate")
	if rot.OldPrimary != first || rot.NewPrimary == first || rot.Keys != 2 {
		t.Fatalf("rotate: %+v", rot)
	}
	adminJSON(t, addr, adminDir, nil, "svc", "register", "--node", "n2", "--name", "api", "--port", "9090")
	waitFor(t, "the re-encryption pass", func() bool {
		st = api.KeyStatus{} // decoding into a used value would merge maps
		adminJSON(t, addr, adminDir, &st, "keys", "status")
		return st.Reencrypt.Done && !st.Reencrypt.Running && st.Reencrypt.Target == rot.NewPrimary
	})
	if st.Reencrypt.Error != "" {
		t.Fatalf("pass failed: %s", st.Reencrypt.Error)
	}
	for _, k := range st.Keys {
		switch {
		case k.ID == first && k.ByPart["store"] != 0:
			t.Fatalf("old key %d still protects %d store values after the pass: %+v", k.ID, k.ByPart["store"], st)
		case k.ID == first && k.ByPart["audit"] == 0:
			t.Fatalf("old key %d protects no audit entries, yet wrote the first ones: %+v", k.ID, st)
		case k.ID == rot.NewPrimary && (k.ByPart["store"] == 0 || k.ByPart["audit"] == 0):
			t.Fatalf("new key protects nothing: %+v", st)
		}
	}
	code, table, stderr := runCLI(t, nil, "keys", "status", "--server", addr, "--admin-dir", adminDir)
	if code != 0 || !strings.Contains(table, "primary") || !strings.Contains(table, "re-encryption to key "+strconv.FormatUint(uint64(rot.NewPrimary), 10)+": done") {
		t.Fatalf("keys status: exit %d\n%s%s", code, table, stderr)
	}
	var regs []api.Registration
	adminJSON(t, addr, adminDir, &regs, "svc", "list")
	if len(regs) != 3 {
		t.Fatalf("after rotation: %d services, want 3", len(regs))
	}

	backup := filepath.Join(tmp, "state.backup")
	if code, _, stderr := runCLI(t, nil, "backup", "create", "--server", addr, "--admin-dir", adminDir, backup); code != 0 {
		t.Fatalf("backup create: %s", stderr)
	}
	if code, _, _ := runCLI(t, nil, "backup", "create", "--server", addr, "--admin-dir", adminDir, backup); code == 0 {
		t.Fatal("backup create overwrote an existing file")
	}
	srv.stop()

	kekFile := dir + ".kek"
	checkCAKeys(t, dir, kekFile, rot.NewPrimary)
	data, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("damaged backups are refused", func(t *testing.T) {
		for name, b := range map[string][]byte{
			"flipped":   flipByte(data, len(data)/2),
			"truncated": data[:len(data)-100],
			"header":    flipByte(data, 3),
		} {
			f := filepath.Join(t.TempDir(), name)
			os.WriteFile(f, b, 0o600)
			target := filepath.Join(t.TempDir(), "restored")
			code, _, stderr := runCLI(t, nil, "backup", "restore", "--data-dir", target, "--kek-file", kekFile, f)
			if code == 0 || !strings.Contains(stderr, "backup") {
				t.Errorf("%s: exit %d, %q", name, code, stderr)
			}
			if _, err := os.Stat(target); !os.IsNotExist(err) {
				t.Errorf("%s: the target was created", name)
			}
		}
		// A non-empty target is never written to.
		full := t.TempDir()
		os.WriteFile(filepath.Join(full, "keep"), []byte("x"), 0o600)
		before := treeDigest(t, full)
		if code, _, stderr := runCLI(t, nil, "backup", "restore", "--data-dir", full, "--kek-file", kekFile, backup); code == 0 || !strings.Contains(stderr, "not empty") {
			t.Errorf("non-empty target: exit %d, %q", code, stderr)
		}
		if treeDigest(t, full) != before {
			t.Error("a refused restore changed the target")
		}
	})

	restored := filepath.Join(tmp, "restored")
	if code, stdout, stderr := runCLI(t, nil, "backup", "restore", "--data-dir", restored, "--kek-file", kekFile, backup); code != 0 {
		t.Fatalf("restore: %s %s", stdout, stderr)
	}
	if code, stdout, stderr := runCLI(t, nil, "audit", "verify", "--data-dir", restored); code != 0 || !strings.Contains(stdout, "ok:") {
		t.Fatalf("audit verify of the restored directory: exit %d %s %s", code, stdout, stderr)
	}
	addr2 := loop(freePortBase(t, 1))
	srv2 := startServerCLI(t, nil, "--data-dir", restored, "--listen", addr2, "--kek-file", kekFile)
	waitFor(t, "the restored server", func() bool {
		select {
		case code := <-srv2.done:
			t.Fatalf("restored server exited %d: %s", code, srv2.errb.String())
		default:
		}
		code, _, _ := runCLI(t, nil, "svc", "list", "--server", addr2, "--admin-dir", adminDir)
		return code == 0
	})
	regs = nil
	adminJSON(t, addr2, adminDir, &regs, "svc", "list")
	if len(regs) != 3 {
		t.Fatalf("restored server: %d services, want 3: %+v", len(regs), regs)
	}
	var policy2 api.Policy
	adminJSON(t, addr2, adminDir, &policy2, "policy", "show")
	if !reflect.DeepEqual(policy, policy2) {
		t.Fatalf("restored policy %+v, want %+v", policy2, policy)
	}
	srv2.stop()
	// The five records written before the backup are back (beside the
	// detection findings the server recorded, such as the enrolment).
	written := 0
	for _, r := range readFlows(t, restored, kekFile) {
		if strings.HasPrefix(r.Metadata.UID, "backup-flow-") {
			written++
		}
	}
	if written != 5 {
		t.Fatalf("restored flow store holds %d of the 5 records written", written)
	}
	if n := countAudit(t, restored, kekFile, "keys.rotate"); n != 1 {
		t.Fatalf("restored audit log holds %d keys.rotate entries, want 1", n)
	}

	t.Run("wrong KEK refused at start, nothing modified", func(t *testing.T) {
		other := filepath.Join(t.TempDir(), "other.kek")
		if _, err := seal.GenerateKeyFile(other, nil); err != nil {
			t.Fatal(err)
		}
		before := treeDigest(t, dir)
		code, _, stderr := runCLI(t, nil, "server", "run", "--data-dir", dir, "--listen", loop(freePortBase(t, 1)), "--kek-file", other)
		if code == 0 || !strings.Contains(stderr, "does not open") {
			t.Fatalf("exit %d, stderr %q; want a wrong-KEK error", code, stderr)
		}
		if treeDigest(t, dir) != before {
			t.Fatal("a start with a wrong KEK changed the data directory")
		}
	})
}

// writeFlows stores n flow records in dir's (sealed) flow store.
func writeFlows(t *testing.T, dir, kekFile string, n int) {
	t.Helper()
	kr := openTestKeyring(t, dir, kekFile)
	fs, err := flowstore.OpenStore(flowstore.StoreConfig{Dir: filepath.Join(dir, "flows"), Sealer: kr.AEAD()})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	var recs []flow.Record
	for i := range n {
		r := flow.Header(flow.ClassNetworkActivity, flow.ActivityClose, "moat-agent", time.Now())
		r.Metadata.UID = fmt.Sprintf("backup-flow-%d", i)
		r.SrcEndpoint = &flow.Endpoint{IP: "10.0.0.1", Port: 40000, SvcName: "web"}
		r.DstEndpoint = &flow.Endpoint{IP: "10.0.0.2", Port: 5432, SvcName: "db"}
		recs = append(recs, r)
	}
	if _, err := fs.Ingest(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
}

// readFlows returns every flow record of dir's store.
func readFlows(t *testing.T, dir, kekFile string) []flow.Record {
	t.Helper()
	kr := openTestKeyring(t, dir, kekFile)
	fs, err := flowstore.OpenStore(flowstore.StoreConfig{Dir: filepath.Join(dir, "flows"), Sealer: kr.AEAD(), ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	recs, err := fs.Query(context.Background(), flow.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func openTestKeyring(t *testing.T, dir, kekFile string) *seal.Keyring {
	t.Helper()
	kek, err := seal.OpenKeyFile(kekFile)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := seal.Open(seal.Config{Dir: dir, KEK: kek, NoCreate: true})
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// checkCAKeys checks that the CA's private keys, sealed inside the store
// value, are under data key want.
func checkCAKeys(t *testing.T, dir, kekFile string, want uint32) {
	t.Helper()
	kr := openTestKeyring(t, dir, kekFile)
	st, err := store.OpenBolt(store.BoltConfig{Dir: dir, Sealer: kr.AEAD()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kv, err := st.Get(context.Background(), "ca/state")
	if err != nil {
		t.Fatal(err)
	}
	var state struct {
		Authorities []struct {
			RootKey  []byte `json:"root_key"`
			InterKey []byte `json:"intermediate_key"`
		} `json:"authorities"`
	}
	if err := json.Unmarshal(kv.Value, &state); err != nil || len(state.Authorities) == 0 {
		t.Fatalf("ca/state: %v %q", err, kv.Value)
	}
	for _, a := range state.Authorities {
		for _, k := range [][]byte{a.RootKey, a.InterKey} {
			if id, err := seal.KeyID(k); err != nil || id != want {
				t.Fatalf("a CA key is under data key %d (%v), want %d", id, err, want)
			}
		}
	}
}

// readAudit reads dir's audit log, opening sealed entries with its keyring.
func readAudit(t *testing.T, dir, kekFile string) []audit.Indexed {
	t.Helper()
	kr := openTestKeyring(t, dir, kekFile)
	l, err := audit.Open(audit.Config{Dir: filepath.Join(dir, audit.DirName), ReadOnly: true, Sealer: kr.AEAD()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	es, err := l.Entries(0, l.Size())
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// countAudit counts the calls of action in dir's audit log: their outcome
// entries (an admin change also has an intent entry, result "pending").
func countAudit(t *testing.T, dir, kekFile, action string) int {
	t.Helper()
	n := 0
	for _, e := range readAudit(t, dir, kekFile) {
		if e.Entry.Action == action && e.Entry.Result != "pending" {
			n++
		}
	}
	return n
}

func flipByte(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0x40
	return c
}

// TestKeysRewrap: "keys rotate --kek" re-wraps the keyring under a fresh
// key that replaces the server's key file; the server restarts with it,
// and the old key no longer opens anything.
func TestKeysRewrap(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "data")
	adminDir := filepath.Join(tmp, "admin")
	if code, _, stderr := runCLI(t, nil, "server", "init", "--data-dir", dir, "--trust-domain", "example.org", "--admin-dir", adminDir); code != 0 {
		t.Fatalf("init: %s", stderr)
	}
	kekFile := dir + ".kek"
	oldKEK, err := os.ReadFile(kekFile)
	if err != nil {
		t.Fatal(err)
	}
	loggedIn := false
	start := func() *runningServer {
		addr := loop(freePortBase(t, 1))
		srv := startServerCLI(t, nil, "--data-dir", dir, "--listen", addr)
		waitFor(t, "the server", func() bool {
			select {
			case code := <-srv.done:
				t.Fatalf("server exited %d: %s", code, srv.errb.String())
			default:
			}
			code, _, _ := runCLI(t, nil, "svc", "list", "--server", addr, "--admin-dir", adminDir)
			return code == 0
		})
		if !loggedIn {
			mfaLogin(t, nil, addr, adminDir)
			loggedIn = true
		}
		adminJSON(t, addr, adminDir, nil, "svc", "register", "--node", "n1", "--name", fmt.Sprintf("s%d", time.Now().UnixNano()%1e6), "--port", "8080")
		srv.addr = addr
		return srv
	}
	srv := start()
	var rot api.KeyRotateResponse
	adminJSON(t, srv.addr, adminDir, &rot, "keys", "rotate", "--kek")
	if rot.Action != "keys.rewrap" || !strings.Contains(rot.Note, kekFile) {
		t.Fatalf("rewrap: %+v", rot)
	}
	newKEK, err := os.ReadFile(kekFile)
	if err != nil || string(newKEK) == string(oldKEK) {
		t.Fatalf("the key file was not replaced (%v)", err)
	}
	if _, err := os.Stat(kekFile + ".new"); !os.IsNotExist(err) {
		t.Fatal("the pending key file was left behind")
	}
	srv.stop()
	srv = start()
	var regs []api.Registration
	adminJSON(t, srv.addr, adminDir, &regs, "svc", "list")
	if len(regs) != 2 {
		t.Fatalf("after the re-wrap: %d services, want 2", len(regs))
	}
	srv.stop()
	old := filepath.Join(tmp, "old.kek")
	os.WriteFile(old, oldKEK, 0o600)
	code, _, stderr := runCLI(t, nil, "server", "run", "--data-dir", dir, "--listen", loop(freePortBase(t, 1)), "--kek-file", old)
	if code == 0 || !strings.Contains(stderr, "does not open") {
		t.Fatalf("the old KEK: exit %d, %q", code, stderr)
	}
}

// TestServerRunAfterInterruptedRewrap: a KEK rotation re-wraps the
// keyring under a new key beside the key file, then moves it over the
// file. A server stopped between the two does not start on the old key:
// it names the file the keyring opens under and changes nothing; once the
// file is moved, the data opens.
func TestServerRunAfterInterruptedRewrap(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "data")
	if code, _, stderr := runCLI(t, nil, "server", "init", "--data-dir", dir, "--trust-domain", "example.org", "--admin-dir", filepath.Join(tmp, "admin")); code != 0 {
		t.Fatalf("init: %s", stderr)
	}
	kekFile := dir + ".kek"
	kek, err := seal.OpenKeyFile(kekFile)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := seal.Open(seal.Config{Dir: dir, KEK: kek, NoCreate: true})
	if err != nil {
		t.Fatal(err)
	}
	pending := kekFile + ".new"
	newKEK, err := seal.GenerateKeyFile(pending, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kr.RewrapKEK(newKEK); err != nil {
		t.Fatal(err)
	}
	t.Log("the rotation stopped here: the keyring is under the pending key, the key file holds the old one")
	before := treeDigest(t, dir)
	code, _, stderr := runCLI(t, nil, "server", "run", "--data-dir", dir, "--listen", loop(freePortBase(t, 1)))
	if code == 0 || !strings.Contains(stderr, "does not open") || !strings.Contains(stderr, pending) || !strings.Contains(stderr, "move") {
		t.Fatalf("server run: exit %d, %q; want it refused, naming %s", code, stderr, pending)
	}
	t.Log(stderr)
	if treeDigest(t, dir) != before {
		t.Fatal("a refused start changed the data directory")
	}
	code, _, stderr = runCLI(t, nil, "audit", "log", "--data-dir", dir)
	if code == 0 || !strings.Contains(stderr, pending) {
		t.Fatalf("audit log: exit %d, %q; want it refused, naming %s", code, stderr, pending)
	}
	t.Log("moved as the error says, the data opens")
	if err := os.Rename(pending, kekFile); err != nil {
		t.Fatal(err)
	}
	addr := loop(freePortBase(t, 1))
	srv := startServerCLI(t, nil, "--data-dir", dir, "--listen", addr)
	waitFor(t, "the server", func() bool {
		select {
		case code := <-srv.done:
			t.Fatalf("server exited %d: %s", code, srv.errb.String())
		default:
		}
		code, _, _ := runCLI(t, nil, "svc", "list", "--server", addr, "--admin-dir", filepath.Join(tmp, "admin"))
		return code == 0
	})
	srv.stop()
}

// TestAgentWrongKEK: an agent whose keyring does not open under the given
// KEK stops before touching its data directory.
func TestAgentWrongKEK(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "agent")
	kek, err := seal.GenerateKeyFile(dir+".kek", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seal.Open(seal.Config{Dir: dir, KEK: kek}); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other.kek")
	if _, err := seal.GenerateKeyFile(other, nil); err != nil {
		t.Fatal(err)
	}
	before := treeDigest(t, dir)
	code, _, stderr := runCLI(t, nil, "agent", "--data-dir", dir, "--node", "n1", "--server", "127.0.0.1:1", "--kek-file", other)
	if code == 0 || !strings.Contains(stderr, "does not open") {
		t.Fatalf("exit %d, stderr %q; want a wrong-KEK error", code, stderr)
	}
	if treeDigest(t, dir) != before {
		t.Fatal("an agent start with a wrong KEK changed its data directory")
	}
}
