package agent

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/ssh"

	"moat/internal/api"
	"moat/internal/seal"
)

// sshHost is the agent's SSH identity: its host key certified by the
// control plane's host CA for the node's name, and the user CA whose
// certificates it accepts.
type sshHost struct {
	signer ssh.Signer
	userCA ssh.PublicKey
}

const hostKeyFile = "access/host_key"

// hostKey loads the node's SSH host key (sealed when the agent seals), or
// makes one.
func (x *access) hostKey() (ed25519.PrivateKey, error) {
	path := filepath.Join(x.a.cfg.DataDir, hostKeyFile)
	var seed []byte
	var err error
	if x.a.sealer != nil {
		seed, err = seal.ReadSealedFile(path, x.a.sealer, "access/host_key")
	} else {
		seed, err = os.ReadFile(path)
	}
	if err == nil && len(seed) == ed25519.SeedSize {
		return ed25519.NewKeyFromSeed(seed), nil
	}
	if _, serr := os.Stat(path); serr == nil {
		return nil, fmt.Errorf("agent: SSH host key %s: %v", path, err)
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if x.a.sealer != nil {
		err = seal.WriteSealedFile(path, x.a.sealer, "access/host_key", key.Seed())
	} else {
		err = seal.WriteFileAtomic(path, key.Seed(), 0o600)
	}
	if err != nil {
		return nil, err
	}
	return key, nil
}

// refreshHost has the control plane certify the host key.
func (x *access) refreshHost(ctx context.Context) error {
	key, err := x.hostKey()
	if err != nil {
		return err
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		return err
	}
	var resp api.SSHHostCert
	pub := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	if err := x.a.api().Call(ctx, http.MethodPost, api.PathNodeSSHHost, api.SSHHostCertRequest{Key: pub}, &resp); err != nil {
		return err
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(resp.Cert))
	if err != nil {
		return fmt.Errorf("agent: host certificate: %w", err)
	}
	cert, ok := k.(*ssh.Certificate)
	if !ok || cert.CertType != ssh.HostCert || !bytes.Equal(cert.Key.Marshal(), signer.PublicKey().Marshal()) {
		return errors.New("agent: the control plane answered with no host certificate for this key")
	}
	cs, err := ssh.NewCertSigner(cert, signer)
	if err != nil {
		return err
	}
	ca, _, _, _, err := ssh.ParseAuthorizedKey([]byte(resp.UserCA))
	if err != nil {
		return fmt.Errorf("agent: user CA: %w", err)
	}
	x.hostMu.Lock()
	x.host = &sshHost{signer: cs, userCA: ca}
	x.hostMu.Unlock()
	return nil
}

func (x *access) sshHost() *sshHost {
	x.hostMu.Lock()
	defer x.hostMu.Unlock()
	return x.host
}

// localUser is the account sessions run as.
type localUser struct {
	name     string
	uid, gid uint32
	groups   []uint32
	home     string
	shell    string
}

// resolveUser checks the configured account; an empty one, root without
// AllowRoot, or one the agent cannot start sessions as (shellReady)
// refuses shells.
func (x *access) resolveUser() (*localUser, error) {
	if x.cfg.User == "" {
		return nil, fmt.Errorf("shell access is not configured on node %q (the agent's access user is unset)", x.a.cfg.Node)
	}
	u, err := user.Lookup(x.cfg.User)
	if err != nil {
		return nil, fmt.Errorf("local user %q: %v", x.cfg.User, err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	if uid == 0 && !x.cfg.AllowRoot {
		return nil, fmt.Errorf("node %q is configured to give root shells, which is refused unless allow_root is set", x.a.cfg.Node)
	}
	lu := &localUser{name: u.Username, uid: uint32(uid), gid: uint32(gid), home: u.HomeDir, shell: x.cfg.Shell}
	if ids, err := u.GroupIds(); err == nil {
		for _, g := range ids {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil {
				lu.groups = append(lu.groups, uint32(n))
			}
		}
	}
	if lu.shell == "" {
		lu.shell = loginShell(u.Username)
	}
	if st, err := os.Stat(lu.home); err != nil || !st.IsDir() {
		lu.home = "/"
	}
	if err := x.shellReady(lu); err != nil {
		return nil, err
	}
	return lu, nil
}

// loginShell reads name's shell from /etc/passwd; a missing or nologin
// shell means /bin/sh.
func loginShell(name string) string {
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return "/bin/sh"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) == 7 && fields[0] == name {
			sh := fields[6]
			if sh == "" || strings.HasSuffix(sh, "nologin") || strings.HasSuffix(sh, "/false") {
				return "/bin/sh"
			}
			return sh
		}
	}
	return "/bin/sh"
}

// serveSSH runs the in-process SSH server over one relayed connection. The
// client authenticates with an SSH user certificate from the control
// plane's user CA whose principal is the grant the TLS certificate named.
func (x *access) serveSSH(ctx context.Context, conn net.Conn, ls *liveSession) {
	host := x.sshHost()
	if host == nil {
		if err := x.refreshHost(ctx); err != nil {
			x.a.log.Warn("access: no SSH host certificate", "err", err)
			return
		}
		host = x.sshHost()
	}
	cfg := &ssh.ServerConfig{
		ServerVersion: "SSH-2.0-moat",
		MaxAuthTries:  3,
		PublicKeyCallback: func(md ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			cert, ok := key.(*ssh.Certificate)
			if !ok || cert.CertType != ssh.UserCert {
				return nil, errors.New("a certificate signed for the grant is required")
			}
			if !bytes.Equal(cert.SignatureKey.Marshal(), host.userCA.Marshal()) {
				return nil, errors.New("certificate not signed by moat's user CA")
			}
			checker := ssh.CertChecker{Clock: x.a.cfg.Now}
			if err := checker.CheckCert(ls.grant, cert); err != nil {
				return nil, err
			}
			return &ssh.Permissions{Extensions: cert.Permissions.Extensions}, nil
		},
	}
	cfg.AddHostKey(host.signer)
	sconn, chans, reqs, err := ssh.NewServerConn(conn, cfg)
	if err != nil {
		x.a.log.Info("access: SSH refused", "session", ls.info.ID, "err", err)
		return
	}
	defer sconn.Close()
	go ssh.DiscardRequests(reqs)
	info := ls.info
	info.Detail = "ssh"
	if err := x.reportStart(ctx, info); err != nil {
		x.a.log.Error("access: session start not on record; session refused", "session", info.ID, "err", err)
		return
	}
	go func() {
		<-ctx.Done()
		_ = sconn.Close()
	}()
	s := &sshSession{x: x, ls: ls, info: info}
	var wg sync.WaitGroup
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.Prohibited, "only sessions: a shell grant carries no port forwarding")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.channel(ctx, ch, creqs)
		}()
	}
	wg.Wait()
	s.end(ctx)
}

