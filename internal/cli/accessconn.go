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
	"moat/internal/seal"
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

// fetchGrantCreds asks for the certificates of one session under the
// grant, over fresh keys held in memory: the X.509 one, and with withSSH
// (a shell grant) an SSH one. They live minutes (the server's
// access.session_cert_ttl), so every session asks anew; the call needs a
// live MFA session, and the client's prompt asks for a code if there is
// none and it may ask.
func fetchGrantCreds(ctx context.Context, s *api.AdminClient, g api.Grant, withSSH bool) (*grantCreds, error) {
	key, csr, err := ca.NewKeyCSR()
	if err != nil {
		return nil, err
	}
	req := api.AccessCertRequest{Grant: g.ID, CSR: csr}
	out := &grantCreds{}
	if withSSH {
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
	if withSSH {
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
	cr, err := fetchGrantCreds(ctx, s, g, true)
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
	return adminCommand("ssh", "a shell on a node under your active grant (recorded)", "[-t] NODE [COMMAND...]",
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
	// grantTLSFile held the grant's X.509 certificate and key, which
	// earlier versions wrote for "moat access proxy"; ssh-cert removes it.
	grantTLSFile = "grant.pem"
)

func accessSSHCertCommand() *Command {
	var dir *string
	cmd := adminCommand("ssh-cert", "write a short-lived SSH key and certificate of your grant for ssh(1), scp and sftp", "[--dir DIR] NODE",
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
			until := time.Unix(int64(cr.sshCert.ValidBefore), 0)
			fmt.Fprintf(e.Stderr, "the SSH certificate is valid until %s (%s from now), for connections opened before then; "+
				"run \"moat access ssh-cert %s\" again for later ones\n", until.Local().Format(time.RFC3339), time.Until(until).Round(time.Second), node)
			return nil
		})
	cmd.Help = "Writes an SSH key and certificate of your shell grant on NODE, and the node CA's\n" +
		"known_hosts line, for ssh(1), scp and sftp through \"moat access proxy\". The\n" +
		"certificate lives minutes (the server's access.session_cert_ttl), not the grant's\n" +
		"time: a connection opened while it is valid lasts until the grant ends, and a\n" +
		"later one needs this command again (which, like every session's certificates,\n" +
		"needs a live MFA session). A copy of the files opens nothing once it expires."
	return cmd
}

func writeGrantCreds(dir, node string, cr *grantCreds) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	blk, err := ssh.MarshalPrivateKey(crypto.PrivateKey(cr.sshKey), "moat grant")
	if err != nil {
		return err
	}
	files := map[string][]byte{
		grantKeyFile:   pem.EncodeToMemory(blk),
		grantCertFile:  ssh.MarshalAuthorizedKey(cr.sshCert),
		grantHostsFile: []byte("@cert-authority " + node + " " + string(ssh.MarshalAuthorizedKey(cr.hostCA))),
	}
	// Each file is a new one of mode 0600 renamed over the name: a file
	// already there readable by others, or a link to someone else's file,
	// neither keeps the key nor receives it.
	for name, b := range files {
		if err := seal.WriteFileAtomic(filepath.Join(dir, name), b, 0o600); err != nil {
			return err
		}
	}
	if err := os.Remove(filepath.Join(dir, grantTLSFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func accessProxyCommand() *Command {
	af := &adminFlags{}
	return &Command{
		Name: "proxy", Summary: "ssh ProxyCommand: carry ssh(1) to a node under your grant", Usage: "NODE",
		Help: "For ssh -o ProxyCommand='moat access proxy %h': joins standard input and output to\n" +
			"the node's in-process SSH server through the control plane, under your shell grant\n" +
			"on NODE. Each run takes a new, short-lived grant certificate, kept in memory, for\n" +
			"its one connection; that needs a live MFA session, and since standard input is\n" +
			"ssh's it never asks for a code: log in first (\"moat admin mfa login\", or any\n" +
			"command that asks, such as \"moat access ssh-cert NODE\"). A server with\n" +
			"access.session_mfa takes only an MFA session begun within access.session_cert_ttl:\n" +
			"log in right before connecting.",
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
			g, err := findGrant(ctx, s, api.ModeShell, node, "")
			if err != nil {
				return err
			}
			cr, err := fetchGrantCreds(ctx, s, g, false)
			if errors.Is(err, api.ErrMFAStale) {
				return fmt.Errorf("a session on node %q needs a grant certificate, which this server issues only under an MFA session begun "+
					"for that session (access.session_mfa), and yours began too long ago: run \"moat admin mfa login\" right before "+
					"connecting (or use \"moat ssh %s\", which asks for a code): %w", node, node, err)
			}
			if errors.Is(err, api.ErrMFARequired) {
				return fmt.Errorf("a session on node %q needs a grant certificate, which needs a live MFA session, and yours has ended: "+
					"run \"moat admin mfa login\" (or \"moat access ssh-cert %s\", which asks for a code) and connect again", node, node)
			}
			if err != nil {
				return err
			}
			tc, err := dialGrant(ctx, s, g, cr.tls, api.ALPNAccessSSH)
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
	cmd := adminCommand("forward", "forward a local port to a service under your grant", "--service SVC --local 127.0.0.1:PORT",
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
			certs := &sessionCerts{s: s, g: g}
			// The first connection's certificate, taken now: a missing
			// MFA session is asked for, or refused, before the port opens.
			if err := certs.prefetch(ctx); err != nil {
				return err
			}
			ln, err := net.Listen("tcp", *local)
			if err != nil {
				return err
			}
			defer ln.Close()
			ctx, cancel := context.WithDeadline(ctx, g.Expires)
			defer cancel()
			fmt.Fprintf(e.Stdout, "forwarding %s to %s:%d on node %s until %s\n", ln.Addr(), g.Service, g.Port, g.Node, g.Expires.Local().Format(time.RFC3339))
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
						fmt.Fprintf(e.Stderr, "the grant ended at %s; forwarding stopped\n", g.Expires.Local().Format(time.RFC3339))
						return nil
					}
					return err
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer c.Close()
					if err := forwardOne(ctx, s, g, certs, c); err != nil {
						fmt.Fprintf(e.Stderr, "moat: %v\n", err)
					}
				}()
			}
		})
	cmd.Help = "Listens on a loopback port until your forward grant ends, and carries each\n" +
		"connection to the service through the control plane and the node's agent. Each\n" +
		"new connection takes a new, short-lived grant certificate, kept in memory, which\n" +
		"needs a live MFA session: once yours has ended, the next connection asks for a\n" +
		"code on standard input (or takes the session of a \"moat admin mfa login\" run\n" +
		"beside it). A server with access.session_mfa asks likewise once your MFA session\n" +
		"is older than access.session_cert_ttl. Connections already open last until the\n" +
		"grant ends or is revoked."
	return cmd
}

// sessionCerts hands a forward's connections their grant certificates:
// a new one each, kept in memory, since one lives only minutes and a copy
// of it must open nothing later. Fetches are one at a time, so that when
// the MFA session has ended the administrator is asked for one code, not
// one per connection waiting.
type sessionCerts struct {
	s *api.AdminClient
	g api.Grant

	mu      sync.Mutex // guards next and fetched, and serializes fetches
	next    *tls.Certificate
	fetched time.Time
}

// prefetch takes the next connection's certificate ahead.
func (sc *sessionCerts) prefetch(ctx context.Context) error {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	cert, err := sc.fetch(ctx)
	sc.next, sc.fetched = cert, time.Now()
	return err
}

// take returns a certificate for one new session: the prefetched one
// while most of the life it had when it came is ahead, else a new one.
func (sc *sessionCerts) take(ctx context.Context) (*tls.Certificate, error) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if c := sc.next; c != nil {
		sc.next = nil
		if time.Since(sc.fetched) < c.Leaf.NotAfter.Sub(sc.fetched)/2 {
			return c, nil
		}
	}
	return sc.fetch(ctx)
}

