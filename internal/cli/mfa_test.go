package cli

import (
	"fmt"
	"strings"
	"testing"
)

// mfaLogin enrols a TOTP authenticator for the admin of adminDir through
// the CLI, confirms it and logs in, as an administrator does before the
// sensitive calls; it returns the secret. Codes are computed from the
// secret: the confirming one for now, the login one for the next step
// (the server allows one step of skew, and takes each code once).
func mfaLogin(t *testing.T, env map[string]string, server, adminDir string) string {
	t.Helper()
	with := map[string]string{"MOAT_SERVER": server, "MOAT_ADMIN_DIR": adminDir}
	for k, v := range env {
		with[k] = v
	}
	secret, err := enrolTOTP(func(args ...string) (string, error) {
		code, out, errOut := runCLI(t, with, args...)
		if code != 0 {
			return "", fmt.Errorf("moat %s: exit %d: %s", strings.Join(args, " "), code, errOut)
		}
		return out, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return secret
}
