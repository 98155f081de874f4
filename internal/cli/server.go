package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"moat/internal/api"
	"moat/internal/backup"
	"moat/internal/ca"
	"moat/internal/seal"
	"moat/internal/server"
	"moat/internal/store"
)

// serverFlags declares the flags of server init and run onto f; they share
// the file's key names. It returns the --config flag.
func serverFlags(fs *flag.FlagSet, f *server.File) *string {
	file := fs.String("config", "", "YAML configuration file (keys as the flags, with _ for -)")
	fs.StringVar(&f.DataDir, "data-dir", "", "directory of the control plane's state (required)")
	fs.StringVar(&f.Listen, "listen", server.DefaultListen, "API address (TLS; every call but the bundle, join and re-attestation needs a client certificate)")
	fs.StringVar(&f.Name, "name", "control", "this server's name in its SVID (distinct within a cluster)")
	fs.StringVar(&f.Advertise, "advertise", "", "address other servers and clients reach this one at (default: --listen, unless a wildcard)")
	fs.StringVar(&f.Alerts, "alerts", "", "detection and alert sinks file (YAML)")
	fs.StringVar(&f.Metrics, "metrics", "", "serve Prometheus /metrics on this address")
	fs.StringVar(&f.KeyRotation, "key-rotation", "", "rotate the primary data key when it is this old, e.g. 30d, or none (default 90d; a key is also rotated after 2^30 encryptions)")
	kekFlags(fs, &f.KEK)
	logFlags(fs, &f.Log)
	return file
}

func serverCommand() *Command {
	return &Command{
		Name:    "server",
		Summary: "run the control plane (CA, registry, intentions, audit)",
		Sub:     []*Command{serverAdminRecoverCommand(), serverInitCommand(), serverMembersCommand(), serverMFAApproveCommand(), serverRunCommand()},
	}
}

func serverInitCommand() *Command {
	var c server.File
	var file *string
	var validate *bool
	return &Command{
		Name:    "init",
		Summary: "create the CA and the first admin's credentials",
		Usage:   "--data-dir DIR --trust-domain NAME [flags]",
		Help: "Creates a control plane under --data-dir: the CA (root and intermediate, keys\n" +
			"sealed under the key-encryption key), the store, and admin credentials in\n" +
			"--admin-dir (default DIR.admin, beside the data directory so that a copy of it\n" +
			"holds no usable credential; files mode 0600) for the admin commands.",
		Flags: func(fs *flag.FlagSet) {
			file = serverFlags(fs, &c)
			fs.StringVar(&c.TrustDomain, "trust-domain", "", "trust domain, e.g. example.org (required)")
			fs.DurationVar(&c.SVIDTTL, "svid-ttl", time.Hour, "SVID lifetime when a request names none (at most 24h)")
			fs.DurationVar(&c.NodeTTL, "node-ttl", ca.DefaultNodeTTL, "node certificate lifetime (at least the SVID lifetime, at most 720h)")
			fs.StringVar(&c.AdminDir, "admin-dir", "", "where to write the admin credentials (default DATA_DIR.admin)")
			validate = fs.Bool("validate", false, "check the configuration and exit")
		},
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
			if err := withConfigFile(fs, *file, &c); err != nil {
				return err
			}
			if err := c.Validate(true); err != nil {
				return err
			}
			if *validate {
				fmt.Fprintln(e.Stdout, "configuration OK")
				return nil
			}
			if c.AdminDir == "" {
				c.AdminDir = strings.TrimRight(filepath.Clean(c.DataDir), string(filepath.Separator)) + ".admin"
			}
			if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
				return err
			}
			sk, err := openServerKeyring(ctx, e, &c, true)
			if err != nil {
				return err
			}
			defer sk.Close()
			sealer := sk.kr.AEAD()
			st, err := openStore(ctx, c.DataDir, c.Store, sealer)
			if err != nil {
				return err
			}
			defer st.Close()
			err = server.Init(ctx, st, server.InitConfig{
				TrustDomain: c.TrustDomain, SVIDTTL: c.SVIDTTL, NodeTTL: c.NodeTTL, AdminDir: c.AdminDir, Sealer: sealer,
			})
			if errors.Is(err, server.ErrInitialized) {
				if c.Store.Backend == "etcd" {
					return fmt.Errorf("etcd %v prefix %q already holds a moat control plane: %w", c.Store.Endpoints, etcdPrefix(c.Store), errClusterExists)
				}
				return fmt.Errorf("%s already holds a control plane", c.DataDir)
			}
			if err != nil {
				return err
			}
			// The root's fingerprint names this cluster among others of its
			// trust domain: moat backup restore --ca-fingerprint checks it.
			roots, err := api.ReadCertFile(filepath.Join(c.AdminDir, api.BundleFile))
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "control plane created for trust domain %q\n", c.TrustDomain)
			for _, r := range roots {
				fmt.Fprintf(e.Stdout, "CA root: sha256 %s\n", backup.CAFingerprint(r.Raw))
			}
			fmt.Fprintf(e.Stdout, "admin credentials: %s\nnext: moat server run --data-dir %s --listen %s\n", c.AdminDir, c.DataDir, c.Listen)
			return nil
		},
	}
}

