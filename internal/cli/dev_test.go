package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"moat/internal/testkit"
)

// freePortBase finds a run of n free loopback ports. It looks below the
// kernel's ephemeral range (32768 and up here), where ports that other tests
// get from ":0" are not handed out, so a run found free stays free.
// freePortBase returns the first of n consecutive free ports (freePortRun).
func freePortBase(t *testing.T, n int) int {
	t.Helper()
	return freePortRun(t.Fatalf, n)
}

var waitFor = testkit.WaitFor

// ruleID matches a WAF rule ID as a word of its own.
var ruleID = regexp.MustCompile(`\b[0-9]{5,6}\b`)

// devRun is a running moat dev.
type devRun struct {
	p         devPorts
	dir       string
	out, errb *syncBuffer
	done      chan int
}

// startDev starts moat dev on free ports. Ports found free can be taken by
// another test before moat dev binds them; a start that fails that way is
// tried again on other ports.
func startDev(t *testing.T, ctx context.Context) *devRun {
	t.Helper()
	for attempt := 0; attempt < 3; attempt++ {
		base := freePortBase(t, devPortCount)
		r := &devRun{p: defaultDevPorts(base), dir: t.TempDir(), out: &syncBuffer{}, errb: &syncBuffer{}, done: make(chan int, 1)}
		go func() {
			r.done <- Run(ctx, &Env{Stdout: r.out, Stderr: r.errb, Getenv: func(string) string { return "" }},
				[]string{"dev", "--data-dir", r.dir, "--port-base", strconv.Itoa(base)})
		}()
		exited := -1
		waitFor(t, "moat dev to come up", func() bool {
			select {
			case code := <-r.done:
				exited = code
				return true
			default:
			}
			return strings.Contains(r.out.String(), "moat dev is running")
		})
		if exited < 0 {
			return r
		}
		if !strings.Contains(r.errb.String(), "address already in use") {
			t.Fatalf("moat dev exited %d early: %s %s", exited, r.out.String(), r.errb.String())
		}
		t.Logf("ports taken meanwhile, trying others: %s", r.errb.String())
	}
	t.Fatal("moat dev could not find free ports")
	return nil
}

func TestDev(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := startDev(t, ctx)
	p, dir, out, errb, done := r.p, r.dir, r.out, r.errb, r.done
	client := &http.Client{Timeout: 10 * time.Second}

	t.Log("allowed: frontend → api → db")
	resp, err := client.Get("http://" + loop(p.Frontend) + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"served_by":"db"`) {
		t.Fatalf("allowed call: %s %s", resp.Status, body)
	}

	t.Log("denied: frontend → db has no rule")
	if resp, err := client.Get("http://" + loop(p.FrontToDB) + "/"); err == nil {
		resp.Body.Close()
		t.Fatalf("frontend → db answered %s", resp.Status)
	}
	waitFor(t, "the deny flow", func() bool {
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.Contains(l, "DENY") && strings.Contains(l, "frontend → db") && strings.Contains(l, "rule=default-deny") {
				return true
			}
		}
		return false
	})

	t.Log("edge: the gateway serves the page through the mesh, with HSTS, from a moat-CA certificate")
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(filepath.Join(dir, "admin", "bundle.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(pem)
	tlsClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = tlsClient.Get("https://" + loop(p.HTTPS) + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"served_by":"db"`) {
		t.Fatalf("through the gateway: %s %s", resp.Status, body)
	}
	if !strings.Contains(resp.Header.Get("Strict-Transport-Security"), "max-age=31536000") {
		t.Fatalf("HSTS header %q", resp.Header.Get("Strict-Transport-Security"))
	}
	resp, err = tlsClient.Get("http://" + loop(p.HTTP) + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPermanentRedirect && resp.StatusCode != http.StatusMovedPermanently {
		t.Fatalf("plain HTTP answered %s, want a redirect", resp.Status)
	}
	resp, err = tlsClient.Get("https://" + loop(p.HTTPS) + "/?id=1%27%20OR%20%271%27=%271")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	// A rule ID (CRS's six digits, moat's five) standing alone; the random
	// request ID is one 32-digit hex word and may hold any digits inside.
	if resp.StatusCode != http.StatusForbidden || ruleID.Match(body) {
		t.Fatalf("SQL injection: %s %s (want 403 naming no rule)", resp.Status, body)
	}
	waitFor(t, "the WAF event in the stream", func() bool { return strings.Contains(out.String(), "WAF     403") })

	t.Log("refused: the mesh port without a client certificate")
	conn, err := tls.Dial("tcp", loop(p.MeshA), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err == nil {
		// TLS 1.3 reports a missing client certificate on the first read.
		conn.SetDeadline(time.Now().Add(testkit.WaitLimit))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil {
		t.Fatal("a client without a certificate got through the mesh port")
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("moat dev exited %d: %s", code, errb.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("moat dev did not stop")
	}
	if !strings.Contains(out.String(), "moat dev: stopping") {
		t.Fatal("no stop message")
	}
}
