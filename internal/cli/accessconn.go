package cli

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/term"

	"moat/internal/api"
	"moat/internal/ca"
	"moat/internal/identity"
	"moat/internal/mesh"
)

// findGrant finds the caller's active grant for node (a shell) or service
// (a forward), the latest one if several. The caller's is the grant of
// their account, by the ID their certificate carries, not of their name:
// a name removed and made again is another account, whose grants are
// never this one's to pick (the server refuses their certificates too).
func findGrant(ctx context.Context, s *api.AdminClient, mode, node, service string) (api.Grant, error) {
	marks, err := identity.ReadAdminMarks(s.Leaf())
	if err != nil {
		return api.Grant{}, fmt.Errorf("your certificate: %w", err)
	}
	if marks.Account == "" {
		return api.Grant{}, errors.New("your certificate carries no account ID (it was issued before certificates carried one), so no grant can be told to be yours: renew it (\"moat admin renew\"), which marks it with the account's ID (giving the account one if it has none), and try again")
	}
	var gs []api.GrantListing
	if err := s.Call(ctx, http.MethodGet, api.PathAccess, nil, &gs); err != nil {
		return api.Grant{}, err
	}
	for _, g := range gs { // newest first
		if g.Requester != s.ID() || g.RequesterAccount != marks.Account || g.State != api.GrantActive || g.Mode != mode {
			continue
		}
		if (mode == api.ModeShell && g.Node == node) || (mode == api.ModeForward && g.Service == service) {
			return g.Grant, nil
		}
	}
	what := "a shell on node " + node
	if mode == api.ModeForward {
		what = "a forward of service " + service
	}
	return api.Grant{}, fmt.Errorf("you hold no active grant for %s: ask with \"moat access request\" (and have it approved)", what)
}

// grantCreds are the credentials of one grant.
type grantCreds struct {
	tls     *tls.Certificate
	sshCert *ssh.Certificate
	sshKey  ed25519.PrivateKey
	hostCA  ssh.PublicKey
}

// fetchGrantCreds asks for the grant's certificates over fresh keys (the
// call needs an MFA session: the prompt asks for a code if none is valid).
func fetchGrantCreds(ctx context.Context, s *api.AdminClient, g api.Grant) (*grantCreds, error) {
	key, csr, err := ca.NewKeyCSR()
	if err != nil {
		return nil, err
	}
	req := api.AccessCertRequest{Grant: g.ID, CSR: csr}
	out := &grantCreds{}
	if g.Mode == api.ModeShell {
		_, sk, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		pub, err := ssh.NewPublicKey(sk.Public())
		if err != nil {
			return nil, err
		}
		out.sshKey = sk
		req.SSHKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
	}
	var resp api.AccessCert
	if err := s.Call(ctx, http.MethodPost, api.PathAccessCert, req, &resp); err != nil {
		return nil, err
	}
	chain, err := api.ParseChain(resp.Chain)
	if err != nil {
		return nil, err
	}
	if id, err := s.Trust().Verify(chain); err != nil || id.String() != s.ID() {
		return nil, fmt.Errorf("the grant certificate does not verify as %s: %v", s.ID(), err)
	}
	out.tls = ca.TLSCertificate(chain, key)
	if g.Mode == api.ModeShell {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(resp.SSHCert))
		if err != nil {
			return nil, fmt.Errorf("SSH certificate: %w", err)
		}
		c, ok := k.(*ssh.Certificate)
		if !ok {
			return nil, errors.New("the server answered with no SSH certificate")
		}
		out.sshCert = c
		if out.hostCA, _, _, _, err = ssh.ParseAuthorizedKey([]byte(resp.HostCA)); err != nil {
			return nil, fmt.Errorf("SSH host CA: %w", err)
		}
	}
	return out, nil
}

// shellGrant finds the caller's shell grant on node and fetches its
// credentials.
func shellGrant(ctx context.Context, s *api.AdminClient, node string) (api.Grant, *grantCreds, error) {
	g, err := findGrant(ctx, s, api.ModeShell, node, "")
	if err != nil {
		return api.Grant{}, nil, err
	}
	cr, err := fetchGrantCreds(ctx, s, g)
	return g, cr, err
}

