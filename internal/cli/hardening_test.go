package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/server"
	"moat/internal/store/storetest"
)

// sealedServer is a control plane started the way an operator starts one:
// "moat server init", then "moat server run" on a port of its choosing,
// with a sealed store and the KEK beside the data directory.
type sealedServer struct {
	dir, addr string
	stderr    *syncBuffer
	done      chan int
	cancel    context.CancelFunc
}

var listeningRE = regexp.MustCompile(`msg="control plane listening" addr=(\S+)`)

// startSealedServer inits a data directory, lets prep change it (mount a
// small disk on part of it, say), and runs the server until the test ends.
func startSealedServer(t *testing.T, prep func(dataDir string)) *sealedServer {
	t.Helper()
	s := &sealedServer{dir: filepath.Join(t.TempDir(), "server"), stderr: &syncBuffer{}, done: make(chan int, 1)}
	if code, _, errOut := runCLI(t, nil, "server", "init", "--data-dir", s.dir, "--trust-domain", "example.org"); code != 0 {
		t.Fatalf("server init: exit %d: %s", code, errOut)
	}
	if prep != nil {
		prep(s.dir)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		s.done <- Run(ctx, &Env{Stdout: io.Discard, Stderr: s.stderr, Stdin: strings.NewReader(""), Getenv: func(string) string { return "" }},
			[]string{"server", "run", "--data-dir", s.dir, "--listen", "127.0.0.1:0"})
	}()
	t.Cleanup(func() {
		s.stop(t)
		if t.Failed() {
			t.Logf("server stderr:\n%s", s.stderr.String())
		}
	})
	waitFor(t, "the server to listen", func() bool {
		select {
		case code := <-s.done:
			s.done <- code
			t.Fatalf("server run exited %d:\n%s", code, s.stderr.String())
		default:
		}
		m := listeningRE.FindStringSubmatch(s.stderr.String())
		if m != nil {
			s.addr = m[1]
		}
		return m != nil
	})
	return s
}

// stop ends the server and waits for it; it is idempotent.
func (s *sealedServer) stop(t *testing.T) {
	t.Helper()
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case code := <-s.done:
		if code != 0 {
			t.Errorf("server run exited %d", code)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("server run did not stop")
	}
}

// admin is the server's first administrator, enrolled with a TOTP
// authenticator and logged in (an MFA session), as production needs for
// the sensitive calls.
func (s *sealedServer) admin(t *testing.T) *api.Client {
	t.Helper()
	mfaLogin(t, nil, s.addr, s.dir+".admin")
	c, err := api.NewAdminSession(s.addr, s.dir+".admin", api.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.Client
}

// auditEntries reads the server's audit log with its keyring.
func (s *sealedServer) auditEntries(t *testing.T) []audit.Indexed {
	t.Helper()
	return readAudit(t, s.dir, s.dir+".kek")
}

// dirSize is the bytes of the regular files directly in dir.
func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, de := range des {
		if fi, err := de.Info(); err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
	}
	return n
}

func call(t *testing.T, c *api.Client, method, path string, in, out any) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return c.Call(ctx, method, path, in, out)
}

// TestAnonymousJoinFloodIsBounded: 1,000 anonymous joins with 1 MB node
// names, sent without a client certificate, grow the audit log by a small
// bounded amount, and admin calls keep working meanwhile and after.
func TestAnonymousJoinFloodIsBounded(t *testing.T) {
	s := startSealedServer(t, nil)
	admin := s.admin(t)
	if err := call(t, admin, http.MethodGet, api.PathWhoami, nil, nil); err != nil {
		t.Fatal(err)
	}
	auditDir := filepath.Join(s.dir, audit.DirName)
	before := dirSize(t, auditDir)
	// One summary entry, its tree hashes and its checkpoint come to about
	// 2 KB; the bound leaves room for several windows.
	const bound = 32 << 10

	body, err := json.Marshal(api.JoinRequest{Token: "moatjoin.forged.pin", Node: strings.Repeat("n", 1_000_000), MeshAddr: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	attacker := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxConnsPerHost: 8, ForceAttemptHTTP2: true,
	}}
	defer attacker.CloseIdleConnections()
	const joins, workers = 1000, 8
	var sent atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for failed.Load() == nil && sent.Add(1) <= joins {
				resp, err := attacker.Post("https://"+s.addr+api.PathJoin, "application/json", bytes.NewReader(body))
				if err != nil {
					failed.Store(fmt.Sprintf("join: %v", err))
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					failed.Store("a forged join succeeded")
					return
				}
				if grown := dirSize(t, auditDir) - before; grown > bound {
					failed.Store(fmt.Sprintf("after %d joins the audit log grew by %d bytes, more than %d", sent.Load(), grown, bound))
					return
				}
			}
		}()
	}
	// Admin calls are served while the flood goes on.
	if err := call(t, admin, http.MethodPost, api.PathServices, api.Registration{Name: "api", Node: "n1", Port: 8080}, nil); err != nil {
		t.Fatalf("admin call during the flood: %v", err)
	}
	wg.Wait()
	if f := failed.Load(); f != nil {
		t.Fatal(f)
	}
	if err := call(t, admin, http.MethodPost, api.PathServices, api.Registration{Name: "db", Node: "n1", Port: 5432}, nil); err != nil {
		t.Fatalf("admin call after the flood: %v", err)
	}
	s.stop(t) // the last window's summary is written on the way out
	grown := dirSize(t, auditDir) - before
	t.Logf("1000 joins of 1 MB grew the audit log by %d bytes", grown)
	if grown > bound {
		t.Fatalf("the audit log grew by %d bytes, more than %d", grown, bound)
	}
	refused := int64(0)
	for _, e := range s.auditEntries(t) {
		if e.Entry.Action == server.ActionRefused {
			var n int64
			fmt.Sscan(e.Entry.Detail["count"], &n)
			refused += n
			if len(e.Entry.Target)+len(e.Entry.Detail["top"]) > 4096 {
				t.Fatalf("a summary entry is large: %+v", e.Entry)
			}
		}
	}
	if refused != joins {
		t.Fatalf("the summaries count %d refused calls, want %d", refused, joins)
	}
}