// sshSession is one SSH connection: its channels share one recording.
type sshSession struct {
	x    *access
	ls   *liveSession
	info api.AccessSession

	mu      sync.Mutex // guards rec and kinds
	rec     *recorder
	kinds   []string
	in, out atomic.Int64
}

// recorder returns the connection's recorder, made at first use.
func (s *sshSession) recorder(cols, rows int, term, title string) (*recorder, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rec == nil {
		r, err := s.x.newRecorder(s.info.ID, cols, rows, term, title)
		if err != nil {
			return nil, err
		}
		s.rec = r
	}
	return s.rec, nil
}

func (s *sshSession) kind(k string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, have := range s.kinds {
		if have == k {
			return
		}
	}
	s.kinds = append(s.kinds, k)
}

// end closes the recording and hands the session's end to the shipper.
func (s *sshSession) end(ctx context.Context) {
	info := s.info
	info.Ended = s.x.a.cfg.Now().UTC()
	info.EndReason = "closed"
	if cause := context.Cause(ctx); errors.Is(cause, errGrantEnded) {
		info.EndReason = "grant ended"
	} else if errors.Is(cause, errRecordingFull) {
		info.EndReason = "recording limit"
	}
	s.mu.Lock()
	rec := s.rec
	if len(s.kinds) > 0 {
		info.Detail = strings.Join(s.kinds, ",")
	}
	s.mu.Unlock()
	if rec != nil {
		sum, _, err := rec.Close()
		if err != nil {
			s.x.a.log.Error("access: recording", "session", info.ID, "err", err)
		}
		info.Recording = sum
	}
	info.BytesIn, info.BytesOut = s.in.Load(), s.out.Load()
	s.x.finish(info)
}

// ptyReq is the payload of an SSH "pty-req".
type ptyReq struct {
	Term          string
	Cols, Rows    uint32
	Width, Height uint32
	Modes         string
}

