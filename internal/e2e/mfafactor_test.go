package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"moat/internal/api"
	"moat/internal/server"
	"moat/internal/testkit"
)

// TestCopiedSessionBindsNoFactor: a copy of an administrator's files
// taken while their MFA session lasts (session.pem beside the enrolment
// credential) makes sensitive calls until the session ends, but binds no
// factor of its thief's that would outlive it: replacing the enrolled
// authenticator, and registering or removing a security key, need an MFA
// session begun within the last minute, which the copy is not. The owner,
// giving a code when asked, still does all three.
func TestCopiedSessionBindsNoFactor(t *testing.T) {
	c := newCluster(t)
	const origin = "https://moat.example.com"
	c.mu.Lock()
	c.mfa = server.MFAConfig{WebAuthn: &server.WebAuthnConfig{RPID: "moat.example.com", Origins: []string{origin}}}
	c.mu.Unlock()
	c.restartWith(nil)
	ctx := context.Background()
	c.clk.Advance(time.Minute) // past every code the harness used

	owner := ownerSession(t, c)
	call := func(cl *api.AdminClient, path string, in, out any) error {
		cctx, cancel := context.WithTimeout(ctx, testkit.WaitLimit)
		defer cancel()
		return cl.Call(cctx, http.MethodPost, path, in, out)
	}
	t.Log("the owner registers a security key right after the code")
	key := newSoftKey(t, origin)
	var opts json.RawMessage
	if err := call(owner, api.PathWebAuthnRegisterBegin, api.WebAuthnRegisterBegin{Name: "yubikey"}, &opts); err != nil {
		t.Fatal(err)
	}
	if err := call(owner, api.PathWebAuthnRegister, api.WebAuthnRegistration{Credential: key.create(opts)}, nil); err != nil {
		t.Fatal(err)
	}

	thief := stealSession(t, c)
	var st api.MFAStatus
	stale := func(what string, err error) {
		t.Helper()
		var se *api.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusUnauthorized || se.Reason != api.ReasonMFAStale {
			t.Fatalf("%s with a copied session begun minutes ago: %v", what, err)
		}
		t.Logf("%s: %v", what, err)
	}
	var en api.MFAEnrollment
	stale("replacing the authenticator", call(thief, api.PathMFAEnroll, struct{}{}, &en))
	if en.Secret != "" {
		t.Fatal("a TOTP secret was answered to the thief")
	}
	stale("registering a security key", call(thief, api.PathWebAuthnRegisterBegin, api.WebAuthnRegisterBegin{Name: "thief"}, &opts))
	stale("removing a security key", call(thief, api.PathWebAuthnRemove, api.WebAuthnRegisterBegin{Name: "yubikey"}, nil))
	if err := owner.Call(ctx, http.MethodGet, api.PathMFA, nil, &st); err != nil || len(st.SecurityKeys) != 1 || st.SecurityKeys[0].Name != "yubikey" {
		t.Fatalf("the owner's factors after the thief's tries: %+v, %v", st, err)
	}

	t.Log("the owner, asked for a code, replaces the authenticator and removes the key")
	if err := call(owner, api.PathWebAuthnRemove, api.WebAuthnRegisterBegin{Name: "yubikey"}, nil); err != nil {
		t.Fatalf("the owner removing the key: %v", err)
	}
	c.clk.Advance(2 * time.Minute)
	if err := call(owner, api.PathMFAEnroll, struct{}{}, &en); err != nil || en.Secret == "" {
		t.Fatalf("the owner replacing the authenticator: %+v, %v", en, err)
	}
}