// TestNoChangeWithoutAuditEntry: while the audit log's file system is
// full, a mutating admin call is refused before anything changes; once
// space is back, the same server takes it, with no restart.
func TestNoChangeWithoutAuditEntry(t *testing.T) {
	var auditDisk string
	s := startSealedServer(t, func(dir string) {
		auditDisk = filepath.Join(dir, audit.DirName)
		if err := os.Mkdir(auditDisk, 0o700); err != nil {
			t.Fatal(err)
		}
		storetest.MountSmallDisk(t, auditDisk, 1<<20)
	})
	admin := s.admin(t)
	narrow := "default: deny\nrules:\n  - name: web-to-api\n    from: [web]\n    to: api\n    ports: [8080]\n"
	wide := "default: deny\nrules:\n  - name: anything\n    from: [\"*\"]\n    to: api\n    ports: [8080]\n"
	if err := call(t, admin, http.MethodPost, api.PathPolicy, api.PolicyRequest{YAML: narrow}, nil); err != nil {
		t.Fatal(err)
	}

	// A full file system still takes small appends into the blocks its
	// files already hold; apply policies until the log can take no more.
	// Each call either takes effect with its intent on record, or is
	// refused with nothing changed.
	free := storetest.Fill(t, auditDisk)
	current, intents, refusedAt := narrow, 1, ""
	for k := 0; k < 200 && refusedAt == ""; k++ {
		next := fmt.Sprintf("default: deny\nrules:\n  - name: rule-%d\n    from: [\"*\"]\n    to: api\n    ports: [8080]\n", k)
		err := call(t, admin, http.MethodPost, api.PathPolicy, api.PolicyRequest{YAML: next}, nil)
		switch {
		case err == nil:
			current, intents = next, intents+1
		case errors.Is(err, api.ErrUnavailable) && strings.Contains(err.Error(), "nothing was changed"):
			refusedAt = next
		case errors.Is(err, api.ErrUnavailable) && strings.Contains(err.Error(), "is on record"):
			current, intents = next, intents+1 // the intent is on record, the outcome is not
		default:
			t.Fatalf("policy apply on a full disk: %v", err)
		}
	}
	if refusedAt == "" {
		t.Fatal("200 policies applied on a full file system; the audit log never refused one")
	}
	t.Logf("on the full disk the audit log took %d more intents, then refused the call", intents-1)
	err := call(t, admin, http.MethodPost, api.PathServices, api.Registration{Name: "api", Node: "n1", Port: 8080}, nil)
	if !errors.Is(err, api.ErrUnavailable) {
		t.Fatalf("svc register with the audit log full: %v, want 503", err)
	}

	free()
	var cur api.Policy
	if err := call(t, admin, http.MethodGet, api.PathPolicy, nil, &cur); err != nil {
		t.Fatalf("once space is back, without a restart: %v", err)
	}
	if cur.YAML != current {
		t.Fatalf("the refused policy took effect without its audit entry:\n%s", cur.YAML)
	}
	var svcs []api.Registration
	if err := call(t, admin, http.MethodGet, api.PathServices, nil, &svcs); err != nil || len(svcs) != 0 {
		t.Fatalf("services %+v (%v): a registration went through unaudited", svcs, err)
	}
	if err := call(t, admin, http.MethodPost, api.PathPolicy, api.PolicyRequest{YAML: wide}, nil); err != nil {
		t.Fatalf("policy apply once space is back: %v", err)
	}
	s.stop(t)
	pending := 0
	for _, e := range s.auditEntries(t) {
		if e.Entry.Action == "policy.apply" && e.Entry.Result == "pending" {
			pending++
		}
	}
	if pending != intents+1 {
		t.Fatalf("%d policy.apply intents on record, want %d: one per policy that took effect", pending, intents+1)
	}
	if _, err := audit.Open(audit.Config{Dir: auditDisk, ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, nil, "audit", "verify", "--data-dir", s.dir)
	if code != 0 {
		t.Fatalf("audit verify after the full disk: %s %s", out, errOut)
	}
}
