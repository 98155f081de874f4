package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"moat/internal/store/storetest"
)

// TestClusterOverEtcdTLS: a production etcd takes clients over TLS only,
// with a certificate of its own CA (--client-cert-auth). The control plane
// could not reach one: the store section had no CA, certificate or key,
// so init and run failed at the handshake. With store.tls two servers
// share such a cluster; a server given no client certificate, or one of
// another CA, or no CA for the members' certificates, is refused by the
// handshake and says so.
func TestClusterOverEtcdTLS(t *testing.T) {
	etcd, files := storetest.StartEtcdClusterTLS(t, 1)
	url := etcd[0].URL
	dir := t.TempDir()
	refused := func(what, tlsYAML, want string) {
		t.Helper()
		cfg := filepath.Join(dir, "refused.yaml")
		data := filepath.Join(dir, "refused")
		body := fmt.Sprintf("data_dir: %s\nlisten: %s\nstore:\n  backend: etcd\n  endpoints: [%q]\n  prefix: /moat/refused/\n  timeout: 3s\n%s",
			data, addr(freePorts(t, 1)[0]), url, tlsYAML)
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		mustMoat(t, nil, "server", "run", "--config", cfg, "--validate")
		_, errOut, err := moat(t, nil, "server", "init", "--config", cfg, "--trust-domain", "example.org")
		if err == nil || !strings.Contains(errOut, want) {
			t.Fatalf("%s: init over etcd: %v: %s; want an error containing %q", what, err, errOut, want)
		}
		t.Logf("%s: %s", what, strings.TrimSpace(errOut))
		os.RemoveAll(data)
		os.Remove(data + ".kek")
		os.RemoveAll(data + ".admin")
	}
	refused("no tls section (system roots)", "", "certificate")
	refused("the CA but no client certificate", fmt.Sprintf("  tls:\n    ca_file: %s\n", files.CA), "certificate")
	refused("a client certificate of another CA", fmt.Sprintf("  tls:\n    ca_file: %s\n    cert_file: %s\n    key_file: %s\n", files.CA, files.OtherCert, files.OtherKey), "certificate")

	t.Log("with the CA and a client certificate of it, two servers share the cluster")
	c := newMoatClusterStore(t, etcd, 2, fmt.Sprintf("  tls:\n    ca_file: %s\n    cert_file: %s\n    key_file: %s\n", files.CA, files.Cert, files.Key))
	mustMoat(t, c.via(c.servers[0]), "svc", "register", "--node", "n1", "--name", "db", "--port", "5432")
	if list := mustMoat(t, c.via(c.servers[1]), "svc", "list"); !strings.Contains(list, "db") {
		t.Fatalf("the second server does not serve what the first wrote:\n%s", list)
	}
}