// dialGrant reaches g's node through the control plane's relay and runs
// mutual TLS with its agent: the grant certificate on this side, the node's
// SVID (checked against the pinned bundle, for g's node) on the other.
func dialGrant(ctx context.Context, s *api.AdminClient, g api.Grant, cert *tls.Certificate, alpn string) (*tls.Conn, error) {
	conn, err := s.Stream(ctx, api.PathAccessDial, http.Header{api.HeaderGrant: {g.ID}, api.HeaderALPN: {alpn}})
	if err != nil {
		return nil, err
	}
	trust := s.Trust()
	tc := tls.Client(conn, &tls.Config{
		MinVersion:           tls.VersionTLS13,
		NextProtos:           []string{alpn},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil },
		InsecureSkipVerify:   true, // the node is checked in VerifyConnection, against moat's bundle
		VerifyConnection: func(cs tls.ConnectionState) error {
			id, err := trust.Verify(cs.PeerCertificates)
			if err != nil {
				return fmt.Errorf("node certificate: %w", err)
			}
			if name, ok := identity.NodeName(id); !ok || name != g.Node {
				return fmt.Errorf("the relay reached %s, not node %q", id, g.Node)
			}
			if cs.NegotiatedProtocol != alpn {
				return fmt.Errorf("the node does not speak %s", alpn)
			}
			return nil
		},
	})
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("node %q refused the session: %w", g.Node, err)
	}
	return tc, nil
}

// sshClient runs SSH over a dialed grant connection.
func sshClient(tc net.Conn, g api.Grant, cr *grantCreds) (*ssh.Client, error) {
	signer, err := ssh.NewSignerFromKey(cr.sshKey)
	if err != nil {
		return nil, err
	}
	cs, err := ssh.NewCertSigner(cr.sshCert, signer)
	if err != nil {
		return nil, err
	}
	checker := &ssh.CertChecker{IsHostAuthority: func(auth ssh.PublicKey, _ string) bool {
		return bytes.Equal(auth.Marshal(), cr.hostCA.Marshal())
	}}
	cc, chans, reqs, err := ssh.NewClientConn(tc, g.Node+":22", &ssh.ClientConfig{
		User: "moat", Auth: []ssh.AuthMethod{ssh.PublicKeys(cs)},
		HostKeyCallback: checker.CheckHostKey, Timeout: 30 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("ssh to node %q: %w", g.Node, err)
	}
	return ssh.NewClient(cc, chans, reqs), nil
}

func sshCommand() *Command {
	var tty *bool
	return adminCommand("ssh", "a shell on a node under your active grant (recorded)", "NODE [-t] [COMMAND...]",
		func(fs *flag.FlagSet) {
			tty = fs.Bool("t", false, "ask for a terminal even when standard input is not one")
		},
		func(ctx context.Context, e *Env, fs *flag.FlagSet, s *api.AdminClient, af *adminFlags) error {
			if fs.NArg() < 1 {
				return usagef("ssh takes a node name, then an optional command")
			}
			node := fs.Arg(0)
			g, cr, err := shellGrant(ctx, s, node)
			if err != nil {
				return err
			}
			tc, err := dialGrant(ctx, s, g, cr.tls, api.ALPNAccessSSH)
			if err != nil {
				return err
			}
			defer tc.Close()
			cl, err := sshClient(tc, g, cr)
			if err != nil {
				return err
			}
			defer cl.Close()
			sess, err := cl.NewSession()
			if err != nil {
				return err
			}
			defer sess.Close()
			return runSSH(ctx, e, sess, *tty, strings.Join(fs.Args()[1:], " "))
		})
}

// runSSH runs a shell (or cmd) in sess with the caller's standard streams,
// a PTY when the input is a terminal (or want), its size kept in step.
func runSSH(ctx context.Context, e *Env, sess *ssh.Session, want bool, cmd string) error {
	sess.Stdin, sess.Stdout, sess.Stderr = e.Stdin, e.Stdout, e.Stderr
	fd := -1
	if f, ok := e.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fd = int(f.Fd())
	}
	if fd >= 0 || want {
		cols, rows := 80, 24
		if fd >= 0 {
			if w, h, err := term.GetSize(fd); err == nil {
				cols, rows = w, h
			}
			old, err := term.MakeRaw(fd)
			if err != nil {
				return err
			}
			defer term.Restore(fd, old)
			winch := make(chan os.Signal, 1)
			notifyResize(winch)
			defer signal.Stop(winch)
			go func() {
				for range winch {
					if w, h, err := term.GetSize(fd); err == nil {
						_ = sess.WindowChange(h, w)
					}
				}
			}()
		}
		termName := os.Getenv("TERM")
		if termName == "" {
			termName = "xterm-256color"
		}
		if err := sess.RequestPty(termName, rows, cols, ssh.TerminalModes{ssh.ECHO: 1}); err != nil {
			return err
		}
	}
	var err error
	if cmd == "" {
		if err = sess.Shell(); err == nil {
			err = sess.Wait()
		}
	} else {
		err = sess.Run(cmd)
	}
	var ee *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee):
		return &ExitError{Code: ee.ExitStatus()}
	case errors.As(err, &missing), errors.Is(err, io.EOF):
		return &ExitError{Code: 255, Msg: "the session ended without an exit status (the grant was revoked or expired, or the node went away)"}
	}
	return err
}

