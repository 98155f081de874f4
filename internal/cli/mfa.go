package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/boombuler/barcode/qr"
	"github.com/pquerna/otp/totp"

	"moat/internal/api"
)

// session opens the administrator's credentials as an MFA-aware client:
// a call that needs a fresh second factor asks for a code (prompt on
// stderr, read from stdin) when ask is set.
func (a *adminFlags) session(e *Env, ask bool) (*api.AdminClient, error) {
	server := a.server
	if server == "" {
		server = envDefault(e, "MOAT_SERVER", "127.0.0.1:7400")
	}
	dir := a.dir(e)
	if dir == "" {
		return nil, usagef("no admin credentials: pass --admin-dir or set MOAT_ADMIN_DIR (\"moat server init\" wrote them)")
	}
	if a.output == "" {
		a.output = "table"
	}
	if a.output != "table" && a.output != "json" {
		return nil, usagef("--output %q: want table or json", a.output)
	}
	if _, err := api.ParseServers(server); err != nil {
		return nil, usagef("--server: %v", err)
	}
	if a.timeout < 0 {
		return nil, usagef("--timeout %s: want a positive duration", a.timeout)
	}
	if a.timeout == 0 {
		a.timeout = api.DefaultTimeout // a command that takes no --timeout
	}
	var code func(context.Context) (string, error)
	if ask {
		code = func(ctx context.Context) (string, error) {
			if se := api.Refusal(ctx); se != nil && se.Reason == api.ReasonMFAStale {
				// The server says why: its window for a session's proof.
				fmt.Fprintf(e.Stderr, "moat: %s\n", se.Msg)
			} else if why, ok := ctx.Value(promptWhyKey{}).(string); ok {
				fmt.Fprintf(e.Stderr, "moat: %s\n", why)
			}
			fmt.Fprint(e.Stderr, "This call needs a fresh MFA proof. Code from your authenticator: ")
			code, err := readCode(e.Stdin)
			fmt.Fprintln(e.Stderr)
			return code, err
		}
	}
	c, err := api.NewAdminSession(server, dir, api.SessionConfig{Code: code})
	if err != nil {
		return nil, err
	}
	c.SetTimeout(a.timeout)
	c.OnStale = func(reason string) {
		fmt.Fprintf(e.Stderr, "warning: %s\n", reason)
	}
	return c, nil
}

// promptWhyKey is the context key of what a long-running command tells
// the administrator before asking for a code, when the call alone would
// not say why (a forward's new connection, long after it started).
type promptWhyKey struct{}

// readCode reads one line holding a one-time code.
func readCode(r io.Reader) (string, error) {
	if r == nil {
		return "", api.ErrNoCode
	}
	line, err := bufio.NewReader(r).ReadString('\n')
	line = strings.TrimSpace(line)
	if line == "" {
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		return "", api.ErrNoCode
	}
	return line, nil
}

