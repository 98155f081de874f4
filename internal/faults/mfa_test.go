package faults

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"moat/internal/api"
	"moat/internal/store/storetest"
)

// totpAdmin is an administrator with a TOTP authenticator: the secret the
// test computes codes from, as the administrator's phone does.
type totpAdmin struct {
	dir    string
	secret string
	last   int64 // the last 30s step whose code was used
}

// enrolMFA enrols a TOTP authenticator for the administrator of dir
// through the built binary (enroll, confirm with the current code), then
// logs in (an MFA session of 15 minutes) so that sensitive calls go
// through, as an administrator does right after init.
func enrolMFA(t *testing.T, servers, dir string) *totpAdmin {
	t.Helper()
	env := []string{"MOAT_SERVER=" + servers, "MOAT_ADMIN_DIR=" + dir}
	out := mustMoat(t, env, "admin", "mfa", "enroll", "--no-qr", "--output", "json")
	var en api.MFAEnrollment
	if err := json.Unmarshal([]byte(out), &en); err != nil {
		t.Fatalf("mfa enroll: %v: %s", err, out)
	}
	a := &totpAdmin{dir: dir, secret: en.Secret}
	now := time.Now()
	mustMoat(t, env, "admin", "mfa", "confirm", a.code(t, now.Unix()/30))
	a.last = now.Unix() / 30
	a.login(t, servers)
	return a
}

// code is the authenticator's code of a 30s step.
func (a *totpAdmin) code(t *testing.T, step int64) string {
	t.Helper()
	c, err := totp.GenerateCode(a.secret, time.Unix(step*30, 0))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// login trades a code not used before for a new MFA session. The server
// takes each code once and one step of skew: the next step's code is
// used, after waiting for a step when every code it would take is spent.
func (a *totpAdmin) login(t *testing.T, servers string) {
	t.Helper()
	now := time.Now().Unix() / 30
	step := max(now, a.last+1)
	if step > now+1 {
		time.Sleep(time.Until(time.Unix((step-1)*30, 0)))
	}
	mustMoat(t, []string{"MOAT_SERVER=" + servers, "MOAT_ADMIN_DIR=" + a.dir}, "admin", "mfa", "login", a.code(t, step))
	a.last = step
}

// copyCredentials copies files of an administrator's directory to a new
// one, as a thief with a moment on the administrator's machine would.
func copyCredentials(t *testing.T, from, to string, files ...string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(from, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMFAAcrossServers: an administrator's second factor is one thing for
// the whole cluster. A logout through one server ends the session a copied
// certificate carries through another; wrong codes sent at once through
// both servers have no more of them judged than the lockout allows, and
// the lockout holds on both.
func TestMFAAcrossServers(t *testing.T) {
	etcd := storetest.StartEtcdCluster(t, 1)
	c := newMoatCluster(t, etcd, 2)
	s1, s2 := c.servers[0], c.servers[1]
	pol := filepath.Join(c.dir, "deny.yaml")
	if err := os.WriteFile(pol, []byte("default: deny\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Log("a copy of the admin's session works through s2 until the admin logs out through s1")
	copied := filepath.Join(c.dir, "copied")
	copyCredentials(t, c.admin, copied, api.CertFile, api.KeyFile, api.BundleFile, api.SessionFile)
	thief := []string{"MOAT_SERVER=" + s2.listen, "MOAT_ADMIN_DIR=" + copied}
	mustMoat(t, thief, "policy", "apply", "-f", pol)
	mustMoat(t, c.via(s1), "admin", "mfa", "logout")
	if code, _, errOut := moatIn(t, thief, "", "policy", "apply", "-f", pol); code == 0 || !strings.Contains(errOut, "needs a fresh MFA proof") {
		t.Fatalf("the copied session through s2 after a logout through s1: exit %d: %q", code, errOut)
	}

	t.Log("a thief of the enrolment certificate guesses codes through both servers at once")
	stolen := filepath.Join(c.dir, "stolen")
	copyCredentials(t, c.admin, stolen, api.CertFile, api.KeyFile, api.BundleFile)
	valid := map[string]bool{}
	now := time.Now().Unix() / 30
	for st := now - 2; st <= now+3; st++ {
		valid[c.mfa.code(t, st)] = true
	}
	const burst = 16
	var wg sync.WaitGroup
	outs := make([]string, burst)
	for i := range burst {
		guess := fmt.Sprintf("%06d", 200000+i*7919)
		if valid[guess] {
			guess = fmt.Sprintf("%06d", 300000+i*7919)
		}
		via := []*moatServer{s1, s2}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errOut := moatIn(t, []string{"MOAT_SERVER=" + via.listen, "MOAT_ADMIN_DIR=" + stolen}, "", "admin", "mfa", "login", guess)
			outs[i] = errOut
		}()
	}
	wg.Wait()
	judged := 0
	for i, out := range outs {
		switch {
		case strings.Contains(out, "MFA code refused"):
			judged++
		case strings.Contains(out, "MFA locked after 5 failed proofs"):
		default:
			t.Fatalf("guess %d: %q", i, out)
		}
	}
	t.Logf("%d of %d guesses through two servers were judged", judged, burst)
	if judged > 5 {
		t.Fatalf("%d guesses judged across the cluster, more than the lockout's 5", judged)
	}
	for _, s := range c.servers {
		code, _, errOut := moatIn(t, c.via(s), "", "admin", "mfa", "login", c.mfa.code(t, max(time.Now().Unix()/30, c.mfa.last+1)))
		if code == 0 || !strings.Contains(errOut, "MFA locked") {
			t.Fatalf("the right code through %s after the burst: exit %d: %q", s.name, code, errOut)
		}
	}
}
