package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"moat/internal/api"
	"moat/internal/ca"
	"moat/internal/identity"
	"moat/internal/policy"
)

// adminFlags are the flags every admin command takes.
type adminFlags struct {
	server   string
	adminDir string
	output   string
	timeout  time.Duration
}

func (a *adminFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.server, "server", "", "control plane servers, host:port[,host:port...] (env MOAT_SERVER; default 127.0.0.1:7400)")
	fs.DurationVar(&a.timeout, "timeout", api.DefaultTimeout, "give up on a call after this long")
	fs.StringVar(&a.adminDir, "admin-dir", "", "admin credentials directory (env MOAT_ADMIN_DIR)")
	fs.StringVar(&a.output, "output", "table", "output format: table or json")
}

// client builds an admin client from the credentials directory; a call
// that needs a fresh MFA proof asks for a code.
func (a *adminFlags) client(e *Env) (*api.AdminClient, error) {
	return a.session(e, true)
}

// connect returns an admin client after keepCredentials.
func (a *adminFlags) connect(ctx context.Context, e *Env) (*api.AdminClient, error) {
	c, err := a.client(e)
	if err != nil {
		return nil, err
	}
	if err := keepCredentials(ctx, e, c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// keepCredentials pins the server's current trust bundle in the credentials
// directory and renews the admin certificate when it is due (a root
// rotation moved signing to a new root, or it is past two thirds of its
// life), saying so on stderr. Every admin command does this first, so an
// administrator who uses the CLI during a rotation is never locked out.
func keepCredentials(ctx context.Context, e *Env, c *api.AdminClient) error {
	due, err := c.SyncTrust(ctx, time.Now())
	if err != nil || !due {
		return err
	}
	leaf, err := c.Renew(ctx, 0)
	if err != nil {
		return fmt.Errorf("renew the admin certificate: %w", err)
	}
	fmt.Fprintf(e.Stderr, "moat: renewed the admin certificate of %s, valid until %s\n", leaf.URIs[0], leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

// dir is the admin credentials directory: --admin-dir, else MOAT_ADMIN_DIR.
func (a *adminFlags) dir(e *Env) string {
	if a.adminDir != "" {
		return a.adminDir
	}
	return e.Getenv("MOAT_ADMIN_DIR")
}

// adminCommand builds an admin subcommand: it declares its own flags, then
// calls the server with the client (after keepCredentials).
func adminCommand(name, summary, usage string, flags func(fs *flag.FlagSet), run func(ctx context.Context, e *Env, fs *flag.FlagSet, c *api.AdminClient, out *adminFlags) error) *Command {
	af := &adminFlags{}
	return &Command{
		Name: name, Summary: summary, Usage: usage,
		Flags: func(fs *flag.FlagSet) {
			af.register(fs)
			if flags != nil {
				flags(fs)
			}
		},
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
			c, err := af.connect(ctx, e)
			if err != nil {
				return err
			}
			defer c.Close()
			return run(ctx, e, fs, c, af)
		},
	}
}

func tokenCommand() *Command {
	var node *string
	var ttl *time.Duration
	return &Command{
		Name:    "token",
		Summary: "make one-time join tokens for agents",
		Sub: []*Command{adminCommand("create", "make a join token bound to a node", "--node NODE [--ttl 15m]",
			func(fs *flag.FlagSet) {
				node = fs.String("node", "", "the node that may use the token (required)")
				ttl = fs.Duration("ttl", 15*time.Minute, "how long the token stays valid")
			},
			func(ctx context.Context, e *Env, fs *flag.FlagSet, c *api.AdminClient, out *adminFlags) error {
				if *node == "" {
					return usagef("token create: --node is required")
				}
				var resp api.TokenResponse
				if err := c.Call(ctx, http.MethodPost, api.PathTokens, api.TokenRequest{Node: *node, TTL: *ttl}, &resp); err != nil {
					return err
				}
				if out.output == "json" {
					return printJSON(e.Stdout, resp)
				}
				fmt.Fprintln(e.Stdout, resp.Token)
				fmt.Fprintf(e.Stderr, "token for node %q, valid until %s, usable once\n", resp.Node, resp.Expires.Format(time.RFC3339))
				return nil
			})},
	}
}

// parseUpstream reads SVC:LOCAL_PORT, or HOST:PORT=LOCAL_PORT for a host
// outside the mesh.
func parseUpstream(s string) (api.Upstream, error) {
	if ext, local, ok := strings.Cut(s, "="); ok {
		p, err := strconv.Atoi(local)
		u := api.Upstream{External: ext, LocalPort: p}
		if err == nil {
			err = u.Check()
		}
		if err != nil {
			return api.Upstream{}, fmt.Errorf("--upstream %q: want HOST:PORT=LOCAL_PORT for a host outside the mesh: %v", s, err)
		}
		return u, nil
	}
	svc, port, ok := strings.Cut(s, ":")
	if !ok {
		return api.Upstream{}, fmt.Errorf("--upstream %q: want SERVICE:LOCAL_PORT", s)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return api.Upstream{}, fmt.Errorf("--upstream %q: local port must be 1-65535", s)
	}
	if err := identity.ValidName(svc); err != nil {
		return api.Upstream{}, fmt.Errorf("--upstream %q: %v", s, err)
	}
	return api.Upstream{Service: svc, LocalPort: p}, nil
}

func svcCommand() *Command {
	var node, name *string
	var port, uid *int
	var ups stringList
	var plainPort *int
	var labels stringList
	register := adminCommand("register", "place a service on a node", "--node NODE --name NAME --port APP_PORT [--upstream SVC:LOCAL_PORT]... [--uid UID] [--plaintext-port PORT] [--label KEY=VALUE]...",
		func(fs *flag.FlagSet) {
			node = fs.String("node", "", "node that runs the service (required)")
			name = fs.String("name", "", "service name (required)")
			port = fs.Int("port", 0, "the app's port on 127.0.0.1 (required)")
			uid = fs.Int("uid", -1, "only this local uid may fetch the SVID and use the upstream ports; -1 lets any local user (no isolation)")
			plainPort = fs.Int("plaintext-port", 0, "while the intentions make the service permissive, take plaintext callers on this port of the node's mesh address")
			fs.Var(&ups, "upstream", "a service this one calls and the local port to reach it on, SVC:LOCAL_PORT, or a host outside the mesh, HOST:PORT=LOCAL_PORT (through the egress path; repeatable)")
			fs.Var(&labels, "label", "KEY=VALUE describing the service, for people and dashboards (repeatable)")
		},
		func(ctx context.Context, e *Env, fs *flag.FlagSet, c *api.AdminClient, out *adminFlags) error {
			if *node == "" || *name == "" || *port == 0 {
				return usagef("svc register: --node, --name and --port are required")
			}
			reg := api.Registration{Name: *name, Node: *node, Port: *port}
			if *uid >= 0 {
				reg.UID = uid
			}
			reg.PlaintextPort = *plainPort
			for _, l := range labels {
				k, v, ok := strings.Cut(l, "=")
				if !ok {
					return usagef("--label %q: want KEY=VALUE", l)
				}
				if err := api.ValidLabel(k, v); err != nil {
					return usagef("--label %q: %v", l, err)
				}
				if reg.Labels == nil {
					reg.Labels = map[string]string{}
				}
				reg.Labels[k] = v
			}
			for _, u := range ups {
				up, err := parseUpstream(u)
				if err != nil {
					return usagef("%v", err)
				}
				reg.Upstreams = append(reg.Upstreams, up)
			}
			var got api.Registration
			if err := c.Call(ctx, http.MethodPost, api.PathServices, reg, &got); err != nil {
				return err
			}
			if out.output == "json" {
				return printJSON(e.Stdout, got)
			}
			fmt.Fprintf(e.Stdout, "registered %s on node %s (app port %d)\n", got.Name, got.Node, got.Port)
			if got.UID == nil {
				fmt.Fprintf(e.Stderr, "warning: %s has no --uid: any local user of node %s can fetch its SVID and call through its upstream ports as %s\n", got.Name, got.Node, got.Name)
			}
			return nil
		})
	list := adminCommand("list", "list registered services", "", nil,
		func(ctx context.Context, e *Env, fs *flag.FlagSet, c *api.AdminClient, out *adminFlags) error {
			var regs []api.ServiceListing
			if err := c.Call(ctx, http.MethodGet, api.PathServices, nil, &regs); err != nil {
				return err
			}
			if out.output == "json" {
				return printJSON(e.Stdout, regs)
			}
			tw := tabwriter.NewWriter(e.Stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tNODE\tPORT\tUID\tUPSTREAMS\tHEALTH")
			for _, r := range regs {
				var ups []string
				for _, u := range r.Upstreams {
					if u.External != "" {
						ups = append(ups, fmt.Sprintf("%s=%d", u.External, u.LocalPort))
						continue
					}
					ups = append(ups, fmt.Sprintf("%s:%d", u.Service, u.LocalPort))
				}
				uid := "any"
				if r.UID != nil {
					uid = fmt.Sprint(*r.UID)
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", cell(r.Name), cell(r.Node), r.Port, uid, cell(strings.Join(ups, ",")), cell(listingHealth(r)))
			}
			return tw.Flush()
		})
	var dname *string
	deregister := adminCommand("deregister", "remove a service", "--name NAME",
		func(fs *flag.FlagSet) { dname = fs.String("name", "", "service name (required)") },
		func(ctx context.Context, e *Env, fs *flag.FlagSet, c *api.AdminClient, out *adminFlags) error {
			if *dname == "" {
				return usagef("svc deregister: --name is required")
			}
			if err := noArgs(fs, "svc deregister"); err != nil {
				return err
			}
			return c.Call(ctx, http.MethodDelete, api.PathServices+"?name="+url.QueryEscape(*dname), nil, nil)
		})
	return &Command{Name: "svc", Summary: "register and list services", Sub: []*Command{deregister, list, register}}
}

func revokeCommand() *Command {
	var svc, node, serial *string
	c := adminCommand("revoke", "revoke a service, a node or one certificate", "--svc NAME | --node NAME | --serial HEX",
		func(fs *flag.FlagSet) {
			svc = fs.String("svc", "", "revoke a service identity")
			node = fs.String("node", "", "revoke a node and the SVIDs it was issued")
			serial = fs.String("serial", "", "revoke one certificate by serial (hex); a serial that is no live service SVID (an administrator's, a node's, a server's) needs role admin")
		},
		func(ctx context.Context, e *Env, fs *flag.FlagSet, c *api.AdminClient, out *adminFlags) error {
			if err := noArgs(fs, "revoke"); err != nil {
				return err
			}
			req := api.RevokeRequest{Service: *svc, Node: *node, Serial: *serial}
			var rev api.RevokeResult
			if err := c.Call(ctx, http.MethodPost, api.PathRevoke, req, &rev); err != nil {
				if errors.Is(err, api.ErrInvalid) {
					return usagef("revoke: %v", err)
				}
				return err
			}
			named := fmt.Sprintf("service %q", *svc)
			if *node != "" {
				named = fmt.Sprintf("node %q", *node)
			}
			if rev.NotRegistered {
				fmt.Fprintf(e.Stderr, "warning: revoked anyway: %s is not registered; its identity stays refused should it ever be\n", named)
			}
			if out.output == "json" {
				return printJSON(e.Stdout, rev)
			}
			what := named
			switch {
			case *node != "":
				what = named + " and the SVIDs it was issued"
			case *serial != "":
				what = "serial " + *serial
			}
			fmt.Fprintf(e.Stdout, "revoked %s; revocation list version %d (%d identities, %d serials) is on its way to every agent\n", what, rev.Version, len(rev.IDs), len(rev.Serials))
			return nil
		})
	c.Help = "Adds to the revocation list that every agent receives within a second; revoked\nidentities are refused at their next handshake and a revoked node cannot renew.\nAn operator may revoke services, nodes and live service SVIDs by serial; any\nother serial (an administrator's or a server's certificate) needs role admin.\nA service or node that is not registered is revoked anyway (a node may be\nrevoked before it joins), with a warning on stderr naming it."
	return c
}

func caCommand() *Command {
	show := adminCommand("show", "show the CA, its roots and the rotation phase", "", nil,
		func(ctx context.Context, e *Env, fs *flag.FlagSet, c *api.AdminClient, out *adminFlags) error {
			var info api.CAInfo
			if err := c.Call(ctx, http.MethodGet, api.PathCA, nil, &info); err != nil {
				return err
			}
			if out.output == "json" {
				return printJSON(e.Stdout, info)
			}
			printCA(e.Stdout, info)
			return nil
		})
	step := func(name, summary string) *Command {
		var force *bool
		return adminCommand(name, summary, "", func(fs *flag.FlagSet) {
			if name == "retire" {
				force = fs.Bool("force", false, "retire even if SVIDs under the old root may still be live")
			}
		}, func(ctx context.Context, e *Env, fs *flag.FlagSet, c *api.AdminClient, out *adminFlags) error {
			req := api.CARequest{Step: name}
			if force != nil {
				req.Force = *force
			}
			var info api.CAInfo
			if err := c.Call(ctx, http.MethodPost, api.PathCARotate, req, &info); err != nil {
				return err
			}
			// Pin the bundle the step changed (and, once the new root
			// signs, renew) now rather than at the next command.
			if err := keepCredentials(ctx, e, c); err != nil {
				return err
			}
			if out.output == "json" {
				return printJSON(e.Stdout, info)
			}
			printCA(e.Stdout, info)
			return nil
		})
	}
	rotate := &Command{Name: "rotate", Summary: "rotate the root without downtime: prepare, activate, retire",
		Help: "prepare: make a new root and publish it in every bundle (the old root still signs)\n" +
			"activate: the new root's intermediate signs new SVIDs\n" +
			"retire: drop the old root once no live SVID depends on it",
		Sub: []*Command{step("activate", "make the new root sign"), step("prepare", "make and publish a new root"), step("retire", "remove the old root from the bundle")}}
	return &Command{Name: "ca", Summary: "inspect and rotate the CA", Sub: []*Command{rotate, show}}
}

func printCA(w io.Writer, info api.CAInfo) {
	fmt.Fprintf(w, "trust domain: %s\nphase: %s\nSVID TTL: %s\n", info.TrustDomain, info.Phase, info.SVIDTTL)
	for i, r := range info.Roots {
		fmt.Fprintf(w, "root %d: %s serial %s, valid %s to %s, sha256 %s\n", i, r.Subject, r.Serial,
			r.NotBefore.Format(time.DateOnly), r.NotAfter.Format(time.DateOnly), r.SHA256)
	}
	fmt.Fprintf(w, "signing: %s, valid to %s\n", info.Signing.Subject, info.Signing.NotAfter.Format(time.DateOnly))
	fmt.Fprintf(w, "revocations: version %d, %d identities, %d serials\n", info.Revocations.Version, len(info.Revocations.IDs), len(info.Revocations.Serials))
}

func policyCommand() *Command {
	var file *string
	readFile := func(cmd string) (string, error) {
		if *file == "" {
			return "", usagef("policy %s: -f FILE is required", cmd)
		}
		b, err := os.ReadFile(*file)
		if err != nil {
			return "", err
		}
		return string(b), nil
	}
	fileFlag := func(fs *flag.FlagSet) { file = fs.String("f", "", "intentions file (YAML)") }
	var validate *bool
	applyFlags := func(fs *flag.FlagSet) {
		fileFlag(fs)
		validate = fs.Bool("validate", false, "check the file with the policy parser here, without the server, and exit")
	}
	apply := adminCommand("apply", "validate and apply an intentions file atomically", "-f FILE [--validate]", applyFlags,
		func(ctx context.Context, e *Env, fs *flag.FlagSet, c *api.AdminClient, out *adminFlags) error {
			doc, err := readFile("apply")
			if err != nil {
				return err
			}
			var resp api.PolicyApplied
			if err := c.Call(ctx, http.MethodPost, api.PathPolicy, api.PolicyRequest{YAML: doc}, &resp); err != nil {
				return policyFileErr(*file, err)
			}
			if out.output == "json" {
				return printJSON(e.Stdout, resp)
			}
			for _, w := range resp.Warnings {
				fmt.Fprintf(e.Stderr, "warning: %s\n", w)
			}
			fmt.Fprintf(e.Stdout, "applied policy version %d\n", resp.Policy.Version)
			return nil
		})
	applyRun := apply.Run
	apply.Run = func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
		if !*validate {
			return applyRun(ctx, e, fs)
		}
		doc, err := readFile("apply")
		if err != nil {
			return err
		}
		t, err := policy.ParseDocument([]byte(doc), "")
		if err != nil {
			return fmt.Errorf("%s: %w", *file, err)
		}
		for _, w := range t.Warnings() { // as applying it would print them
			fmt.Fprintf(e.Stderr, "warning: %s\n", w)
		}
		fmt.Fprintf(e.Stdout, "%s: ok (policy digest %s)\n", *file, t.Version())
		return nil
	}
	diff := adminCommand("diff", "show what applying a file would change, and which recent flows it would deny", "-f FILE", fileFlag,
		func(ctx context.Context, e *Env, fs *flag.FlagSet, c *api.AdminClient, out *adminFlags) error {
			if err := noArgs(fs, "policy diff"); err != nil {
				return err
			}
			doc, err := readFile("diff")
			if err != nil {
				return err
			}
			var resp api.PolicyDiff
			if err := c.Call(ctx, http.MethodPost, api.PathPolicyDiff, api.PolicyRequest{YAML: doc}, &resp); err != nil {
				return policyFileErr(*file, err)
			}
			if out.output == "json" {
				return printJSON(e.Stdout, resp)
			}
			fmt.Fprint(e.Stdout, resp.Text)
			return nil
		})
	var from, to *string
	var port *int
	explain := adminCommand("explain", "say which rule decides a connection, and why", "--from A --to B --port P",
		func(fs *flag.FlagSet) {
			from = fs.String("from", "", "calling service, or the IP address of a plaintext caller")
			to = fs.String("to", "", "called service")
			port = fs.Int("port", 0, "called port")
		},
		func(ctx context.Context, e *Env, fs *flag.FlagSet, c *api.AdminClient, out *adminFlags) error {
			if *from == "" || *to == "" || *port == 0 {
				return usagef("policy explain: --from, --to and --port are required")
			}
			var resp api.Explanation
			if err := c.Call(ctx, http.MethodPost, api.PathPolicyExpl, api.ExplainRequest{From: *from, To: *to, Port: *port}, &resp); err != nil {
				return err
			}
			if out.output == "json" {
				return printJSON(e.Stdout, resp)
			}
			fmt.Fprintln(e.Stdout, resp.Text)
			return nil
		})
	show := adminCommand("show", "print the applied intentions", "", nil,
		func(ctx context.Context, e *Env, fs *flag.FlagSet, c *api.AdminClient, out *adminFlags) error {
			if err := noArgs(fs, "policy show"); err != nil {
				return err
			}
			var p api.Policy
			if err := c.Call(ctx, http.MethodGet, api.PathPolicy, nil, &p); err != nil {
				return err
			}
			if out.output == "json" {
				return printJSON(e.Stdout, p)
			}
			if p.Version == 0 {
				fmt.Fprintln(e.Stdout, "# no policy applied: every connection is denied")
				return nil
			}
			fmt.Fprintf(e.Stdout, "# version %d, applied %s by %s\n%s", p.Version, p.Applied.Format(time.RFC3339), p.By, p.YAML)
			return nil
		})
	return &Command{Name: "policy", Summary: "apply, diff and explain intentions", Sub: []*Command{apply, diff, explain, show}}
}

// policyFileErr names the file whose intentions the server refused.
func policyFileErr(file string, err error) error {
	if errors.Is(err, api.ErrInvalid) {
		return fmt.Errorf("%s: %w", file, err)
	}
	return err
}

func adminsCommand() *Command {
	var name, role, out *string
	var ttl *time.Duration
	var replace *bool
	create := adminCommand("create", "make an administrator's credentials with a role", "--name NAME --role viewer|operator|admin --out DIR",
		func(fs *flag.FlagSet) {
			name = fs.String("name", "", "the administrator's name (required)")
			role = fs.String("role", "", "viewer, operator or admin (required)")
			out = fs.String("out", "", "directory to write the new credentials to (required; mode 0600 files)")
			ttl = fs.Duration("ttl", 30*24*time.Hour, "certificate lifetime")
			replace = fs.Bool("replace", false, "issue a new credential for an administrator that exists: the same account, which keeps its grants, sessions and second factors (audited; the old certificates stay valid until revoked); to give the name to someone else, \"moat admin remove\" it first")
		},
		func(ctx context.Context, e *Env, fs *flag.FlagSet, c *api.AdminClient, af *adminFlags) error {
			if *name == "" || *role == "" || *out == "" {
				return usagef("admin create: --name, --role and --out are required")
			}
			key, csr, err := ca.NewKeyCSR()
			if err != nil {
				return err
			}
			var resp api.CertResponse
			if err := c.Call(ctx, http.MethodPost, api.PathAdmins, api.AdminRequest{Name: *name, Role: *role, TTL: *ttl, CSR: csr, Replace: *replace}, &resp); err != nil {
				return err
			}
			chain, err := api.ParseChain(resp.Chain)
			if err != nil {
				return err
			}
			roots, err := api.ParseChain(resp.Bundle)
			if err != nil {
				return err
			}
			if err := api.WriteCredentials(*out, ca.TLSCertificate(chain, key), roots); err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "credentials for %s (role %s) in %s, valid until %s\n", chain[0].URIs[0], *role, *out, chain[0].NotAfter.Format(time.RFC3339))
			return nil
		})
	whoami := adminCommand("whoami", "show the identity and role of the admin credentials", "", nil,
		func(ctx context.Context, e *Env, fs *flag.FlagSet, c *api.AdminClient, af *adminFlags) error {
			var w api.Whoami
			if err := c.Call(ctx, http.MethodGet, api.PathWhoami, nil, &w); err != nil {
				return err
			}
			if af.output == "json" {
				return printJSON(e.Stdout, w)
			}
			fmt.Fprintf(e.Stdout, "%s (role %s)\n", w.ID, w.Role)
			return nil
		})
	var renewTTL *time.Duration
	renew := adminCommand("renew", "renew the admin certificate (same key, same role)", "[--ttl D]",
		func(fs *flag.FlagSet) {
			renewTTL = fs.Duration("ttl", 0, "new certificate lifetime (default: as long as the current one)")
		},
		func(ctx context.Context, e *Env, fs *flag.FlagSet, c *api.AdminClient, af *adminFlags) error {
			if *renewTTL < 0 {
				return usagef("admin renew: --ttl must be positive")
			}
			leaf, err := c.Renew(ctx, *renewTTL)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "renewed %s, valid until %s\n", leaf.URIs[0], leaf.NotAfter.UTC().Format(time.RFC3339))
			return nil
		})
	renew.Help = "Asks the control plane for a new certificate over the same key, with the same\n" +
		"identity and role, and writes it to the credentials directory. Any admin\n" +
		"command renews by itself once the certificate is two thirds through its life,\n" +
		"or when a root rotation has moved signing to a new root. --ttl may not exceed\n" +
		"the life the account was granted (admin create --ttl, 30 days for server\n" +
		"init's administrator, admin-recover --ttl); only an admin's \"admin create\n" +
		"--replace --ttl\" grants more. A certificate that has already expired cannot\n" +
		"be renewed this way: see \"moat server admin-recover\"."
	return &Command{Name: "admin", Summary: "manage administrators", Sub: []*Command{create, adminListCommand(), mfaCommand(), adminRemoveCommand(), renew, whoami}}
}

// listingHealth sums up a service's listeners as its agent reported them.
func listingHealth(r api.ServiceListing) string {
	if r.Reported.IsZero() {
		return "unknown (no report from the node)"
	}
	var bad []string
	for _, h := range r.Health {
		if h.OK {
			continue
		}
		what := h.Kind
		if h.Upstream != "" {
			what += " " + h.Upstream
		}
		bad = append(bad, fmt.Sprintf("%s %s failing (%d tries): %s", what, h.Addr, h.Failures, h.Error))
	}
	if len(bad) == 0 {
		return "ok"
	}
	return strings.Join(bad, "; ")
}
