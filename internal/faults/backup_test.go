package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"moat/internal/store/storetest"
)

// TestClusterBackupRestore backs a cluster up through one of its servers
// and restores it into an empty etcd prefix: a server started there with
// only its configuration and the KEK serves the same registry to the same
// administrators. Restoring over a prefix that holds a control plane is
// refused.
func TestClusterBackupRestore(t *testing.T) {
	etcd := storetest.StartEtcdCluster(t, 1)
	c := newMoatCluster(t, etcd, 2)
	env := c.env()
	for i := range 5 {
		mustMoat(t, env, "svc", "register", "--node", "n1", "--name", fmt.Sprintf("app%d", i), "--port", fmt.Sprint(9000+i))
	}
	backup := filepath.Join(c.dir, "cluster.backup")
	out := mustMoat(t, c.via(c.servers[1]), "backup", "create", backup)
	t.Logf("backup through %s: %s", c.servers[1].name, out)
	kek := c.servers[0].data + ".kek"
	mustMoat(t, nil, "backup", "verify", "--kek-file", kek, backup)

	t.Log("restoring over the live prefix is refused")
	_, errOut, err := moat(t, nil, "backup", "restore", "--config", c.servers[0].config, "--data-dir", filepath.Join(c.dir, "over"), "--kek-file", kek, backup)
	if err == nil || !strings.Contains(errOut, "already holds a moat control plane") {
		t.Fatalf("restore over a live prefix: %v: %s", err, errOut)
	}
	if _, err := os.Stat(filepath.Join(c.dir, "over")); !os.IsNotExist(err) {
		t.Fatalf("the refused restore left files behind: %v", err)
	}

	t.Log("restore into an empty prefix and start a server on it")
	ports := freePorts(t, 1)
	restored := &moatServer{name: "r1", listen: addr(ports[0]), data: filepath.Join(c.dir, "r1"), config: filepath.Join(c.dir, "r1.yaml")}
	cfg := fmt.Sprintf("data_dir: %s\nlisten: %s\nname: r1\nstore:\n  backend: etcd\n  endpoints: [%q]\n  prefix: /moat/restored/\n", restored.data, restored.listen, etcd[0].URL)
	if err := os.WriteFile(restored.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	mustMoat(t, nil, "server", "run", "--config", restored.config, "--validate")
	copyKEK, _ := os.ReadFile(kek)
	os.WriteFile(restored.data+".kek", copyKEK, 0o600)
	out = mustMoat(t, nil, "backup", "restore", "--config", restored.config, backup)
	t.Logf("restore: %s", out)
	c.start(restored)
	list := mustMoat(t, c.via(restored), "svc", "list")
	for i := range 5 {
		if !strings.Contains(list, fmt.Sprintf("app%d", i)) {
			t.Fatalf("restored registry lacks app%d:\n%s", i, list)
		}
	}
	mustMoat(t, c.via(restored), "token", "create", "--node", "n9")
}
