//go:build unix

package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/rogpeppe/go-internal/testscript"

	"moat/internal/api"
)

// Second factors in scripts. The server command enrols a fresh control
// plane's first administrator with a TOTP authenticator and logs in (an MFA
// session of 15 minutes), as an operator does right after init, so that
// the sensitive calls of a script go through; the secret is kept in
// $TOTP_SECRET (and the admin directory's name with .totp). More commands:
//
//	mfa enrol        the same for $MOAT_ADMIN_DIR, for a script that runs
//	                 server init and server run itself
//	mfa confirm      enrol and confirm for $MOAT_ADMIN_DIR without logging
//	                 in (a first enrolment that awaits approval)
//	totp VAR [SKEW]  set VAR to the current code of $TOTP_SECRET, SKEW
//	                 steps of 30s away (default 0)
//	mfa login        log in again with a code not used before (after
//	                 "moat admin mfa logout", or in a copied directory)
//	mfa code FILE    write a code not used before to FILE, a line for a
//	                 command's prompt (stdin FILE)

// mfaEnrol enrols the admin of $MOAT_ADMIN_DIR and logs in.
func mfaEnrol(ts *testscript.TestScript) {
	mfaConfirm(ts)
	mfaLoginScript(ts)
}

// mfaConfirm enrols the admin of $MOAT_ADMIN_DIR and confirms the
// authenticator with a first code.
func mfaConfirm(ts *testscript.TestScript) {
	out, err := execMoat(ts, "admin", "mfa", "enroll", "--no-qr", "--output", "json")
	if err != nil {
		ts.Fatalf("%v", err)
	}
	var en api.MFAEnrollment
	if err := json.Unmarshal([]byte(out), &en); err != nil {
		ts.Fatalf("mfa enroll: %v", err)
	}
	ts.Check(os.WriteFile(filepath.Clean(ts.Getenv("MOAT_ADMIN_DIR"))+".totp", []byte(en.Secret), 0o600))
	ts.Setenv("TOTP_SECRET", en.Secret)
	now := time.Now()
	if _, err := execMoat(ts, "admin", "mfa", "confirm", totpCode(ts, now, 0)); err != nil {
		ts.Fatalf("%v", err)
	}
	ts.Setenv("TOTP_LAST", strconv.FormatInt(now.Unix()/30, 10))
}

// totpCode is the code of $TOTP_SECRET skew steps from now.
func totpCode(ts *testscript.TestScript, now time.Time, skew int) string {
	c, err := totp.GenerateCode(ts.Getenv("TOTP_SECRET"), now.Add(time.Duration(skew)*30*time.Second))
	ts.Check(err)
	return c
}

// mfaLoginScript logs in with the code of a step after the last one used.
func mfaLoginScript(ts *testscript.TestScript) {
	if _, err := execMoat(ts, "admin", "mfa", "login", nextCode(ts)); err != nil {
		ts.Fatalf("%v", err)
	}
}

// nextCode is the code of a step after the last one used, which it
// becomes.
func nextCode(ts *testscript.TestScript) string {
	last, _ := strconv.ParseInt(ts.Getenv("TOTP_LAST"), 10, 64)
	now := time.Now()
	step := max(now.Unix()/30, last+1)
	if step > now.Unix()/30+1 {
		// Every code the server would take now is spent: wait for the
		// next step, as an administrator waits for the next code.
		time.Sleep(time.Until(time.Unix((step-1)*30, 0)))
	}
	ts.Setenv("TOTP_LAST", strconv.FormatInt(step, 10))
	return totpCode(ts, time.Unix(step*30, 0), 0)
}

func cmdTOTP(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: totp VAR [SKEW]")
	}
	skew := 0
	if len(args) == 2 {
		var err error
		if skew, err = strconv.Atoi(args[1]); err != nil {
			ts.Fatalf("totp: skew %q: %v", args[1], err)
		}
	}
	ts.Setenv(args[0], totpCode(ts, time.Now(), skew))
}

func cmdMFA(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) == 2 && args[0] == "code" && !neg {
		ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(nextCode(ts)+"\n"), 0o600))
		return
	}
	if neg || len(args) != 1 || (args[0] != "login" && args[0] != "enrol" && args[0] != "confirm") {
		ts.Fatalf("usage: mfa enrol|confirm|login|code FILE")
	}
	switch args[0] {
	case "enrol":
		mfaEnrol(ts)
		return
	case "confirm":
		mfaConfirm(ts)
		return
	}
	if ts.Getenv("TOTP_SECRET") == "" {
		ts.Fatalf("mfa login: no TOTP secret (start a server first)")
	}
	mfaLoginScript(ts)
}
