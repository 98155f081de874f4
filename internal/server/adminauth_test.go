package server

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
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
	kr   *seal.Keyring
	accs map[string]*authAccount
	// auditDown makes every audit entry fail to be written, as a full
	// disk under the audit log does.
	auditDown *atomic.Bool
}

// authAccount is an administrator: its enrolment certificate, its MFA
// session certificate when it holds one, and its TOTP secret.
type authAccount struct {
	name, role, id string
	account        string // adminRecord.Account
	cert, session  *tls.Certificate
	secret         string
	last           int64 // the last 30s step whose code was used
}

func newAuthFixture(t *testing.T) *authFixture {
	t.Helper()
	return newAuthFixtureWith(t, authOptions{})
}

// authOptions change what newAuthFixtureWith gives the server.
type authOptions struct {
	now    func() time.Time              // its clock; nil: the system's
	store  func(store.Store) store.Store // wraps the store it is given; nil: none
	access func(*AccessConfig)           // changes its access configuration; nil: none
	// etcd holds the state in that etcd cluster instead of bbolt (the
	// audit log stays in the data directory); nil: bbolt.
	etcd []string
}

func newAuthFixtureWith(t *testing.T, o authOptions) *authFixture {
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
	var st store.Store
	if o.etcd != nil {
		st, err = store.OpenEtcd(ctx, store.EtcdConfig{Endpoints: o.etcd, Prefix: "/moat/", Sealer: sealer, RequestTimeout: 3 * time.Second})
	} else {
		st, err = store.OpenBolt(store.BoltConfig{Dir: dir, Sealer: sealer})
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	adminDir := filepath.Join(dir, "admin")
	if err := Init(ctx, st, InitConfig{TrustDomain: "example.org", AdminDir: adminDir, Sealer: kr.AEAD()}); err != nil {
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
	down := new(atomic.Bool)
	gate := audit.RecorderFunc(func(ctx context.Context, e audit.Entry) error {
		if down.Load() {
			return errors.New("audit: no space left on device")
		}
		return alog.Record(ctx, e)
	})
	var served store.Store = st
	if o.store != nil {
		served = o.store(st)
	}
	access := AccessConfig{RecordingsDir: filepath.Join(dir, "recordings")}
	if o.access != nil {
		o.access(&access)
	}
	srv, err := New(ctx, Config{Listen: "127.0.0.1:0", Store: served, Sealer: kr.AEAD(), Audit: gate, AuditLog: alog, Flows: fs, Keys: keys,
		Access: access, Heartbeat: 100 * time.Millisecond, Logger: discard, Now: o.now})
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
	f := &authFixture{ctx: ctx, srv: srv, st: st, log: alog, kr: kr, accs: map[string]*authAccount{}, auditDown: down}

	cert, _, err := api.LoadCredentials(adminDir)
	if err != nil {
		t.Fatal(err)
	}
	admin := f.account(t, "admin", api.RoleAdmin, cert)
	f.enrolMFA(t, admin)
	for _, a := range []struct{ name, role string }{{"op", api.RoleOperator}, {"viewer", api.RoleViewer}, {"nobody", api.RoleViewer}} {
		f.newAdmin(t, a.name, a.role)
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
	var rec adminRecord
	if err := getJSON(f.ctx, f.st, prefixAdmin+name, &rec); err != nil {
		t.Fatal(err)
	}
	a := &authAccount{name: name, role: role, id: id.String(), account: rec.Account, cert: cert}
	f.accs[name] = a
	return a
}

// enrolMFA enrols a TOTP authenticator for a through the API and trades a
// code for an MFA session certificate, as an administrator does.
func (f *authFixture) enrolMFA(t *testing.T, a *authAccount) {
	t.Helper()
	f.confirmMFA(t, a)
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

// confirmMFA enrols a TOTP authenticator for a and confirms it with a first
// code, without logging in.
func (f *authFixture) confirmMFA(t *testing.T, a *authAccount) {
	t.Helper()
	var en api.MFAEnrollment
	if code, e := f.call(t, a.cert, "POST", api.PathMFAEnroll, nil, &en); code != http.StatusOK {
		t.Fatalf("mfa enroll %s: %d %s", a.name, code, e.Error)
	}
	a.secret = en.Secret
	if code, e := f.call(t, a.cert, "POST", api.PathMFAConfirm, api.MFACode{Code: a.code(t)}, nil); code != http.StatusOK {
		t.Fatalf("mfa confirm %s: %d %s", a.name, code, e.Error)
	}
}

// newAdmin creates an administrator through the API, as an admin with an
// MFA session does.
func (f *authFixture) newAdmin(t *testing.T, name, role string) *authAccount {
	t.Helper()
	key, csr, err := ca.NewKeyCSR()
	if err != nil {
		t.Fatal(err)
	}
	var resp api.CertResponse
	if code, e := f.call(t, f.accs["admin"].session, "POST", api.PathAdmins, api.AdminRequest{Name: name, Role: role, CSR: csr}, &resp); code != http.StatusOK {
		t.Fatalf("admin create %s: %d %s", name, code, e.Error)
	}
	chain, err := api.ParseChain(resp.Chain)
	if err != nil {
		t.Fatal(err)
	}
	return f.account(t, name, role, ca.TLSCertificate(chain, key))
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

// transport presents cert (none when nil) to the fixture's server.
func (f *authFixture) transport(cert *tls.Certificate) *http.Transport {
	var src api.CertSource
	if cert != nil {
		src = func() (*tls.Certificate, error) { return cert, nil }
	}
	return &http.Transport{TLSClientConfig: api.ClientTLS(src, f.srv.trust), ForceAttemptHTTP2: true}
}

// call makes one call presenting cert (none when nil) and returns the
// status and, for an error, its answer. A streamed answer is not read.
func (f *authFixture) call(t *testing.T, cert *tls.Certificate, method, path string, in, out any) (int, api.Error) {
	t.Helper()
	tr := f.transport(cert)
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
		if f.srv.mfa.Requires(r.Role, r.Action) {
			// The enrolment certificate alone is refused for want of
			// the second factor, before the call runs.
			if code, e := f.call(t, a.cert, r.Method, r.Path, nil, nil); code != http.StatusUnauthorized || e.Reason != api.ReasonMFARequired {
				t.Errorf("%s %s by %s (role %s) without an MFA session: %d %q (reason %q), want 401 %s", r.Method, r.Path, a.name, a.role, code, e.Error, e.Reason, api.ReasonMFARequired)
			}
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

// TestAccessRecordingNeedsMFA: a break-glass session's recording holds
// whatever was typed and shown in a root shell, so fetching it asks what
// fetching the grant's credentials asks (access.cert): the operator role
// and a live MFA session (who among those reads which recording is
// TestAccessRecordingReaders). A stolen enrolment certificate, of the
// operator who held the session or of an admin, gets no byte of it; nor
// does a viewer, nor an MFA session its holder ended; the same operator
// with a live session reads it whole.
func TestAccessRecordingNeedsMFA(t *testing.T) {
	f := newAuthFixture(t)
	for _, action := range []string{"access.cert", "access.recording"} {
		for _, role := range []string{api.RoleOperator, api.RoleAdmin} {
			if !f.srv.mfa.Requires(role, action) {
				t.Errorf("the default MFA configuration lets role %s make %s without a second factor", role, action)
			}
		}
	}
	var rec AdminRoute
	for _, r := range f.srv.AdminRoutes() {
		if r.Path == api.PathAccessRec {
			rec = r
		}
	}
	if rec.Role != api.RoleOperator || rec.Method != http.MethodGet {
		t.Fatalf("the recording call is %+v, want GET by role operator", rec)
	}

	t.Log("a recording on the server, as an agent's upload leaves it, of a session the operator held")
	op, admin, viewer := f.accs["op"], f.accs["admin"], f.accs["viewer"]
	secret := "root@web-1:~# echo hunter2-" + newSessionID()
	body := []byte(`{"version": 2, "width": 80, "height": 24}` + "\n" + `[0.1, "o", "` + secret + `\r\n"]` + "\n")
	g := api.Grant{ID: "1" + strings.Repeat("0", 31), Requester: op.id, RequesterAccount: op.account, Node: "web-1", Mode: api.ModeShell}
	x := f.plantRecording(t, g, body, true)
	url := api.PathAccessRec + "?session=" + x.ID

	for _, try := range []struct {
		who    string
		cert   *tls.Certificate
		code   int
		reason string
	}{
		{"no certificate", nil, http.StatusUnauthorized, ""},
		{"a viewer", viewer.cert, http.StatusForbidden, ""},
		{"an operator's enrolment certificate", op.cert, http.StatusUnauthorized, api.ReasonMFARequired},
		{"an admin's enrolment certificate", admin.cert, http.StatusUnauthorized, api.ReasonMFARequired},
	} {
		code, e, got := f.fetch(t, try.cert, url)
		if code != try.code || e.Reason != try.reason || strings.Contains(string(got), "hunter2") {
			t.Errorf("recording fetched with %s: %d %q (reason %q), %d bytes; want %d (reason %q) and none of it", try.who, code, e.Error, e.Reason, len(got), try.code, try.reason)
		}
	}

	t.Log("the operator with a live MFA session reads it whole")
	if code, e, got := f.fetch(t, op.session, url); code != http.StatusOK || string(got) != string(body) {
		t.Fatalf("recording fetched with an MFA session: %d %q: %q", code, e.Error, got)
	}

	t.Log("once the operator logs out, the session certificate is an enrolment one again")
	if code, e := f.call(t, op.cert, "POST", api.PathMFALogout, nil, nil); code != http.StatusOK {
		t.Fatalf("mfa logout: %d %s", code, e.Error)
	}
	if code, e, got := f.fetch(t, op.session, url); code != http.StatusUnauthorized || e.Reason != api.ReasonMFARequired || len(got) != 0 {
		t.Errorf("recording fetched with an ended MFA session: %d %q (reason %q), %d bytes", code, e.Error, e.Reason, len(got))
	}

	t.Log("the CLI's client (moat access replay, export) asks for a code once, then gets the recording")
	op2 := f.newAdmin(t, "op2", api.RoleOperator)
	f.confirmMFA(t, op2)
	x2 := f.plantRecording(t, api.Grant{ID: "2" + strings.Repeat("0", 31), Requester: op2.id, RequesterAccount: op2.account, Node: "web-1", Mode: api.ModeShell}, body, true)
	url = api.PathAccessRec + "?session=" + x2.ID
	dir := filepath.Join(t.TempDir(), "op2")
	if err := api.WriteCredentials(dir, op2.cert, f.srv.CA().Bundle().X509Authorities()); err != nil {
		t.Fatal(err)
	}
	bare, err := api.NewAdminClient(f.srv.Addr(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	var out strings.Builder
	if _, err := bare.Download(f.ctx, http.MethodGet, url, nil, &out); !errors.Is(err, api.ErrMFARequired) || out.Len() != 0 {
		t.Errorf("download with no way to ask for a code: %v, %d bytes written", err, out.Len())
	}
	asked := 0
	cl, err := api.NewAdminSession(f.srv.Addr(), dir, api.SessionConfig{Code: func(context.Context) (string, error) {
		asked++
		return op2.code(t), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.Download(f.ctx, http.MethodGet, url, nil, &out); err != nil || out.String() != string(body) || asked != 1 {
		t.Fatalf("download asking for a code: %v, %d codes asked, got %q", err, asked, out.String())
	}
}

// plantRecording stores grant g and a finished session of it held by its
// requester, as the agent's reports leave them, with body as its recording
// on the server's disk when stored.
func (f *authFixture) plantRecording(t *testing.T, g api.Grant, body []byte, stored bool) api.AccessSession {
	t.Helper()
	sum := sha256.Sum256(body)
	x := api.AccessSession{ID: newSessionID(), Grant: g.ID, Admin: g.Requester, AdminAccount: g.RequesterAccount, Node: g.Node, Mode: g.Mode, Recording: hex.EncodeToString(sum[:]),
		Started: time.Now().Add(-time.Minute).UTC(), Ended: time.Now().UTC(), Stored: stored}
	if stored {
		path, err := f.srv.recordingPath(x.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := seal.WriteSealedFile(path, f.kr.AEAD(), "recording/"+x.ID, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := putJSON(f.ctx, f.st, prefixGrant+g.ID, g); err != nil {
		t.Fatal(err)
	}
	if err := putJSON(f.ctx, f.st, sessionKey(x.Grant, x.ID), x); err != nil {
		t.Fatal(err)
	}
	return x
}

// fetch GETs path presenting cert and returns the status, the error answer
// or, for a success, the body.
func (f *authFixture) fetch(t *testing.T, cert *tls.Certificate, path string) (int, api.Error, []byte) {
	t.Helper()
	tr := f.transport(cert)
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(f.ctx, testkit.WaitLimit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+f.srv.Addr()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	var e api.Error
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("GET %s: %d with no error answer: %q", path, resp.StatusCode, b)
		}
		return resp.StatusCode, e, nil
	}
	return resp.StatusCode, e, b
}

// TestIdentityTakeoverNeedsMFA: who may reach what is the policy and who
// holds the identities it names. With an operator's enrolment certificate
// alone (stolen, say), an attacker would make a join token for a node,
// join a machine of their own with it (an existing node's name included:
// a join replaces the pinned key) and register a service on that node,
// then have the service's SVID signed: the service's identity and every
// path the policy gives it, with no second factor, where policy.apply
// asks for one. Each step that hands out identity is refused without an
// MFA session, before anything changes; with one, the same steps work, and
// the chain ends in the service's SVID, which is why they ask for it.
func TestIdentityTakeoverNeedsMFA(t *testing.T) {
	f := newAuthFixture(t)
	op := f.accs["op"]
	pay := api.Registration{Name: "payments", Node: "web-1", Port: 8080}
	if code, e := f.call(t, op.session, "POST", api.PathServices, pay, nil); code != http.StatusOK {
		t.Fatalf("svc register: %d %s", code, e.Error)
	}

	t.Log("with the operator's enrolment certificate alone: every step refused, nothing changed")
	before, size := f.revisions(t), f.log.Size()
	moved := api.Registration{Name: "payments", Node: "evil", Port: 8080}
	for _, step := range []struct {
		what, method, path string
		in                 any
	}{
		{"a join token for web-1, an existing node", "POST", api.PathTokens, api.TokenRequest{Node: "web-1"}},
		{"a join token for a new node", "POST", api.PathTokens, api.TokenRequest{Node: "evil"}},
		{"payments moved to that node", "POST", api.PathServices, moved},
		{"a new service on it", "POST", api.PathServices, api.Registration{Name: "payments-2", Node: "evil", Port: 8080}},
		{"payments deregistered", "DELETE", api.PathServices + "?name=payments", nil},
	} {
		var tok api.TokenResponse
		code, e := f.call(t, op.cert, step.method, step.path, step.in, &tok)
		if code != http.StatusUnauthorized || e.Reason != api.ReasonMFARequired || tok.Token != "" {
			t.Errorf("%s, by an enrolment certificate: %d %q (reason %q); want 401 %s", step.what, code, e.Error, e.Reason, api.ReasonMFARequired)
		}
	}
	after := f.revisions(t)
	for k, rev := range after {
		if before[k] != rev {
			t.Errorf("refused calls changed %q in the store", k)
		}
	}
	if len(after) != len(before) {
		t.Errorf("refused calls changed the store's keys: %d, were %d", len(after), len(before))
	}
	for _, e := range f.entriesSince(t, size) {
		if e.Entry.Action != ActionRefused {
			t.Errorf("a refused call was audited one by one: %+v", e.Entry)
		}
	}

	t.Log("with a live MFA session the same steps work, and end in the service's SVID")
	var tok api.TokenResponse
	if code, e := f.call(t, op.session, "POST", api.PathTokens, api.TokenRequest{Node: "evil"}, &tok); code != http.StatusOK {
		t.Fatalf("token create: %d %s", code, e.Error)
	}
	if code, e := f.call(t, op.session, "POST", api.PathServices, moved, nil); code != http.StatusOK {
		t.Fatalf("svc register: %d %s", code, e.Error)
	}
	evil := f.join(t, tok.Token, "evil")
	_, wcsr, err := ca.NewKeyCSR()
	if err != nil {
		t.Fatal(err)
	}
	var svid api.CertResponse
	if code, e := f.call(t, evil, "POST", api.PathSVID, api.SVIDRequest{Service: "payments", CSR: wcsr}, &svid); code != http.StatusOK {
		t.Fatalf("svid for payments on evil: %d %s", code, e.Error)
	}
	got, err := api.ParseChain(svid.Chain)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := identity.ServiceID(f.srv.td, "payments")
	if len(got[0].URIs) != 1 || got[0].URIs[0].String() != want.String() {
		t.Fatalf("the SVID names %v, want %s", got[0].URIs, want)
	}
}

// TestFlowFollowEndsWithTheCaller: a follow stream is authorized when it
// begins; an administrator removed meanwhile (every certificate of theirs
// revoked) stops receiving the mesh's flows, as a revoked agent's watch
// stops, instead of reading them for as long as the connection lasts.
func TestFlowFollowEndsWithTheCaller(t *testing.T) {
	f := newAuthFixture(t)
	vera := f.newAdmin(t, "vera", api.RoleViewer)
	st := f.follow(t, vera.cert)
	var fr api.FlowFrame
	if err := st.frames.Decode(&fr); err != nil || !fr.Heartbeat {
		t.Fatalf("a live stream's next frame: %+v %v, want a heartbeat", fr, err)
	}

	t.Log("vera is removed: her certificates are revoked, and the stream ends")
	if code, e := f.call(t, f.accs["admin"].session, "DELETE", api.PathAdmins, api.AdminRemove{Name: "vera"}, nil); code != http.StatusOK {
		t.Fatalf("admin remove: %d %s", code, e.Error)
	}
	st.ends(t, "the stream of a removed administrator")
	if code, _ := f.call(t, vera.cert, "GET", api.PathFlowFollow, nil, nil); code != http.StatusUnauthorized {
		t.Errorf("a new follow by the removed administrator: %d, want 401", code)
	}
}

// followStream is a flow follow stream a test opened.
type followStream struct {
	ctx    context.Context // ends testkit.WaitLimit after the stream opened
	frames *json.Decoder
}

// follow opens a flow follow stream presenting cert and returns it past
// its first frame, the heartbeat after the (empty) backlog.
func (f *authFixture) follow(t *testing.T, cert *tls.Certificate) *followStream {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: api.ClientTLS(func() (*tls.Certificate, error) { return cert, nil }, f.srv.trust), ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(f.ctx, testkit.WaitLimit)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+f.srv.Addr()+api.PathFlowFollow, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("follow: %d", resp.StatusCode)
	}
	frames := json.NewDecoder(resp.Body)
	var fr api.FlowFrame
	if err := frames.Decode(&fr); err != nil || !fr.Heartbeat {
		t.Fatalf("the stream's first frame: %+v %v, want the heartbeat after the (empty) backlog", fr, err)
	}
	return &followStream{ctx: ctx, frames: frames}
}

// ends waits for the server to end the stream, failing when it is still
// open at the stream's deadline.
func (st *followStream) ends(t *testing.T, what string) {
	t.Helper()
	for {
		var fr api.FlowFrame
		err := st.frames.Decode(&fr)
		if err == nil {
			continue // a heartbeat sent before the removal was seen
		}
		if st.ctx.Err() != nil {
			t.Fatalf("%s was still open after %s", what, testkit.WaitLimit)
		}
		return // the server ended it
	}
}

// join joins node with a join token as its agent does and returns the
// node certificate the server signed.
func (f *authFixture) join(t *testing.T, token, node string) *tls.Certificate {
	t.Helper()
	key, csr, err := ca.NewKeyCSR()
	if err != nil {
		t.Fatal(err)
	}
	var joined api.CertResponse
	if code, e := f.call(t, nil, "POST", api.PathJoin, api.JoinRequest{Token: token, Node: node, MeshAddr: "127.0.0.1:7401", CSR: csr}, &joined); code != http.StatusOK {
		t.Fatalf("join %s: %d %s", node, code, e.Error)
	}
	chain, err := api.ParseChain(joined.Chain)
	if err != nil {
		t.Fatal(err)
	}
	return ca.TLSCertificate(chain, key)
}
