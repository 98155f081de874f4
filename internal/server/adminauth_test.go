package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/ca"
	"moat/internal/flow/flowstore"
	"moat/internal/identity"
	"moat/internal/seal"
	"moat/internal/store"
	"moat/internal/testkit"
)

// authFixture is a running server with every optional part an admin call
// may need (a key manager, a flow store, a published audit log) and the
// default MFA configuration, and administrators of every role.
type authFixture struct {
	ctx  context.Context
	srv  *Server
	st   store.Store
	log  *audit.Log
	accs map[string]*authAccount
}

// authAccount is an administrator: its enrolment certificate, its MFA
// session certificate when it holds one, and its TOTP secret.
type authAccount struct {
	name, role, id string
	cert, session  *tls.Certificate
	secret         string
	last           int64 // the last 30s step whose code was used
}

func newAuthFixture(t *testing.T) *authFixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	dir := t.TempDir()
	discard := slog.New(slog.DiscardHandler)
	kek, err := seal.GenerateKeyFile(filepath.Join(dir, "kek"), nil)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := seal.Open(seal.Config{Dir: dir, KEK: kek})
	if err != nil {
		t.Fatal(err)
	}
	sealer := NewStoreSealer(kr.AEAD())
	st, err := store.OpenBolt(store.BoltConfig{Dir: dir, Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	adminDir := filepath.Join(dir, "admin")
	if err := Init(ctx, st, InitConfig{TrustDomain: "example.org", AdminDir: adminDir}); err != nil {
		t.Fatal(err)
	}
	alog, err := audit.Open(audit.Config{Dir: filepath.Join(dir, audit.DirName), Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alog.Close() })
	fs, err := flowstore.OpenStore(flowstore.StoreConfig{Dir: filepath.Join(dir, "flows")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	keys, err := NewKeys(KeysConfig{Keyring: kr, KEK: kek, Store: st, StoreSealer: sealer, Audit: alog, AuditLog: alog,
		DataDir: dir, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(ctx, Config{Listen: "127.0.0.1:0", Store: st, Audit: alog, AuditLog: alog, Flows: fs, Keys: keys, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	testkit.WaitFor(t, "the server ready", func() bool {
		select {
		case <-srv.Ready():
			return true
		default:
			return false
		}
	})
	f := &authFixture{ctx: ctx, srv: srv, st: st, log: alog, accs: map[string]*authAccount{}}

	cert, _, err := api.LoadCredentials(adminDir)
	if err != nil {
		t.Fatal(err)
	}
	admin := f.account(t, "admin", api.RoleAdmin, cert)
	f.enrolMFA(t, admin)
	for _, a := range []struct{ name, role string }{{"op", api.RoleOperator}, {"viewer", api.RoleViewer}, {"nobody", api.RoleViewer}} {
		key, csr, err := ca.NewKeyCSR()
		if err != nil {
			t.Fatal(err)
		}
		var resp api.CertResponse
		if code, e := f.call(t, admin.session, "POST", api.PathAdmins, api.AdminRequest{Name: a.name, Role: a.role, CSR: csr}, &resp); code != http.StatusOK {
			t.Fatalf("admin create %s: %d %s", a.name, code, e.Error)
		}
		chain, err := api.ParseChain(resp.Chain)
		if err != nil {
			t.Fatal(err)
		}
		f.account(t, a.name, a.role, ca.TLSCertificate(chain, key))
	}
	f.enrolMFA(t, f.accs["op"])
	// nobody holds a valid admin certificate the store has no role for,
	// as after its record was lost: it is the role below viewer.
	if _, err := st.Delete(ctx, prefixAdmin+"nobody"); err != nil {
		t.Fatal(err)
	}
	f.accs["nobody"].role = ""
	return f
}

func (f *authFixture) account(t *testing.T, name, role string, cert *tls.Certificate) *authAccount {
	t.Helper()
	id, err := identity.AdminID(f.srv.td, name)
	if err != nil {
		t.Fatal(err)
	}
	a := &authAccount{name: name, role: role, id: id.String(), cert: cert}
	f.accs[name] = a
	return a
}

// enrolMFA enrols a TOTP authenticator for a through the API and trades a
// code for an MFA session certificate, as an administrator does.
func (f *authFixture) enrolMFA(t *testing.T, a *authAccount) {
	t.Helper()
	var en api.MFAEnrollment
	if code, e := f.call(t, a.cert, "POST", api.PathMFAEnroll, nil, &en); code != http.StatusOK {
		t.Fatalf("mfa enroll %s: %d %s", a.name, code, e.Error)
	}
	a.secret = en.Secret
	if code, e := f.call(t, a.cert, "POST", api.PathMFAConfirm, api.MFACode{Code: a.code(t)}, nil); code != http.StatusOK {
		t.Fatalf("mfa confirm %s: %d %s", a.name, code, e.Error)
	}
	key, csr, err := ca.NewKeyCSR()
	if err != nil {
		t.Fatal(err)
	}
	var resp api.CertResponse
	if code, e := f.call(t, a.cert, "POST", api.PathMFASession, api.MFASessionRequest{Code: a.code(t), CSR: csr}, &resp); code != http.StatusOK {
		t.Fatalf("mfa session %s: %d %s", a.name, code, e.Error)
	}
	chain, err := api.ParseChain(resp.Chain)
	if err != nil {
		t.Fatal(err)
	}
	a.session = ca.TLSCertificate(chain, key)
}

// code is the authenticator's code of a step not used before: the server
// takes one step of skew, so two codes in a row need no wait.
func (a *authAccount) code(t *testing.T) string {
	t.Helper()
	now := time.Now().Unix() / 30
	step := max(now, a.last+1)
	if step > now+1 {
		t.Fatalf("%s: every code the server would take now is spent", a.name)
	}
	c, err := totp.GenerateCode(a.secret, time.Unix(step*30, 0))
	if err != nil {
		t.Fatal(err)
	}
	a.last = step
	return c
}

// call makes one call presenting cert (none when nil) and returns the
// status and, for an error, its answer. A streamed answer is not read.
func (f *authFixture) call(t *testing.T, cert *tls.Certificate, method, path string, in, out any) (int, api.Error) {
	t.Helper()
	var src api.CertSource
	if cert != nil {
		src = func() (*tls.Certificate, error) { return cert, nil }
	}
	tr := &http.Transport{TLSClientConfig: api.ClientTLS(src, f.srv.trust), ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	// The bound guards against a hang; no answer is expected to take long.
	ctx, cancel := context.WithTimeout(f.ctx, testkit.WaitLimit)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, "https://"+f.srv.Addr()+path, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var e api.Error
	switch {
	case resp.StatusCode >= 400:
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&e); err != nil {
			t.Fatalf("%s %s: %d with no error answer: %v", method, path, resp.StatusCode, err)
		}
	case out != nil:
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return resp.StatusCode, e
}

// revisions is the store's keys with the revision of their last change,
// but for the members' heartbeats, which change on their own.
func (f *authFixture) revisions(t *testing.T) map[string]int64 {
	t.Helper()
	kvs, _, err := f.st.List(f.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, kv := range kvs {
		if !strings.HasPrefix(kv.Key, prefixMember) {
			out[kv.Key] = kv.ModRevision
		}
	}
	return out
}

// entriesSince returns the audit entries appended from index from on.
func (f *authFixture) entriesSince(t *testing.T, from int64) []audit.Indexed {
	t.Helper()
	es, err := f.log.Entries(from, f.log.Size())
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// TestAdminRouteAuthorization: for every admin call the server answers
// (AdminRoutes, so calls added later are covered without touching this
// test), a caller without a certificate and callers whose role is below the
// call's least role (an admin certificate with no role, a viewer, an
// operator, an operator with an MFA session) are refused with 401 or 403,
// change nothing in the store, and leave no audit entry but the refusal
// summary; an administrator with exactly the least role (and the MFA
// session the configuration asks of that call) is not refused for
// authorization, and the call is audited under its action.
func TestAdminRouteAuthorization(t *testing.T) {
	f := newAuthFixture(t)
	routes := f.srv.AdminRoutes()
	if len(routes) < 40 {
		t.Fatalf("AdminRoutes lists %d calls; the server answers more", len(routes))
	}
	seen := map[string]bool{}
	for _, r := range routes {
		if api.RoleRank(r.Role) == 0 {
			t.Errorf("%s %s: least role %q is no role: every admin certificate would pass", r.Method, r.Path, r.Role)
		}
		if r.Action == "" || seen[r.Method+" "+r.Path] {
			t.Errorf("%s %s: listed twice or without an action (%q)", r.Method, r.Path, r.Action)
		}
		seen[r.Method+" "+r.Path] = true
	}

	t.Log("refused: no certificate, and every role below each call's")
	before, size := f.revisions(t), f.log.Size()
	for _, r := range routes {
		type attempt struct {
			who  string
			cert *tls.Certificate
		}
		tries := []attempt{{"no certificate", nil}}
		for _, name := range []string{"nobody", "viewer", "op"} {
			a := f.accs[name]
			if api.RoleRank(a.role) >= api.RoleRank(r.Role) {
				continue
			}
			tries = append(tries, attempt{name + " (role " + a.role + ")", a.cert})
			if a.session != nil {
				tries = append(tries, attempt{name + " (role " + a.role + ") with an MFA session", a.session})
			}
		}
		for _, try := range tries {
			code, e := f.call(t, try.cert, r.Method, r.Path, nil, nil)
			if code != http.StatusUnauthorized && code != http.StatusForbidden {
				t.Errorf("%s %s (least role %s) by %s: %d %q, want 401 or 403", r.Method, r.Path, r.Role, try.who, code, e.Error)
			}
		}
	}
	after := f.revisions(t)
	for k, rev := range after {
		if before[k] != rev {
			t.Errorf("refused calls changed %q in the store (revision %d, was %d)", k, rev, before[k])
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			t.Errorf("refused calls removed %q from the store", k)
		}
	}
	for _, e := range f.entriesSince(t, size) {
		if e.Entry.Action != ActionRefused {
			t.Errorf("a refused call was audited one by one: %+v", e.Entry)
		}
	}

	t.Log("not refused for authorization: exactly each call's least role")
	holder := map[string]*authAccount{api.RoleViewer: f.accs["viewer"], api.RoleOperator: f.accs["op"], api.RoleAdmin: f.accs["admin"]}
	for _, r := range routes {
		a := holder[r.Role]
		if a == nil {
			continue // reported above
		}
		cert, how := a.cert, ""
		if f.srv.mfa.requires(r.Role, r.Action) {
			cert, how = a.session, " with an MFA session"
		}
		size := f.log.Size()
		code, e := f.call(t, cert, r.Method, r.Path, nil, nil)
		if code == http.StatusUnauthorized || code == http.StatusForbidden {
			t.Errorf("%s %s by %s (role %s)%s: refused %d %q", r.Method, r.Path, a.name, a.role, how, code, e.Error)
			continue
		}
		t.Logf("%s %s by %s%s: %d %s", r.Method, r.Path, a.role, how, code, e.Error)
		audited := false
		for _, x := range f.entriesSince(t, size) {
			if x.Entry.Action == r.Action && x.Entry.Actor == a.id && !strings.HasPrefix(x.Entry.Result, "denied") {
				audited = true
			}
		}
		if !audited {
			t.Errorf("%s %s by %s: no audit entry of %q", r.Method, r.Path, a.name, r.Action)
		}
	}
}