// TestCopiedSessionResetsNotItsOwn: a reset of second factors is for
// another administrator's lost authenticator. Were an administrator's own
// allowed, a copy of their files taken while the MFA session lasts would
// reset the owner's factors and enrol its thief's as a first enrolment.
func TestCopiedSessionResetsNotItsOwn(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	c.clk.Advance(time.Minute) // past every code the harness used
	owner := ownerSession(t, c)
	thief := stealSession(t, c)
	err := thief.Call(ctx, http.MethodPost, api.PathMFAReset, api.MFAReset{Name: "admin"}, nil)
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusForbidden {
		t.Fatalf("resetting its own factors with the copied session: %v", err)
	}
	t.Logf("resetting its own factors: %v", err)
	var en api.MFAEnrollment
	if err := thief.Call(ctx, http.MethodPost, api.PathMFAEnroll, struct{}{}, &en); err == nil || en.Secret != "" {
		t.Fatalf("the thief enrolled an authenticator: %+v, %v", en, err)
	}
	var st api.MFAStatus
	if err := owner.Call(ctx, http.MethodGet, api.PathMFA, nil, &st); err != nil || st.TOTP.IsZero() || st.Session.IsZero() {
		t.Fatalf("the owner's factors and session after the thief's tries: %+v, %v", st, err)
	}
}

// TestCopiedSessionCreatesNoAdmin: a copy of an administrator's files
// taken while their MFA session lasts makes no administrator's credential
// (a new account's, or a new one for an account that exists), which would
// keep its thief's access after the session ends: that needs an MFA
// session begun within the last minute. The owner, giving a code when
// asked, still makes one.
func TestCopiedSessionCreatesNoAdmin(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	c.clk.Advance(time.Minute) // past every code the harness used
	owner := ownerSession(t, c)
	thief := stealSession(t, c)
	csr := func() []byte {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		b, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, req := range []api.AdminRequest{
		{Name: "mallory", Role: api.RoleAdmin, CSR: csr()},
		{Name: "admin", Role: api.RoleAdmin, CSR: csr(), Replace: true},
	} {
		var resp api.CertResponse
		err := thief.Call(ctx, http.MethodPost, api.PathAdmins, req, &resp)
		var se *api.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusUnauthorized || se.Reason != api.ReasonMFAStale || len(resp.Chain) > 0 {
			t.Fatalf("admin create %q (replace %v) with a copied session begun minutes ago: %v", req.Name, req.Replace, err)
		}
		t.Logf("admin create %q (replace %v): %v", req.Name, req.Replace, err)
	}
	var names []api.AdminAccount
	if err := owner.Call(ctx, http.MethodGet, api.PathAdmins, nil, &names); err != nil {
		t.Fatal(err)
	}
	for _, a := range names {
		if a.Name == "mallory" {
			t.Fatalf("the thief's account was made: %+v", names)
		}
	}
	t.Log("the owner, asked for a code, makes an account")
	var resp api.CertResponse
	if err := owner.Call(ctx, http.MethodPost, api.PathAdmins, api.AdminRequest{Name: "olive", Role: api.RoleViewer, CSR: csr()}, &resp); err != nil || len(resp.Chain) == 0 {
		t.Fatalf("the owner making an account: %v", err)
	}
}

// ownerSession logs the harness's administrator in with a code and
// returns their client, which asks for a code again whenever the server
// wants a fresher session.
func ownerSession(t *testing.T, c *cluster) *api.AdminClient {
	t.Helper()
	secret := c.secrets[c.adminDir]
	code := func(context.Context) (string, error) { return totp.GenerateCode(secret, c.clk.Now()) }
	owner, err := api.NewAdminSession(c.addr, c.adminDir, api.SessionConfig{Code: code, Now: c.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(owner.Close)
	first, _ := code(context.Background())
	if _, err := owner.Login(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	return owner
}

// stealSession copies the administrator's directory, session certificate
// included, and returns a client of the copy (which has no code to give)
// two minutes later, the session still live.
func stealSession(t *testing.T, c *cluster) *api.AdminClient {
	t.Helper()
	t.Log("a thief copies the admin directory; two minutes later the session still lasts")
	stolen := filepath.Join(c.dir, "stolen")
	copyAdminDir(t, c.adminDir, stolen)
	thief, err := api.NewAdminSession(c.addr, stolen, api.SessionConfig{Now: c.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(thief.Close)
	c.clk.Advance(2 * time.Minute)
	var st api.MFAStatus
	if err := thief.Call(context.Background(), http.MethodGet, api.PathMFA, nil, &st); err != nil || st.Session.IsZero() {
		t.Fatalf("the copied session is not live: %+v, %v", st, err)
	}
	return thief
}