type winChange struct {
	Cols, Rows    uint32
	Width, Height uint32
}

// channel serves one session channel: a PTY request, then one shell, exec
// or sftp subsystem; resizes and signals while it runs.
func (s *sshSession) channel(ctx context.Context, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var pr *ptyReq
	var proc *process
	for req := range reqs {
		switch req.Type {
		case "pty-req":
			var p ptyReq
			if err := ssh.Unmarshal(req.Payload, &p); err != nil || proc != nil || s.ls.info.Mode != api.ModeShell {
				_ = req.Reply(false, nil)
				continue
			}
			pr = &p
			_ = req.Reply(true, nil)
		case "shell", "exec", "subsystem":
			if proc != nil {
				_ = req.Reply(false, nil)
				continue
			}
			p, err := s.start(ctx, ch, req, pr)
			if err != nil {
				// A request not offered is refused. One this node cannot
				// serve now is accepted, then fails with the reason on
				// stderr: a client drops what follows a refused request,
				// and the administrator must learn why (a missing
				// capability, say), not just that the command failed.
				_ = req.Reply(!errors.As(err, new(notOffered)), nil)
				s.x.a.log.Warn("access: session refused", "session", s.info.ID, "err", err)
				fmt.Fprintf(ch.Stderr(), "moat: %v\r\n", err)
				_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{1}))
				return
			}
			_ = req.Reply(true, nil)
			proc = p
			go func() {
				status := p.wait()
				_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(status)}))
				_ = ch.CloseWrite()
				_ = ch.Close()
			}()
		case "window-change":
			var w winChange
			if err := ssh.Unmarshal(req.Payload, &w); err == nil && proc != nil {
				proc.resize(int(w.Cols), int(w.Rows))
			}
			_ = req.Reply(true, nil)
		case "signal":
			var sig struct{ Name string }
			if err := ssh.Unmarshal(req.Payload, &sig); err == nil && proc != nil {
				proc.signal(sig.Name)
			}
			_ = req.Reply(true, nil)
		default:
			_ = req.Reply(false, nil)
		}
	}
	if proc != nil {
		proc.kill()
		proc.wait()
	}
}

// notOffered is a session request the agent never serves (a malformed
// one, a subsystem other than sftp), refused at the SSH level.
type notOffered struct{ error }

// process is one running shell, command or subsystem.
type process struct {
	cmd  *exec.Cmd
	sup  *supervision
	ptmx *os.File
	rec  *recorder
	done chan struct{}
	code int
	io   sync.WaitGroup
}

