package cli

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"moat/internal/api"
)

// mfaLogin enrols a TOTP authenticator for the admin of adminDir through
// the CLI, confirms it and logs in, as an administrator does before the
// sensitive calls; it returns the secret. Codes are computed from the
// secret: the confirming one for now, the login one for the next step
// (the server allows one step of skew, and takes each code once).
func mfaLogin(t *testing.T, env map[string]string, server, adminDir string) string {
	t.Helper()
	flags := []string{"--server", server, "--admin-dir", adminDir}
	code, out, errOut := runCLI(t, env, append([]string{"admin", "mfa", "enroll", "--output", "json"}, flags...)...)
	if code != 0 {
		t.Fatalf("mfa enroll: exit %d: %s", code, errOut)
	}
	var en api.MFAEnrollment
	if err := json.Unmarshal([]byte(out), &en); err != nil {
		t.Fatalf("mfa enroll: %v: %s", err, out)
	}
	first, err := totp.GenerateCode(en.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, env, append(append([]string{"admin", "mfa", "confirm"}, flags...), first)...); code != 0 {
		t.Fatalf("mfa confirm: exit %d: %s", code, errOut)
	}
	next, _ := totp.GenerateCode(en.Secret, time.Now().Add(30*time.Second))
	if code, _, errOut := runCLI(t, env, append(append([]string{"admin", "mfa", "login"}, flags...), next)...); code != 0 {
		t.Fatalf("mfa login: exit %d: %s", code, errOut)
	}
	return en.Secret
}