func mfaCommand() *Command {
	var noQR *bool
	enroll := adminCommand("enroll", "enrol a TOTP authenticator (shows its secret once)", "[--no-qr]",
		func(fs *flag.FlagSet) { noQR = fs.Bool("no-qr", false, "print the otpauth URI without the QR code") },
		func(ctx context.Context, e *Env, fs *flag.FlagSet, s *api.AdminClient, af *adminFlags) error {
			var en api.MFAEnrollment
			if err := s.Call(ctx, http.MethodPost, api.PathMFAEnroll, struct{}{}, &en); err != nil {
				return err
			}
			if af.output == "json" {
				return printJSON(e.Stdout, en)
			}
			if !*noQR {
				if err := printQR(e.Stdout, en.URI); err != nil {
					return err
				}
			}
			fmt.Fprintf(e.Stdout, "%s\nsecret: %s\n", en.URI, en.Secret)
			fmt.Fprintf(e.Stderr, "Add it to your authenticator (the secret is not shown again), then confirm with\n"+
				"\"moat admin mfa confirm CODE\" before %s.\n", en.Expires.Local().Format(time.RFC3339))
			return nil
		})
	confirm := adminCommand("confirm", "activate an enrolment with a first code", "[CODE]", nil,
		func(ctx context.Context, e *Env, fs *flag.FlagSet, s *api.AdminClient, af *adminFlags) error {
			code, err := codeArg(e, fs, "confirm")
			if err != nil {
				return err
			}
			var st api.MFAStatus
			if err := s.Call(ctx, http.MethodPost, api.PathMFAConfirm, api.MFACode{Code: code}, &st); err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "TOTP authenticator enrolled for %s\n", st.Admin)
			if st.AwaitingApproval {
				fmt.Fprintf(e.Stdout, "it proves nothing until approved: another administrator runs \"moat admin mfa approve --name %s\",\n"+
					"or the server's host \"moat server mfa-approve --admin %s\"\n", adminName(st.Admin), adminName(st.Admin))
			}
			return nil
		})
	login := adminCommand("login", "trade a code for an MFA session certificate (sensitive calls need one)", "[CODE]", nil,
		func(ctx context.Context, e *Env, fs *flag.FlagSet, s *api.AdminClient, af *adminFlags) error {
			code, err := codeArg(e, fs, "login")
			if err != nil {
				return err
			}
			leaf, err := s.Login(ctx, code)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "MFA session for %s until %s\n", s.ID(), leaf.NotAfter.Local().Format(time.RFC3339))
			return nil
		})
	logout := adminCommand("logout", "end your MFA sessions (on every machine) and forget the session certificate", "", nil,
		func(ctx context.Context, e *Env, fs *flag.FlagSet, s *api.AdminClient, af *adminFlags) error {
			n, err := s.Logout(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "%d MFA session(s) of %s ended\n", n, s.ID())
			return nil
		})
	status := adminCommand("status", "show the caller's second factors and session", "", nil,
		func(ctx context.Context, e *Env, fs *flag.FlagSet, s *api.AdminClient, af *adminFlags) error {
			var st api.MFAStatus
			if err := s.Call(ctx, http.MethodGet, api.PathMFA, nil, &st); err != nil {
				return err
			}
			if af.output == "json" {
				return printJSON(e.Stdout, st)
			}
			fmt.Fprintf(e.Stdout, "admin:    %s\n", st.Admin)
			switch {
			case st.TOTP.IsZero():
				fmt.Fprintln(e.Stdout, "totp:     not enrolled")
			case st.AwaitingApproval:
				fmt.Fprintf(e.Stdout, "totp:     enrolled %s, awaiting approval\n", st.TOTP.Format(time.RFC3339))
			default:
				fmt.Fprintf(e.Stdout, "totp:     enrolled %s\n", st.TOTP.Format(time.RFC3339))
			}
			for _, k := range st.SecurityKeys {
				fmt.Fprintf(e.Stdout, "key:      %s, registered %s\n", k.Name, k.Created.Format(time.RFC3339))
			}
			if !st.Session.IsZero() {
				fmt.Fprintf(e.Stdout, "session:  until %s\n", st.Session.Format(time.RFC3339))
			} else {
				fmt.Fprintln(e.Stdout, "session:  none")
			}
			if !st.LockedUntil.IsZero() {
				fmt.Fprintf(e.Stdout, "locked:   until %s\n", st.LockedUntil.Format(time.RFC3339))
			}
			if len(st.Required) == 0 {
				fmt.Fprintln(e.Stdout, "required: none (MFA is off for this account's role)")
			} else {
				fmt.Fprintf(e.Stdout, "required: %s\n", strings.Join(st.Required, " "))
			}
			return nil
		})
	var name *string
	reset := adminCommand("reset", "remove another administrator's second factors (a lost authenticator)", "--name NAME",
		func(fs *flag.FlagSet) { name = fs.String("name", "", "the administrator (required)") },
		func(ctx context.Context, e *Env, fs *flag.FlagSet, s *api.AdminClient, af *adminFlags) error {
			if *name == "" {
				return usagef("admin mfa reset: --name is required")
			}
			if err := s.Call(ctx, http.MethodPost, api.PathMFAReset, api.MFAReset{Name: *name}, nil); err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "second factors of %s removed; they enrol again with \"moat admin mfa enroll\"\n", *name)
			return nil
		})
	var approveName *string
	approve := adminCommand("approve", "approve another administrator's first enrolment (mfa.first_enrolment: approved)", "--name NAME",
		func(fs *flag.FlagSet) { approveName = fs.String("name", "", "the administrator (required)") },
		func(ctx context.Context, e *Env, fs *flag.FlagSet, s *api.AdminClient, af *adminFlags) error {
			if *approveName == "" {
				return usagef("admin mfa approve: --name is required")
			}
			if err := s.Call(ctx, http.MethodPost, api.PathMFAApprove, api.MFAReset{Name: *approveName}, nil); err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "the authenticator of %s is approved\n", *approveName)
			return nil
		})
	return &Command{Name: "mfa", Summary: "second factors: enrol, log in for sensitive calls", Sub: []*Command{approve, confirm, enroll, login, logout, reset, status}}
}