func (s *sshSession) start(ctx context.Context, ch ssh.Channel, req *ssh.Request, pr *ptyReq) (*process, error) {
	lu, err := s.x.resolveUser()
	if err != nil {
		return nil, err
	}
	var argv []string
	kind, title := req.Type, ""
	switch req.Type {
	case "shell":
		argv = []string{lu.shell, "-l"}
		title = "shell"
	case "exec":
		var c struct{ Command string }
		if err := ssh.Unmarshal(req.Payload, &c); err != nil {
			return nil, notOffered{errors.New("malformed exec request")}
		}
		argv = []string{lu.shell, "-c", c.Command}
		title = c.Command
	case "subsystem":
		var c struct{ Name string }
		if err := ssh.Unmarshal(req.Payload, &c); err != nil || c.Name != "sftp" {
			return nil, notOffered{fmt.Errorf("subsystem %q is not offered (sftp is)", c.Name)}
		}
		path := s.x.sftpServer()
		if path == "" {
			return nil, errors.New("no sftp-server on this node (set the agent's access sftp_server)")
		}
		argv, kind, title = []string{path}, "sftp", "sftp"
	}
	s.kind(kind)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = lu.home
	term := "xterm"
	if pr != nil && pr.Term != "" {
		term = pr.Term
	}
	cmd.Env = []string{"HOME=" + lu.home, "USER=" + lu.name, "LOGNAME=" + lu.name, "SHELL=" + lu.shell,
		"PATH=/usr/local/bin:/usr/bin:/bin", "TERM=" + term,
		"MOAT_GRANT=" + s.ls.grant, "MOAT_ADMIN=" + s.info.Admin, "MOAT_SESSION=" + s.info.ID}
	sup, err := asUser(cmd, lu)
	if err != nil {
		return nil, err
	}
	cols, rows := 80, 24
	if pr != nil {
		cols, rows = int(pr.Cols), int(pr.Rows)
	}
	rec, err := s.recorder(cols, rows, term, title)
	if err != nil {
		sup.abandon()
		return nil, err
	}
	// The programs the session runs are followed from before its
	// supervisor starts (es.track) to the end of its program (p.done).
	es := s.x.execs.begin(rec)
	p := &process{cmd: cmd, sup: sup, rec: rec, done: make(chan struct{})}
	fail := func() { es.end() }
	if kind == "sftp" {
		_ = rec.Marker("sftp subsystem started: file transfers are counted, not recorded")
	} else if req.Type == "exec" {
		_ = rec.Marker("exec: " + title)
	}
	record := kind != "sftp"
	out := func(b []byte) {
		s.out.Add(int64(len(b)))
		if record {
			if err := rec.Output(b); errors.Is(err, errRecordingFull) {
				s.ls.cancel(errRecordingFull)
			}
		}
	}
	// A shell without a terminal reads its commands from the input:
	// they are recorded, as an exec's command is, or commands whose
	// output is thrown away would leave nothing in the recording.
	script := req.Type == "shell" && pr == nil
	in := func(b []byte) {
		s.in.Add(int64(len(b)))
		switch {
		case script:
			if err := rec.Script(b); errors.Is(err, errRecordingFull) {
				s.ls.cancel(errRecordingFull)
			}
		case record:
			_ = rec.Input(b)
		}
	}
	if pr != nil {
		ptmx, err := startPTY(cmd, lu, cols, rows)
		if err != nil {
			fail()
			sup.abandon()
			return nil, fmt.Errorf("start %s: %v", argv[0], err)
		}
		es.track(cmd.Process.Pid)
		if err := sup.started(); err != nil {
			fail()
			ptmx.Close()
			_ = cmd.Wait()
			sup.release()
			return nil, fmt.Errorf("start %s: %v", argv[0], err)
		}
		p.ptmx = ptmx
		p.io.Add(1)
		go func() { defer p.io.Done(); copyTap(ch, ptmx, out) }()
		go copyTap(ptmx, ch, in)
	} else {
		stdin, err := cmd.StdinPipe()
		if err != nil {
			fail()
			sup.abandon()
			return nil, err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			fail()
			sup.abandon()
			return nil, err
		}
		stderr, err := cmd.StderrPipe()
		if err != nil {
			fail()
			sup.abandon()
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			fail()
			sup.abandon()
			return nil, fmt.Errorf("start %s: %v", argv[0], err)
		}
		es.track(cmd.Process.Pid)
		if err := sup.started(); err != nil {
			fail()
			_ = cmd.Wait()
			sup.release()
			return nil, fmt.Errorf("start %s: %v", argv[0], err)
		}
		p.io.Add(2)
		go func() { defer p.io.Done(); copyTap(ch, stdout, out) }()
		go func() { defer p.io.Done(); copyTap(ch.Stderr(), stderr, out) }()
		go func() { copyTap(stdin, ch, in); _ = stdin.Close() }()
	}
	go func() {
		select {
		case <-es.caughtUp():
			p.sup.caughtUp()
		case <-p.done:
		}
	}()
	go func() {
		if p.ptmx == nil {
			// Wait closes the pipes: read them to their end first (the
			// child and whatever inherited them closed them), or a
			// quick command's last output is lost.
			p.io.Wait()
		}
		err := cmd.Wait()
		p.code = 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			p.code = ee.ExitCode()
			if p.code < 0 {
				p.code = 255
			}
		} else if err != nil {
			p.code = 255
		}
		if p.ptmx != nil {
			// The PTY gives the last output, then EIO once the child and
			// every process holding the terminal are gone.
			p.io.Wait()
			_ = p.ptmx.Close()
		}
		p.sup.release()
		es.end()
		close(p.done)
	}()
	return p, nil
}

// copyTap copies src to dst, showing every chunk to tap first.
func copyTap(dst io.Writer, src io.Reader, tap func([]byte)) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			tap(buf[:n])
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *process) wait() int {
	<-p.done
	return p.code
}

// sftpServer finds the sftp-server program.
func (x *access) sftpServer() string {
	if x.cfg.SFTPServer != "" {
		return x.cfg.SFTPServer
	}
	for _, p := range []string{"/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server", "/usr/libexec/sftp-server", "/usr/lib/ssh/sftp-server"} {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	return ""
}
