package cli

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/config"
	"moat/internal/seal"
	"moat/internal/ui"
)

func uiCommand() *Command {
	var (
		af     adminFlags
		listen string
		open   bool
		logCfg config.Log
	)
	return &Command{
		Name:    "ui",
		Summary: "serve the dashboard on this machine's loopback, with these admin credentials",
		Usage:   "[--listen 127.0.0.1:PORT] [--open]",
		Help: "ui serves the dashboard (service graph, flows, policy, security, audit log) on\n" +
			"127.0.0.1 of this machine and calls the control plane (--server) with the admin\n" +
			"credentials (--admin-dir), as every admin command does: the server gets no new\n" +
			"listener, and the dashboard can do what the credentials' role can, each call\n" +
			"audited. It prints an address to open, which works once: the first visit trades\n" +
			"its token for a session cookie. --open opens it in the default browser, through\n" +
			"a page only you can read (the address on the opener's command line would be\n" +
			"anyone's to read), removed once it is used.",
		Flags: func(fs *flag.FlagSet) {
			af.register(fs)
			fs.StringVar(&listen, "listen", "127.0.0.1:0", "loopback address to serve on (port 0: one the kernel picks)")
			fs.BoolVar(&open, "open", false, "open the dashboard in the default browser")
			logFlags(fs, &logCfg)
		},
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
			if err := noArgs(fs, "ui"); err != nil {
				return err
			}
			if err := logCfg.Validate(); err != nil {
				return usagef("ui: %v", err)
			}
			logger := logCfg.Logger(e.Stderr)
			c, err := af.connect(ctx, e)
			if err != nil {
				return err
			}
			defer c.Close()
			srv, err := startUI(ctx, e, &af, c, listen, logger)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "moat ui: the dashboard of %s is at\n  %s\n(the address works once; Ctrl-C stops the dashboard)\n", serverAddr(e, &af), srv.URL())
			if open {
				remove, err := openLogin(ctx, srv, openBrowser)
				if err != nil {
					fmt.Fprintf(e.Stderr, "moat ui: could not open a browser (%v): open the address above\n", err)
				}
				defer remove()
			}
			go renewLoop(ctx, e, c, logger)
			return srv.Run(ctx)
		},
	}
}

// serverAddr is the control plane the admin commands call.
func serverAddr(e *Env, af *adminFlags) string {
	if af.server != "" {
		return af.server
	}
	return envDefault(e, "MOAT_SERVER", "127.0.0.1:7400")
}

// startUI builds the dashboard over an admin client: who the credentials
// are, and the audit log verified with the key pinned beside them.
func startUI(ctx context.Context, e *Env, af *adminFlags, c *api.AdminClient, listen string, logger *slog.Logger) (*ui.Server, error) {
	var who api.Whoami
	if err := c.Call(ctx, http.MethodGet, api.PathWhoami, nil, &who); err != nil {
		return nil, err
	}
	ra, err := openRemoteAudit(e, af, "")
	if err != nil {
		return nil, err
	}
	return ui.New(ui.Config{
		Control: c, Admin: who, Server: serverAddr(e, af), Listen: listen, Logger: logger,
		VerifyAudit: func(ctx context.Context) (ui.AuditStatus, error) { return ra.status(ctx) },
	})
}

// status verifies the log as "moat audit verify --server" does and says
// how it went; a log that fails verification is an outcome, not an error.
func (r *remoteAudit) status(ctx context.Context) (ui.AuditStatus, error) {
	st := ui.AuditStatus{At: time.Now().UTC()}
	signed, err := r.witnessed(ctx, "audit verify")
	var xe *ExitError
	if errors.As(err, &xe) {
		st.Error = xe.Msg
		return st, nil
	}
	if err != nil {
		return st, err
	}
	cp, err := audit.CheckEntries(ctx, r.v, signed, r.page(ctx), audit.VerifyOptions{})
	var ve *audit.VerifyError
	if errors.As(err, &ve) {
		st.Error = err.Error()
		return st, nil
	}
	if err != nil {
		return st, err
	}
	st.OK, st.Size, st.Origin, st.Root = true, cp.Size, cp.Origin, base64.StdEncoding.EncodeToString(cp.Root[:])
	return st, nil
}

// renewLoop keeps the credentials of a long-running dashboard current, as
// each admin command does when it starts.
func renewLoop(ctx context.Context, e *Env, c *api.AdminClient, logger *slog.Logger) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := keepCredentials(ctx, e, c); err != nil {
				logger.Warn("dashboard: keeping the admin credentials current failed", "err", err.Error())
			}
		}
	}
}

// loginPageLife is how long the page "ui --open" writes is kept when the
// browser does not use it.
const loginPageLife = 2 * time.Minute

// openLogin opens the dashboard's login address in the browser without
// putting it on a command line, where every local user reads it
// (/proc/PID/cmdline, the opener's and the browser's it starts) before the
// browser spends it: the address goes into a page that leads the browser
// on to it, mode 0600 in a directory of mode 0700, and open is given the
// page's path. The page is removed once the login is used, after
// loginPageLife, or by the returned remove (which the caller defers).
func openLogin(ctx context.Context, srv *ui.Server, open func(path string) error) (remove func(), err error) {
	dir, err := os.MkdirTemp("", "moat-ui-")
	if err != nil {
		return func() {}, err
	}
	var once sync.Once
	remove = func() { once.Do(func() { _ = os.RemoveAll(dir) }) }
	page := filepath.Join(dir, "login.html")
	if err := seal.WriteFileAtomic(page, loginPage(srv.URL()), 0o600); err != nil {
		remove()
		return remove, err
	}
	if err := open(page); err != nil {
		remove()
		return remove, err
	}
	go func() {
		t := time.NewTimer(loginPageLife)
		defer t.Stop()
		select {
		case <-srv.LoggedIn():
		case <-t.C:
		case <-ctx.Done():
		}
		remove()
	}()
	return remove, nil
}

// loginPage is a page that takes the browser to the login address u by
// itself (no script needed), with a link should it not.
func loginPage(u string) []byte {
	a := html.EscapeString(u)
	return []byte(`<!doctype html>
<meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<meta http-equiv="refresh" content="0;url=` + a + `">
<title>moat dashboard</title>
<p><a href="` + a + `">Open the moat dashboard</a></p>
`)
}

// openBrowser opens a file or address in the desktop's browser.
func openBrowser(target string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", target)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", target)
	default:
		cmd = exec.Command("xdg-open", target)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return nil
}