func serverRunCommand() *Command {
	var c server.File
	var file *string
	var validate *bool
	return &Command{
		Name:    "run",
		Summary: "serve the control-plane API",
		Usage:   "--data-dir DIR [--listen ADDR] [flags]",
		Flags: func(fs *flag.FlagSet) {
			file = serverFlags(fs, &c)
			validate = fs.Bool("validate", false, "check the configuration and exit")
		},
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
			if err := withConfigFile(fs, *file, &c); err != nil {
				return err
			}
			if err := c.Validate(false); err != nil {
				return err
			}
			if *validate {
				fmt.Fprintln(e.Stdout, "configuration OK")
				return nil
			}
			// A store that does not answer yet is waited out (see
			// server.WaitStore); any other failure ends the start-up.
			logger := c.Log.Logger(e.Stderr)
			var p *serverParts
			err := server.WaitStore(ctx, server.StartConfig{Listen: c.Listen, Logger: logger}, func(ctx context.Context) (err error) {
				p, err = startServer(ctx, e, &c, logger)
				return err
			})
			if err != nil && ctx.Err() != nil {
				return nil // stopped before the store answered
			}
			if err != nil {
				return err
			}
			defer p.Close()
			return p.Run(ctx)
		},
	}
}

func serverAdminRecoverCommand() *Command {
	var (
		c               server.File
		file            *string
		name, role, out string
		ttl             time.Duration
	)
	return &Command{
		Name:    "admin-recover",
		Summary: "issue admin credentials offline, from the data directory and the KEK",
		Usage:   "--data-dir DIR --out DIR [--admin NAME] [--role admin] [--kek-* ...]",
		Help: "For a lockout: every administrator's credentials are lost or expired. On the\n" +
			"server's host, with the server stopped (it holds the audit log), this opens\n" +
			"the data directory's keyring with the key-encryption key, issues a\n" +
			"certificate for the administrator --admin from the CA, records their role, and\n" +
			"appends \"admin.recover\" to the audit log before writing the credentials to\n" +
			"--out. Whoever holds the KEK and the data directory can do this, and the\n" +
			"audit log says that they did.",
		Flags: func(fs *flag.FlagSet) {
			file = offlineFlags(fs, &c)
			fs.StringVar(&name, "admin", "admin", "the administrator's name")
			fs.StringVar(&role, "role", api.RoleAdmin, "viewer, operator or admin")
			fs.StringVar(&out, "out", "", "directory for the new credentials (required; must hold none)")
			fs.DurationVar(&ttl, "ttl", 30*24*time.Hour, "certificate lifetime")
		},
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
			if err := offlineConfig(fs, *file, &c, "admin-recover"); err != nil {
				return err
			}
			if out == "" {
				return usagef("server admin-recover: --out is required")
			}
			if api.RoleRank(role) == 0 {
				return usagef("server admin-recover: --role %q: want viewer, operator or admin", role)
			}
			off, err := openOffline(ctx, e, &c)
			if err != nil {
				return err
			}
			defer off.Close()
			leaf, err := server.RecoverAdmin(ctx, off.st, server.RecoverConfig{
				Name: name, Role: role, TTL: ttl, OutDir: out, Sealer: off.sealer, Audit: off.log, Actor: off.actor,
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "credentials for %s (role %s) in %s, valid until %s\nrecorded in the audit log as admin.recover by %s\n",
				leaf.URIs[0], role, out, leaf.NotAfter.UTC().Format(time.RFC3339), off.actor)
			return nil
		},
	}
}

// offline is a control plane opened on its host without a running
// server: the store under the KEK and the audit log, for the commands that
// act when no administrator can (admin-recover, mfa-approve).
type offline struct {
	st      store.Store
	log     server.AuditLog
	sealer  *seal.AEAD
	actor   string // the local user, for audit entries
	closers []func() error
}

// offlineFlags declares the flags of the offline commands onto c and
// returns --config.
func offlineFlags(fs *flag.FlagSet, c *server.File) *string {
	file := fs.String("config", "", "the server's YAML configuration file (for data_dir, store and kek)")
	fs.StringVar(&c.DataDir, "data-dir", "", "the server's data directory (required)")
	kekFlags(fs, &c.KEK)
	return file
}

