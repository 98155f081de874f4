package e2e

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/ca"
	"moat/internal/cli"
	"moat/internal/identity"
	"moat/internal/seal"
	"moat/internal/store"
	"moat/internal/testkit"
)

// lockedBuffer collects a command's output while the test reads it.
type lockedBuffer = testkit.Buffer

// runMoat runs the moat command line in a goroutine until cancel.
func runMoat(t *testing.T, args ...string) (out *lockedBuffer, cancel func()) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	out = &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- cli.Run(ctx, &cli.Env{Stdout: out, Stderr: out, Stdin: strings.NewReader(""), Getenv: func(string) string { return "" }}, args)
	}()
	var once sync.Once
	cancel = func() {
		once.Do(func() {
			stop()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Errorf("moat %s did not stop", args[0])
			}
		})
	}
	t.Cleanup(cancel)
	return out, cancel
}

// freeRun returns the first of n consecutive ports from this package's
// range (ports), which no other test package's ports overlap: go test runs
// the packages' test binaries in parallel, and a port another package was
// handed may be bound only later.
func freeRun(t *testing.T, n int) int {
	t.Helper()
	base, err := ports.Run(n)
	if err != nil {
		t.Fatal(err)
	}
	return base
}

// waitLong polls cond for up to a minute: moat dev starts a whole system.
func waitLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// keyForms are the ways a private key could sit on disk: PKCS#8 DER, its
// PEM, and the bare scalar.
func keyForms(t *testing.T, label string, k crypto.Signer, into map[string][]byte) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	into[label+" (DER)"] = der
	into[label+" (PEM)"] = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if ec, ok := k.(*ecdsa.PrivateKey); ok {
		b, err := ec.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		into[label+" (scalar)"] = b
	}
}