// codeArg takes the code from the one argument, else asks for it.
func codeArg(e *Env, fs *flag.FlagSet, cmd string) (string, error) {
	switch fs.NArg() {
	case 0:
		fmt.Fprint(e.Stderr, "Code from your authenticator: ")
		return readCode(e.Stdin)
	case 1:
		return fs.Arg(0), nil
	}
	return "", usagef("admin mfa %s takes at most one argument, the code", cmd)
}

// printQR draws s as a QR code with half-block characters, two modules a
// character row, light modules drawn, with a quiet zone: what authenticator
// apps scan off a terminal.
func printQR(w io.Writer, s string) error {
	code, err := qr.Encode(s, qr.M, qr.Auto)
	if err != nil {
		return fmt.Errorf("qr: %w", err)
	}
	n := code.Bounds().Dx()
	const quiet = 2
	dark := func(x, y int) bool {
		if x < 0 || y < 0 || x >= n || y >= n {
			return false
		}
		r, _, _, _ := code.At(x, y).RGBA()
		return r < 0x8000
	}
	var b strings.Builder
	for y := -quiet; y < n+quiet; y += 2 {
		for x := -quiet; x < n+quiet; x++ {
			top, bottom := !dark(x, y), !dark(x, y+1) // light modules are drawn
			switch {
			case top && bottom:
				b.WriteString("█")
			case top:
				b.WriteString("▀")
			case bottom:
				b.WriteString("▄")
			default:
				b.WriteString(" ")
			}
		}
		b.WriteString("\n")
	}
	_, err = io.WriteString(w, b.String())
	return err
}

// adminName is the name in an administrator's SPIFFE ID.
func adminName(id string) string {
	return id[strings.LastIndex(id, "/")+1:]
}

// enrolTOTP enrols an administrator's TOTP authenticator through the CLI
// and logs in, as an administrator does right after receiving their
// credentials, for a program that holds the secret its authenticator
// would (moat demo, and tests): run runs one moat command and returns its
// standard output. The confirming code is the current step's, the login
// code the next one's (the server takes each code once, within one step of
// skew). It returns the secret.
func enrolTOTP(run func(args ...string) (string, error)) (string, error) {
	out, err := run("admin", "mfa", "enroll", "--no-qr", "--output", "json")
	if err != nil {
		return "", err
	}
	var en api.MFAEnrollment
	if err := json.Unmarshal([]byte(out), &en); err != nil {
		return "", fmt.Errorf("mfa enroll: %w", err)
	}
	now := time.Now()
	for i, cmd := range []string{"confirm", "login"} {
		code, err := totp.GenerateCode(en.Secret, now.Add(time.Duration(i)*30*time.Second))
		if err != nil {
			return "", err
		}
		if _, err := run("admin", "mfa", cmd, code); err != nil {
			return "", err
		}
	}
	return en.Secret, nil
}