// offlineConfig reads and validates an offline command's configuration.
func offlineConfig(fs *flag.FlagSet, file string, c *server.File, cmd string) error {
	if err := noArgs(fs, "server "+cmd); err != nil {
		return err
	}
	if err := withConfigFile(fs, file, c); err != nil {
		return err
	}
	return c.Validate(false)
}

// openOffline opens c's keyring, store and audit log.
func openOffline(ctx context.Context, e *Env, c *server.File) (*offline, error) {
	sk, err := openServerKeyring(ctx, e, c, false)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.DataDir, err)
	}
	o := &offline{closers: []func() error{sk.Close}}
	kr := sk.kr
	o.sealer = kr.AEAD()
	// The store first: a running server holds it (and its audit log), and
	// these commands must not write beside it.
	st, err := openStore(ctx, c.DataDir, c.Store, server.NewStoreSealer(kr.AEAD()))
	if err != nil {
		o.Close()
		return nil, fmt.Errorf("%w (stop the server first)", err)
	}
	o.st = st
	o.closers = append(o.closers, st.Close)
	log, err := openAuditLog(ctx, c, st, kr.AEAD(), slog.New(slog.NewTextHandler(e.Stderr, nil)))
	if err != nil {
		o.Close()
		return nil, fmt.Errorf("%w (stop the server first)", err)
	}
	o.log = log
	o.closers = append(o.closers, log.Close)
	o.actor = "local"
	if u, err := user.Current(); err == nil {
		o.actor = "local:" + u.Username
	}
	return o, nil
}

// Close closes what openOffline opened, last first.
func (o *offline) Close() error {
	var first error
	for i := len(o.closers) - 1; i >= 0; i-- {
		if err := o.closers[i](); err != nil && first == nil {
			first = err
		}
	}
	o.closers = nil
	return first
}

func serverMFAApproveCommand() *Command {
	var (
		c    server.File
		file *string
		name string
	)
	return &Command{
		Name:    "mfa-approve",
		Summary: "approve an administrator's first MFA enrolment offline, from the data directory and the KEK",
		Usage:   "--data-dir DIR --admin NAME [--kek-* ...]",
		Help: "With mfa.first_enrolment: approved, an administrator's first authenticator\n" +
			"proves nothing until another administrator approves it (\"moat admin mfa approve\").\n" +
			"The first administrator has no other: on the server's host, with the server\n" +
			"stopped, this approves it with the data directory's keyring opened under the\n" +
			"key-encryption key, and appends \"mfa.approve\" to the audit log. Check first\n" +
			"that the enrolment is the administrator's own (\"moat admin mfa status\" on\n" +
			"their machine shows it awaiting approval).",
		Flags: func(fs *flag.FlagSet) {
			file = offlineFlags(fs, &c)
			fs.StringVar(&name, "admin", "", "the administrator whose enrolment to approve (required)")
		},
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
			if err := offlineConfig(fs, *file, &c, "mfa-approve"); err != nil {
				return err
			}
			if name == "" {
				return usagef("server mfa-approve: --admin is required")
			}
			off, err := openOffline(ctx, e, &c)
			if err != nil {
				return err
			}
			defer off.Close()
			id, err := server.ApproveEnrolment(ctx, off.st, server.ApproveConfig{Name: name, Audit: off.log, Actor: off.actor})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "the authenticator of %s is approved\nrecorded in the audit log as mfa.approve by %s\n", id, off.actor)
			return nil
		},
	}
}

func serverMembersCommand() *Command {
	return adminCommand("members", "list the servers of the control plane's cluster", "", nil,
		func(ctx context.Context, e *Env, fs *flag.FlagSet, c *api.AdminClient, out *adminFlags) error {
			if err := noArgs(fs, "server members"); err != nil {
				return err
			}
			var ms []api.Member
			if err := c.Call(ctx, http.MethodGet, api.PathMembers, nil, &ms); err != nil {
				return err
			}
			if out.output == "json" {
				return printJSON(e.Stdout, ms)
			}
			tw := tabwriter.NewWriter(e.Stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tADDRESS\tSTATE\tSTARTED\tLAST SEEN")
			for _, m := range ms {
				state := "alive"
				if !m.Alive {
					state = "gone"
				}
				if m.Self {
					state += " (answered)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", cell(m.Name), cell(m.Addr), state, m.Started.Format(time.RFC3339), m.Seen.Format(time.RFC3339))
			}
			return tw.Flush()
		})
}
