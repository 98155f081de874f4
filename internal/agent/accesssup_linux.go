package agent

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A session's processes end with the session. A shell's children may
// leave its process group and session (nohup, a job of their own, setsid,
// a daemon's double fork), and would otherwise outlive the grant that
// started them. So every session's program runs under a supervisor, the
// agent's own binary started under this name as the agent's account: a
// child subreaper (PR_SET_CHILD_SUBREAPER), to which every descendant that
// loses its parent is given, wherever it went. When the program exits, or
// the agent ends the session (or dies: the control pipe closes), the
// supervisor kills whatever the session left, until no descendant is
// left, then exits with the program's status. The session's account
// cannot signal it, as it runs as the agent's account (unless the two
// are one: an agent whose shells run as itself holds them by nothing).
const sessionSuperviseArg0 = "moat-session-supervise"

// The supervisor's inherited descriptors: the control pipe it reads (a
// signal number to deliver to the program, 0 or the pipe's end to end the
// session) and the start report it writes ("ok", or why the program did
// not start) before closing it. The supervisor starts the program only
// when the control pipe says supGo: the agent first makes sure it follows
// the supervisor's descendants (accessexec.go). Once the program has
// exited, the supervisor kills what it left only when the control pipe
// says supCaughtUp: the agent has recorded the programs executed until
// then, which it reads from /proc and could not once they are killed.
const (
	supControlFD = 3
	supReportFD  = 4
	supGo        = 0xff
	supCaughtUp  = 0xfe
)

// supHangupGrace is how long the program has to end on a hangup before
// the supervisor kills everything the session holds.
const supHangupGrace = 500 * time.Millisecond

// supCaughtUpWait bounds the wait for supCaughtUp after the program
// exited: an agent that does not say so in that time does not keep the
// session's processes alive longer.
const supCaughtUpWait = trackTimeout

func init() {
	if len(os.Args) < 5 || os.Args[0] != sessionSuperviseArg0 {
		return
	}
	os.Exit(supervise(os.Args[1:]))
}

// supervision is the agent's end of a session's supervisor.
type supervision struct {
	control *os.File // written by the agent
	report  *os.File // read once the supervisor started
	child   []*os.File
}

// asUser runs cmd as the session's user in a new session, under a
// supervisor that ends every process of the session with it.
func asUser(cmd *exec.Cmd, lu *localUser) (*supervision, error) {
	if cmd.Err != nil {
		return nil, cmd.Err
	}
	cred := "-"
	if uint32(os.Getuid()) != lu.uid || uint32(os.Getgid()) != lu.gid {
		groups := make([]string, len(lu.groups))
		for i, g := range lu.groups {
			groups[i] = strconv.FormatUint(uint64(g), 10)
		}
		cred = fmt.Sprintf("%d:%d:%s", lu.uid, lu.gid, strings.Join(groups, ","))
	}
	cr, cw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	rr, rw, err := os.Pipe()
	if err != nil {
		cr.Close()
		cw.Close()
		return nil, err
	}
	// The program changes to its directory as the session's user, which
	// may enter directories the agent's account may not.
	cmd.Args = append([]string{sessionSuperviseArg0, cred, cmd.Dir, cmd.Path}, cmd.Args...)
	cmd.Path, cmd.Dir = "/proc/self/exe", ""
	cmd.ExtraFiles = []*os.File{cr, rw}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return &supervision{control: cw, report: rr, child: []*os.File{cr, rw}}, nil
}

// started closes the supervisor's ends, tells it to start the session's
// program and reads its start report: an error if the program did not
// start (the supervisor then exits; the caller waits for it).
func (s *supervision) started() error {
	for _, f := range s.child {
		f.Close()
	}
	s.child = nil
	_, _ = s.control.Write([]byte{supGo})
	b, err := io.ReadAll(io.LimitReader(s.report, 4096))
	s.report.Close()
	if err != nil {
		return err
	}
	if string(b) != "ok" {
		if len(b) == 0 {
			return errors.New("the session's supervisor ended before starting it")
		}
		return errors.New(string(b))
	}
	return nil
}

// abandon closes every end after a failed start.
func (s *supervision) abandon() {
	for _, f := range append(s.child, s.report, s.control) {
		f.Close()
	}
}

// signal asks the supervisor (pid) to deliver sig to the session's program.
func (s *supervision) signal(_ int, sig syscall.Signal) {
	_, _ = s.control.Write([]byte{byte(sig)})
}

// caughtUp tells the supervisor that the agent has recorded the programs
// the session executed until its program's exit.
func (s *supervision) caughtUp() { _, _ = s.control.Write([]byte{supCaughtUp}) }

