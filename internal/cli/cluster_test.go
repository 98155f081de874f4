package cli

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/seal"
	"moat/internal/server"
	"moat/internal/store"
	"moat/internal/store/storetest"
)

// TestClusterAuditLog: two servers share one etcd. Admin calls through
// either land in one audit log, one sequence, which "moat audit verify"
// checks through either server, recomputing the tree from the entries.
func TestClusterAuditLog(t *testing.T) {
	url := storetest.StartEtcd(t)
	dir := t.TempDir()
	cfg := func(name string) string {
		p := filepath.Join(dir, name+".yaml")
		yaml := "data_dir: " + filepath.Join(dir, name) + "\nname: " + name + "\nlisten: 127.0.0.1:0\nstore:\n  backend: etcd\n  endpoints: [" + url + "]\n"
		if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b := cfg("a"), cfg("b")
	if code, _, errOut := runCLI(t, nil, "server", "init", "--config", a, "--trust-domain", "example.org"); code != 0 {
		t.Fatalf("server init: %s", errOut)
	}
	// A second server holds the same keyring and KEK (copied, as a cluster
	// is set up today).
	if err := os.MkdirAll(filepath.Join(dir, "b"), 0o700); err != nil {
		t.Fatal(err)
	}
	for from, to := range map[string]string{"a/keyring.json": "b/keyring.json", "a.kek": "b.kek"} {
		data, err := os.ReadFile(filepath.Join(dir, from))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, to), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	addrA := runServerConfig(t, a)
	addrB := runServerConfig(t, b)
	adminDir := filepath.Join(dir, "a.admin")
	mfaLogin(t, nil, addrA, adminDir) // the session serves both servers

	for i, addr := range []string{addrA, addrB, addrA, addrB} {
		env := map[string]string{"MOAT_SERVER": addr, "MOAT_ADMIN_DIR": adminDir}
		if code, _, errOut := runCLI(t, env, "svc", "register", "--node", "n1", "--name", "svc"+string(rune('a'+i)), "--port", "8080"); code != 0 {
			t.Fatalf("svc register through %s: %s", addr, errOut)
		}
	}
	var sizes []string
	for _, addr := range []string{addrA, addrB} {
		code, out, errOut := runCLI(t, map[string]string{"MOAT_ADMIN_DIR": adminDir}, "audit", "verify", "--server", addr)
		if code != 0 {
			t.Fatalf("audit verify through %s: %s %s", addr, out, errOut)
		}
		sizes = append(sizes, out)
	}
	t.Log(sizes)
	c, err := api.NewClientFromDir(addrB, adminDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var page api.AuditEntries
	if err := c.Call(context.Background(), http.MethodGet, api.PathAudit, nil, &page); err != nil {
		t.Fatal(err)
	}
	byServer := map[string]int{}
	for _, e := range page.Entries {
		if e.Entry.Action == "svc.register" && e.Entry.Result == "ok" {
			byServer[e.Entry.Detail["server"]]++
		}
	}
	if byServer["a"] != 2 || byServer["b"] != 2 {
		t.Fatalf("svc.register outcomes by server %v, want 2 through a and 2 through b in the one log", byServer)
	}
}

// runServerConfig runs "moat server run --config FILE" until the test
// ends and returns the address it listens on.
func runServerConfig(t *testing.T, file string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errb := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, &Env{Stdout: io.Discard, Stderr: errb, Stdin: strings.NewReader(""), Getenv: func(string) string { return "" }},
			[]string{"server", "run", "--config", file})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("server %s did not stop", file)
		}
	})
	var addr string
	waitFor(t, "server "+file, func() bool {
		select {
		case code := <-done:
			t.Fatalf("server %s exited %d:\n%s", file, code, errb.String())
		default:
		}
		if m := listeningRE.FindStringSubmatch(errb.String()); m != nil {
			addr = m[1]
			return true
		}
		return false
	})
	return addr
}

// TestClusterRunAfterInterruptedRewrap: on a cluster the keyring lives in
// etcd. A KEK rotation that re-wrapped it there under the new key beside
// the key file, then stopped before moving that key over the file, leaves
// a server that says which file opens the cluster's keyring.
func TestClusterRunAfterInterruptedRewrap(t *testing.T) {
	url := storetest.StartEtcd(t)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "a.yaml")
	data := filepath.Join(dir, "a")
	if err := os.WriteFile(cfgFile, []byte("data_dir: "+data+"\nname: a\nlisten: 127.0.0.1:0\nstore:\n  backend: etcd\n  endpoints: ["+url+"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, nil, "server", "init", "--config", cfgFile, "--trust-domain", "example.org"); code != 0 {
		t.Fatalf("server init: %s", errOut)
	}
	ec, err := etcdConfig(server.StoreFile{Backend: "etcd", Endpoints: []string{url}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := store.OpenEtcdMeta(context.Background(), ec)
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close()
	kek, err := seal.OpenKeyFile(data + ".kek")
	if err != nil {
		t.Fatal(err)
	}
	kr, err := seal.Open(seal.Config{Dir: data, KEK: kek, NoCreate: true, Backend: etcdKeyring{meta}, Mirror: filepath.Join(data, seal.KeyringFile)})
	if err != nil {
		t.Fatal(err)
	}
	pending := data + ".kek.new"
	newKEK, err := seal.GenerateKeyFile(pending, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kr.RewrapKEK(newKEK); err != nil {
		t.Fatal(err)
	}
	t.Log("the rotation stopped here: etcd's keyring, and the directory's copy, are under the pending key")
	code, _, stderr := runCLI(t, nil, "server", "run", "--config", cfgFile)
	if code == 0 || !strings.Contains(stderr, pending) || !strings.Contains(stderr, "move") {
		t.Fatalf("server run: exit %d, %q; want it refused, naming %s", code, stderr, pending)
	}
	t.Log(stderr)
}