func (sc *sessionCerts) fetch(ctx context.Context) (*tls.Certificate, error) {
	ctx = context.WithValue(ctx, promptWhyKey{}, fmt.Sprintf("each new connection to %s:%d takes a new grant certificate, "+
		"which needs a live MFA session, and you have none (it ended, or was ended by a logout)", sc.g.Service, sc.g.Port))
	cr, err := fetchGrantCreds(ctx, sc.s, sc.g, false)
	if errors.Is(err, api.ErrMFAStale) {
		return nil, fmt.Errorf("connection refused: no code given for it, and this server issues a grant certificate only under an MFA session begun for it "+
			"(run \"moat admin mfa login\" right before connecting; the forward goes on listening): %w", err)
	}
	if errors.Is(err, api.ErrMFARequired) || errors.Is(err, api.ErrNoCode) {
		return nil, fmt.Errorf("connection refused: no live MFA session to take a grant certificate with (run \"moat admin mfa login\"; the forward goes on listening): %w", err)
	}
	if err != nil {
		return nil, err
	}
	return cr.tls, nil
}

// forwardOne carries one local connection to the grant's service, under a
// certificate of its own.
func forwardOne(ctx context.Context, s *api.AdminClient, g api.Grant, certs *sessionCerts, c net.Conn) error {
	cert, err := certs.take(ctx)
	if err != nil {
		return err
	}
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