// end asks the supervisor (pid) to end the session's processes and waits
// until it has (done closes); one that does not, in a while, is killed.
func (s *supervision) end(pid int, done <-chan struct{}) {
	_, _ = s.control.Write([]byte{0})
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

// release closes the agent's end once the supervisor exited.
func (s *supervision) release() { _ = s.control.Close() }

// supervise is the supervisor's main: args are the credential ("-" for
// the supervisor's own, else "uid:gid:group,group"), the program's
// directory, the program and its arguments.
func supervise(args []string) int {
	syscall.CloseOnExec(supControlFD)
	syscall.CloseOnExec(supReportFD)
	control := os.NewFile(supControlFD, "control")
	report := os.NewFile(supReportFD, "report")
	fail := func(err error) int {
		_, _ = report.WriteString(err.Error())
		report.Close()
		return 127
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fail(fmt.Errorf("become the session's subreaper: %v", err))
	}
	// What the terminal or a signal to the session's process group sends
	// must not end the supervisor before the session's processes.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGTSTP,
		syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGALRM, syscall.SIGPIPE)
	go func() {
		for range sigs {
		}
	}()
	attr := &syscall.SysProcAttr{}
	if args[0] != "-" {
		cred, err := parseCredential(args[0])
		if err != nil {
			return fail(err)
		}
		attr.Credential = cred
	}
	for b := make([]byte, 1); ; {
		if n, err := control.Read(b); err != nil || n == 0 || b[0] == 0 {
			return fail(errors.New("the session ended before its program started"))
		}
		if b[0] == supGo {
			break
		}
	}
	cmd := &exec.Cmd{Dir: args[1], Path: args[2], Args: args[3:], Env: os.Environ(), Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, SysProcAttr: attr}
	wrapSession(cmd)
	if err := cmd.Start(); err != nil {
		return fail(err)
	}
	_, _ = report.WriteString("ok")
	report.Close()

	main := cmd.Process.Pid
	var mu sync.Mutex // guards mainDone, status
	mainDone, status := false, 255
	exited := make(chan struct{})    // closed when the program is reaped
	reaped := make(chan struct{}, 1) // a descendant was reaped
	gone := make(chan struct{})      // closed when no descendant is left
	go func() {
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, 0, nil)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if err != nil { // ECHILD: nothing of the session is left
				close(gone)
				return
			}
			if pid == main {
				mu.Lock()
				mainDone = true
				if ws.Exited() {
					status = ws.ExitStatus()
				}
				mu.Unlock()
				close(exited)
			}
			select {
			case reaped <- struct{}{}:
			default:
			}
		}
	}()
	toMain := func(sig syscall.Signal) {
		mu.Lock()
		defer mu.Unlock()
		if !mainDone {
			_ = syscall.Kill(main, sig)
		}
	}
	ended := make(chan struct{})
	caughtUp := make(chan struct{})
	go func() {
		defer close(ended)
		said := false
		b := make([]byte, 1)
		for {
			if n, err := control.Read(b); err != nil || n == 0 || b[0] == 0 {
				return
			}
			if b[0] == supCaughtUp {
				if !said {
					said = true
					close(caughtUp)
				}
				continue
			}
			toMain(syscall.Signal(b[0]))
		}
	}()
	select {
	case <-exited:
		// What the program left runs on until the agent has read the
		// programs executed so far (or ends the session, or is gone).
		t := time.NewTimer(supCaughtUpWait)
		select {
		case <-caughtUp:
		case <-ended:
		case <-t.C:
		}
		t.Stop()
	case <-ended:
		toMain(syscall.SIGHUP)
		select {
		case <-exited:
		case <-time.After(supHangupGrace):
		}
	}
	// Kill whatever the session left, as often as it is handed here,
	// until nothing is.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, pid := range childrenOf(os.Getpid()) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		select {
		case <-gone:
			mu.Lock()
			defer mu.Unlock()
			return status
		case <-reaped:
		case <-tick.C:
		}
	}
}

// parseCredential reads "uid:gid:group,group".
func parseCredential(s string) (*syscall.Credential, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return nil, fmt.Errorf("credential %q: want uid:gid:groups", s)
	}
	var ids [2]uint32
	for i := range ids {
		n, err := strconv.ParseUint(parts[i], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("credential %q: %v", s, err)
		}
		ids[i] = uint32(n)
	}
	c := &syscall.Credential{Uid: ids[0], Gid: ids[1], Groups: []uint32{}}
	if parts[2] != "" {
		for _, g := range strings.Split(parts[2], ",") {
			n, err := strconv.ParseUint(g, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("credential %q: %v", s, err)
			}
			c.Groups = append(c.Groups, uint32(n))
		}
	}
	return c, nil
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold anything, so read
		// after its closing parenthesis.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) >= 2 {
			if pp, err := strconv.Atoi(f[1]); err == nil && pp == pid {
				out = append(out, p)
			}
		}
	}
	return out
}
