//go:build unix

package cli

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/crypto/ssh"

	"moat/internal/api"
)

// Break-glass session certificates in scripts, used from the test process
// as someone holding copies of an administrator's files would:
//
//	grantcert GRANT FILE
//	    take a session's grant certificate (access.cert, over a new key)
//	    for GRANT with the credentials of $MOAT_ADMIN_DIR, never asking
//	    for a code, and write it and its key to FILE (PEM), as a client
//	    holds them (! grantcert: refused, the reason on stderr)
//	grantdial GRANT NODE FILE [SSHDIR]
//	    open a relay to NODE under shell grant GRANT with the credentials
//	    of $MOAT_ADMIN_DIR and run mutual TLS with NODE's agent presenting
//	    FILE's certificate; print the SSH server's banner. With SSHDIR
//	    (what "moat access ssh-cert" wrote), log in with its key and
//	    certificate and print the output of "echo grantdial-ok"
//	    (! grantdial: refused, the error on stderr)
//	certexpired FILE
//	    wait until the certificate in FILE (X.509 PEM, or an SSH
//	    certificate) has expired; fails at once if it lives more than
//	    certWaitLimit from now, which no short-lived one does
//	hold NAME ADDR
//	    open a connection to ADDR, GET / over it (HTTP/1.1, kept alive) and
//	    print the body; the connection stays open as NAME
//	heldget NAME   GET / again over the connection NAME and print the body

// certWaitLimit bounds certexpired's wait.
const certWaitLimit = 2 * time.Minute

type heldKey struct{}

// heldConns are the connections hold keeps open, by name.
type heldConns struct {
	mu sync.Mutex // guards m
	m  map[string]*heldConn
}

type heldConn struct {
	c  net.Conn
	br *bufio.Reader
}

// scriptAdmin opens $MOAT_ADMIN_DIR's credentials, never asking for a code.
func scriptAdmin(ts *testscript.TestScript) *api.AdminClient {
	s, err := api.NewAdminSession(ts.Getenv("MOAT_SERVER"), ts.Getenv("MOAT_ADMIN_DIR"), api.SessionConfig{})
	ts.Check(err)
	ts.Defer(func() { s.Close() })
	return s
}

// scriptResult fails the script when err is not what neg expects, and
// prints a refusal on stderr.
func scriptResult(ts *testscript.TestScript, neg bool, what string, err error) {
	switch {
	case err != nil && !neg:
		ts.Fatalf("%s: %v", what, err)
	case err == nil && neg:
		ts.Fatalf("%s succeeded, want a refusal", what)
	case err != nil:
		fmt.Fprintf(ts.Stderr(), "%s: %v\n", what, err)
	}
}

func cmdGrantCert(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: grantcert GRANT FILE")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cr, err := fetchGrantCreds(ctx, scriptAdmin(ts), api.Grant{ID: args[0]}, false)
	scriptResult(ts, neg, "grantcert", err)
	if err != nil {
		return
	}
	b, err := api.EncodeCertKey(cr.tls)
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), b, 0o600))
	fmt.Fprintf(ts.Stdout(), "serial %x valid until %s\n", cr.tls.Leaf.SerialNumber, cr.tls.Leaf.NotAfter.UTC().Format(time.RFC3339))
}

func cmdGrantDial(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 && len(args) != 4 {
		ts.Fatalf("usage: grantdial GRANT NODE FILE [SSHDIR]")
	}
	b, err := os.ReadFile(ts.MkAbs(args[2]))
	ts.Check(err)
	cert, err := api.ParseCertKey(b)
	ts.Check(err)
	s := scriptAdmin(ts)
	g := api.Grant{ID: args[0], Node: args[1], Mode: api.ModeShell}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := func() (string, error) {
		tc, err := dialGrant(ctx, s, g, cert, api.ALPNAccessSSH)
		if err != nil {
			return "", err
		}
		defer tc.Close()
		_ = tc.SetDeadline(time.Now().Add(30 * time.Second))
		if len(args) == 3 {
			// TLS 1.3: the agent's verdict on the client certificate
			// arrives with the first read.
			banner, err := bufio.NewReader(tc).ReadString('\n')
			return strings.TrimSpace(banner), err
		}
		cr, err := loadSSHCreds(ts.MkAbs(args[3]))
		if err != nil {
			return "", err
		}
		cl, err := sshClient(tc, g, cr)
		if err != nil {
			return "", err
		}
		defer cl.Close()
		sess, err := cl.NewSession()
		if err != nil {
			return "", err
		}
		defer sess.Close()
		said, err := sess.Output("echo grantdial-ok")
		return strings.TrimSpace(string(said)), err
	}()
	scriptResult(ts, neg, "grantdial", err)
	if err == nil {
		fmt.Fprintln(ts.Stdout(), out)
	}
}