// grantDir is where ssh-cert keeps a node's credentials for ssh(1).
func grantDir(e *Env, af *adminFlags, node string) string {
	dir := af.adminDir
	if dir == "" {
		dir = e.Getenv("MOAT_ADMIN_DIR")
	}
	return filepath.Join(dir, "access", node)
}

// Files of a grant's credentials for OpenSSH.
const (
	grantKeyFile   = "id_ed25519"
	grantCertFile  = "id_ed25519-cert.pub"
	grantHostsFile = "known_hosts"
	grantTLSFile   = "grant.pem"
)

func accessSSHCertCommand() *Command {
	var dir *string
	return adminCommand("ssh-cert", "write your grant's SSH key and certificate for ssh(1), scp and sftp", "NODE [--dir DIR]",
		func(fs *flag.FlagSet) {
			dir = fs.String("dir", "", "where to write them (default ADMIN_DIR/access/NODE)")
		},
		func(ctx context.Context, e *Env, fs *flag.FlagSet, s *api.AdminClient, af *adminFlags) error {
			if fs.NArg() != 1 {
				return usagef("access ssh-cert takes one argument, the node")
			}
			node := fs.Arg(0)
			_, cr, err := shellGrant(ctx, s, node)
			if err != nil {
				return err
			}
			d := *dir
			if d == "" {
				d = grantDir(e, af, node)
			}
			if err := writeGrantCreds(d, node, cr); err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "Host %s\n  ProxyCommand moat access proxy %%h\n  IdentityFile %s\n  CertificateFile %s\n  UserKnownHostsFile %s\n  IdentitiesOnly yes\n",
				node, filepath.Join(d, grantKeyFile), filepath.Join(d, grantCertFile), filepath.Join(d, grantHostsFile))
			fmt.Fprintf(e.Stderr, "valid until %s (the grant's end)\n", cr.tls.Leaf.NotAfter.Local().Format(time.RFC3339))
			return nil
		})
}

func writeGrantCreds(dir, node string, cr *grantCreds) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	blk, err := ssh.MarshalPrivateKey(crypto.PrivateKey(cr.sshKey), "moat grant")
	if err != nil {
		return err
	}
	tlsPEM, err := api.EncodeCertKey(cr.tls)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		grantKeyFile:   pem.EncodeToMemory(blk),
		grantCertFile:  ssh.MarshalAuthorizedKey(cr.sshCert),
		grantHostsFile: []byte("@cert-authority " + node + " " + string(ssh.MarshalAuthorizedKey(cr.hostCA))),
		grantTLSFile:   tlsPEM,
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// loadGrantTLS reads the grant certificate ssh-cert wrote for node.
func loadGrantTLS(dir string) (*tls.Certificate, error) {
	b, err := os.ReadFile(filepath.Join(dir, grantTLSFile))
	if err != nil {
		return nil, err
	}
	return api.ParseCertKey(b)
}