// TestNoPlaintextAtRest runs the whole system (control plane, agents a and
// b and the gateway from moat dev, a third agent joining with a known
// token, traffic through the mesh and through the gateway, one request
// blocked by the WAF, all carrying an Authorization header, a cookie, a
// token in the query and a marker in the body), stops it, and searches every byte under the data directories for
// the private keys of the CA, the nodes and a service, the join token, the
// header value and the marker. None may be there.
func TestNoPlaintextAtRest(t *testing.T) {
	dir := t.TempDir()
	base := freeRun(t, 12)
	srvAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(base))
	devOut, stopDev := runMoat(t, "dev", "--data-dir", dir, "--port-base", strconv.Itoa(base))
	waitLong(t, "moat dev to come up", func() bool { return strings.Contains(devOut.String(), "moat dev is running") })

	admin, err := api.NewClientFromDir(srvAddr, filepath.Join(dir, "admin"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx := context.Background()
	var tok api.TokenResponse
	if err := admin.Call(ctx, http.MethodPost, api.PathTokens, api.TokenRequest{Node: "c"}, &tok); err != nil {
		t.Fatal(err)
	}
	agentC := filepath.Join(dir, "agent-c")
	cOut, stopC := runMoat(t, "agent", "--data-dir", agentC, "--server", srvAddr, "--node", "c", "--join", tok.Token,
		"--listen", net.JoinHostPort("127.0.0.1", strconv.Itoa(base+11)))
	waitLong(t, "agent c to join", func() bool {
		_, err := os.Stat(filepath.Join(agentC, "node", "key.sealed"))
		return err == nil
	})

	const bearer = "Bearer sealtest-authorization-5f1c0de9a7"
	const marker = "sealtest-body-marker-82b1e4c7d3"
	client := &http.Client{Timeout: 10 * time.Second}
	for range 3 {
		// frontend's upstream port for api: through agent a's mesh to b.
		req, _ := http.NewRequest(http.MethodPost, "http://"+net.JoinHostPort("127.0.0.1", strconv.Itoa(base+6))+"/api?token=sealtest-query-token-11aa",
			strings.NewReader(`{"password":"`+marker+`"}`))
		req.Header.Set("Authorization", bearer)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("through the mesh: %s", resp.Status)
		}
	}
	// Through the edge: the gateway (TLS from moat's CA) to frontend over
	// the mesh, once allowed and once blocked by the WAF, both carrying the
	// header and the marker.
	roots := x509.NewCertPool()
	pemRoots, err := os.ReadFile(filepath.Join(dir, "admin", api.BundleFile))
	if err != nil {
		t.Fatal(err)
	}
	roots.AppendCertsFromPEM(pemRoots)
	edge := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	gw := "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(base+9))
	for _, tc := range []struct {
		query string
		want  int
	}{{"", http.StatusOK}, {"?id=1%27%20OR%20%271%27=%271&access_token=sealtest-query-token-11aa", http.StatusForbidden}} {
		req, _ := http.NewRequest(http.MethodPost, gw+"/"+tc.query, strings.NewReader("comment="+marker+"&q=1' OR '1'='1"))
		req.Header.Set("Authorization", bearer)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Cookie", "session="+marker)
		resp, err := edge.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if tc.query != "" && resp.StatusCode != tc.want {
			t.Fatalf("gateway %q: %s, want %d", tc.query, resp.Status, tc.want)
		}
	}
	waitLong(t, "the WAF event", func() bool { return strings.Contains(devOut.String(), "WAF") })
	// A denied hop too, so the flow store holds both verdicts.
	if resp, err := client.Get("http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(base+8)) + "/"); err == nil {
		resp.Body.Close()
	}
	waitLong(t, "the deny flow at the control plane", func() bool { return strings.Contains(devOut.String(), "DENY") })
	stopC()
	stopDev()
	if strings.Contains(cOut.String(), "level=ERROR") {
		t.Logf("agent c: %s", cOut.String())
	}

	secrets := map[string][]byte{
		"join token":           []byte(tok.Token),
		"authorization header": []byte(bearer),
		"body marker":          []byte(marker),
		"query token":          []byte("sealtest-query-token-11aa"),
	}
	// The CA's keys, from the sealed store.
	serverDir := filepath.Join(dir, "server")
	kr := openKeyring(t, serverDir, serverDir+".kek")
	st, err := store.OpenBolt(store.BoltConfig{Dir: serverDir, Sealer: kr.AEAD()})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := st.Get(ctx, "ca/state")
	if err != nil {
		t.Fatal(err)
	}
	// The audit log's signer key lives in the sealed store, nowhere else.
	akv, err := st.Get(ctx, audit.DefaultStoreKey)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	skey := strings.TrimSpace(string(akv.Value))
	secrets["audit signer key"] = []byte(skey)
	// "PRIVATE+KEY+name+hash+base64(alg||seed)": the base64 text may hold
	// '+' itself, so the seed is the fifth field, not what follows the
	// last '+'.
	fields := strings.SplitN(skey, "+", 5)
	if len(fields) != 5 {
		t.Fatalf("the audit signer key has %d fields, want 5", len(fields))
	}
	raw, err := base64.StdEncoding.DecodeString(fields[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize {
		t.Fatalf("the audit signer key's seed: %d bytes, %v; want %d", len(raw), err, 1+ed25519.SeedSize)
	}
	secrets["audit signer key (raw)"] = raw[1:]
	td, err := identity.ParseTrustDomain("moat.dev")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.Unmarshal(ca.Config{TrustDomain: td}, kv.Value, kr.AEAD())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range c.State().Authorities {
		if a.RootKey != nil {
			keyForms(t, "CA root key", a.RootKey, secrets)
		}
		keyForms(t, "CA intermediate key", a.InterKey, secrets)
	}
	// Node and service keys, sealed by the agents.
	keyForms(t, "node a key", sealedKey(t, kr.AEAD(), filepath.Join(dir, "agent-a"), "a", "node"), secrets)
	keyForms(t, "service frontend key", sealedKey(t, kr.AEAD(), filepath.Join(dir, "agent-a"), "a", "svids/frontend"), secrets)
	krC := openKeyring(t, agentC, agentC+".kek")
	keyForms(t, "node c key", sealedKey(t, krC.AEAD(), agentC, "c", "node"), secrets)

	findings, err := seal.ScanPlaintext(secrets, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		t.Errorf("%s found %s at %s offset %d", f.Secret, f.Form, f.Path, f.Offset)
	}

	// The scan finds what is there: plant two of the secrets and look again.
	planted := filepath.Join(t.TempDir(), "planted")
	os.WriteFile(planted, append(append([]byte("x"), secrets["node a key (PEM)"]...), secrets["body marker"]...), 0o600)
	got, err := seal.ScanPlaintext(secrets, filepath.Dir(planted))
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]bool{}
	for _, f := range got {
		labels[f.Secret] = true
	}
	if !labels["node a key (PEM)"] || !labels["body marker"] {
		t.Fatalf("the scan missed planted secrets: %+v", got)
	}
}

func openKeyring(t *testing.T, dir, kekFile string) *seal.Keyring {
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

// sealedKey opens the private key an agent sealed in dataDir/rel.
func sealedKey(t *testing.T, a seal.KEK, dataDir, node, rel string) crypto.Signer {
	t.Helper()
	der, err := seal.ReadSealedFile(filepath.Join(dataDir, rel, "key.sealed"), a, "agent/"+node+"/"+rel+"/key")
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		t.Fatal(err)
	}
	return k.(crypto.Signer)
}
