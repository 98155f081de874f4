package faults

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"moat/internal/api"
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