// loadSSHCreds reads the SSH key, certificate and host CA ssh-cert wrote.
func loadSSHCreds(dir string) (*grantCreds, error) {
	kb, err := os.ReadFile(filepath.Join(dir, grantKeyFile))
	if err != nil {
		return nil, err
	}
	key, err := ssh.ParseRawPrivateKey(kb)
	if err != nil {
		return nil, err
	}
	cr := &grantCreds{}
	switch k := key.(type) {
	case *ed25519.PrivateKey:
		cr.sshKey = *k
	case ed25519.PrivateKey:
		cr.sshKey = k
	default:
		return nil, fmt.Errorf("%s: not an ed25519 key", grantKeyFile)
	}
	cb, err := os.ReadFile(filepath.Join(dir, grantCertFile))
	if err != nil {
		return nil, err
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(cb)
	if err != nil {
		return nil, err
	}
	var ok bool
	if cr.sshCert, ok = pub.(*ssh.Certificate); !ok {
		return nil, errors.New("no SSH certificate")
	}
	hb, err := os.ReadFile(filepath.Join(dir, grantHostsFile))
	if err != nil {
		return nil, err
	}
	_, _, hostCA, _, _, err := ssh.ParseKnownHosts(hb)
	if err != nil {
		return nil, err
	}
	cr.hostCA = hostCA
	return cr, nil
}

func cmdCertExpired(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: certexpired FILE")
	}
	b, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	var notAfter time.Time
	if blk, _ := pem.Decode(b); blk != nil && blk.Type == "CERTIFICATE" {
		c, err := x509.ParseCertificate(blk.Bytes)
		ts.Check(err)
		notAfter = c.NotAfter
	} else {
		pub, _, _, _, err := ssh.ParseAuthorizedKey(b)
		ts.Check(err)
		c, ok := pub.(*ssh.Certificate)
		if !ok {
			ts.Fatalf("certexpired: %s holds no certificate", args[0])
		}
		notAfter = time.Unix(int64(c.ValidBefore), 0)
	}
	if left := time.Until(notAfter); left > certWaitLimit {
		ts.Fatalf("certexpired: %s is valid until %s, %s from now: more than the %s a short-lived certificate may be waited for",
			args[0], notAfter.UTC().Format(time.RFC3339), left.Round(time.Second), certWaitLimit)
	}
	// X.509 and SSH validity both end after their last second.
	for !time.Now().After(notAfter) {
		time.Sleep(time.Until(notAfter) + 10*time.Millisecond)
	}
	fmt.Fprintf(ts.Stdout(), "expired at %s\n", notAfter.UTC().Format(time.RFC3339))
}

func scriptHeld(ts *testscript.TestScript) *heldConns {
	return ts.Value(heldKey{}).(*heldConns)
}

// heldGet sends GET / over h and prints the body.
func heldGet(ts *testscript.TestScript, h *heldConn) {
	_ = h.c.SetDeadline(time.Now().Add(30 * time.Second))
	_, err := fmt.Fprintf(h.c, "GET / HTTP/1.1\r\nHost: held\r\n\r\n")
	ts.Check(err)
	resp, err := http.ReadResponse(h.br, &http.Request{Method: http.MethodGet})
	ts.Check(err)
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	ts.Check(err)
	resp.Body.Close()
	fmt.Fprintf(ts.Stdout(), "%s", body)
}

func cmdHold(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 || neg {
		ts.Fatalf("usage: hold NAME ADDR")
	}
	c, err := net.DialTimeout("tcp", args[1], 30*time.Second)
	ts.Check(err)
	h := &heldConn{c: c, br: bufio.NewReader(c)}
	hs := scriptHeld(ts)
	hs.mu.Lock()
	hs.m[args[0]] = h
	hs.mu.Unlock()
	ts.Defer(func() { c.Close() })
	heldGet(ts, h)
}

func cmdHeldGet(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: heldget NAME")
	}
	hs := scriptHeld(ts)
	hs.mu.Lock()
	h, ok := hs.m[args[0]]
	hs.mu.Unlock()
	if !ok {
		ts.Fatalf("heldget: no connection %q", args[0])
	}
	heldGet(ts, h)
}