func accessProxyCommand() *Command {
	af := &adminFlags{}
	return &Command{
		Name: "proxy", Summary: "ssh ProxyCommand: carry ssh(1) to a node under your grant", Usage: "NODE",
		Help: "For ssh -o ProxyCommand='moat access proxy %h': joins standard input and output to\n" +
			"the node's in-process SSH server through the control plane. It uses the grant\n" +
			"credentials \"moat access ssh-cert NODE\" wrote, so it never asks for a code.",
		Flags: af.register,
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
			if fs.NArg() != 1 {
				return usagef("access proxy takes one argument, the node")
			}
			node := fs.Arg(0)
			s, err := af.session(e, false)
			if err != nil {
				return err
			}
			defer s.Close()
			cert, err := loadGrantTLS(grantDir(e, af, node))
			if err != nil {
				return fmt.Errorf("no grant credentials for node %q: run \"moat access ssh-cert %s\" first (%v)", node, node, err)
			}
			marks, err := identity.ReadAdminMarks(cert.Leaf)
			if err != nil || marks.Grant == "" {
				return fmt.Errorf("%s holds no grant certificate", grantDir(e, af, node))
			}
			if time.Now().After(cert.Leaf.NotAfter) {
				return fmt.Errorf("the grant credentials for node %q expired at %s", node, cert.Leaf.NotAfter.Local().Format(time.RFC3339))
			}
			g := api.Grant{ID: marks.Grant, Node: node, Mode: api.ModeShell}
			tc, err := dialGrant(ctx, s, g, cert, api.ALPNAccessSSH)
			if err != nil {
				return err
			}
			defer tc.Close()
			return splice(ctx, tc, e.Stdin, e.Stdout)
		},
	}
}

// splice copies in to c and c to out until c ends or ctx does.
func splice(ctx context.Context, c net.Conn, in io.Reader, out io.Writer) error {
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(out, c)
		done <- err
	}()
	go func() {
		_, _ = io.Copy(c, in)
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
	}()
	select {
	case <-ctx.Done():
		return nil
	case err := <-done:
		return err
	}
}

func accessForwardCommand() *Command {
	var service, local *string
	return adminCommand("forward", "forward a local port to a service under your grant", "--service SVC --local 127.0.0.1:PORT",
		func(fs *flag.FlagSet) {
			service = fs.String("service", "", "the service of your forward grant (required)")
			local = fs.String("local", "127.0.0.1:0", "local address to listen on")
		},
		func(ctx context.Context, e *Env, fs *flag.FlagSet, s *api.AdminClient, af *adminFlags) error {
			if *service == "" {
				return usagef("access forward: --service is required")
			}
			if host, _, err := net.SplitHostPort(*local); err != nil || !net.ParseIP(host).IsLoopback() {
				return usagef("access forward: --local %q: want a loopback host:port", *local)
			}
			g, err := findGrant(ctx, s, api.ModeForward, "", *service)
			if err != nil {
				return err
			}
			cr, err := fetchGrantCreds(ctx, s, g)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", *local)
			if err != nil {
				return err
			}
			defer ln.Close()
			ctx, cancel := context.WithDeadline(ctx, cr.tls.Leaf.NotAfter)
			defer cancel()
			fmt.Fprintf(e.Stdout, "forwarding %s to %s:%d on node %s until %s\n", ln.Addr(), g.Service, g.Port, g.Node, cr.tls.Leaf.NotAfter.Local().Format(time.RFC3339))
			go func() {
				<-ctx.Done()
				ln.Close()
			}()
			var wg sync.WaitGroup
			defer wg.Wait()
			for {
				c, err := ln.Accept()
				if err != nil {
					if ctx.Err() != nil {
						fmt.Fprintf(e.Stderr, "the grant ended at %s; forwarding stopped\n", cr.tls.Leaf.NotAfter.Local().Format(time.RFC3339))
						return nil
					}
					return err
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer c.Close()
					if err := forwardOne(ctx, s, g, cr.tls, c); err != nil {
						fmt.Fprintf(e.Stderr, "moat: %v\n", err)
					}
				}()
			}
		})
}

// forwardOne carries one local connection to the grant's service.
func forwardOne(ctx context.Context, s *api.AdminClient, g api.Grant, cert *tls.Certificate, c net.Conn) error {
	tc, err := dialGrant(ctx, s, g, cert, api.ALPNAccessForward)
	if err != nil {
		return err
	}
	defer tc.Close()
	resp, err := mesh.ReadResponse(tc, mesh.AccessHeader)
	if err != nil {
		return fmt.Errorf("%s:%d: no answer from node %q: %w", g.Service, g.Port, g.Node, err)
	}
	if !resp.Allowed() {
		return fmt.Errorf("%s:%d refused: %s", g.Service, g.Port, resp.Reason)
	}
	go func() {
		<-ctx.Done()
		tc.Close()
	}()
	return splice(ctx, tc, c, c)
}
