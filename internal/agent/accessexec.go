package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"moat/internal/api"
)

// Programs a session runs.
//
// What the terminal shows is not what a session did: a shell with echo
// off (stty -echo), commands piped into one, a script fetched and run,
// leave no trace in the output, and typed input is not recorded by
// default. So, on Linux, the agent also records every program that any
// process of the session executes, as the kernel reports it: the proc
// connector's fork, exec and exit events (a NETLINK_CONNECTOR socket,
// which takes CAP_NET_ADMIN, the capability the agent already holds for
// the host firewall). The session's processes are the supervisor's
// descendants, followed from its fork events, so a process that leaves
// the session's process group or session (setsid, a double fork) is still
// one of them. At each exec the agent reads the program's arguments from
// /proc/PID/cmdline (bounded, and quoted so that they print as themselves)
// and writes a marker into the session's recording, which the audit log's
// SHA-256 covers.
//
// The recording says, for every program the session starts (a shell, a
// command), whether its programs are recorded, and says so again if that
// stops (the kernel's events overran the socket's buffer: ENOBUFS). Where
// the events cannot be had (not Linux, no CAP_NET_ADMIN, a container
// outside the initial namespaces) the session still runs, as it would
// have without this, and its recording says that its programs are NOT
// recorded; the agent logs it once. A reader of a recording takes its
// programs as recorded only when it says so and never says otherwise.
//
// Limits, documented in SECURITY.md: the arguments are read after the
// exec, so a program that executes another at once, or exits at once, may
// be recorded with its successor's arguments or with none (the marker then
// says it ended before its arguments were read); the executable's path is read from
// /proc/PID/exe, which takes the right to trace the process (root, or the
// session's account being the agent's), else the kernel's name for it.

// Bounds of one program's record, before quoting.
const (
	maxProgArgs     = 64
	maxProgArgBytes = 1024
	maxProgArgv     = 4096
	maxProgExe      = 4096
)

// trackTimeout bounds the wait for the kernel's report of a session's
// supervisor, after which the session's programs are not recorded.
const trackTimeout = 5 * time.Second

// procSource is one subscription to the kernel's process events.
type procSource interface {
	// next returns the events of one read; an error wrapping errProcLost
	// when events were lost; any other error ends the source.
	next() ([]procEvent, error)
	Close() error
}

// errProcLost: events were lost (the kernel dropped some: ENOBUFS, or one
// could not be read).
var errProcLost = errors.New("process events were lost")

// execWatch holds the agent's subscription while sessions run, and which
// processes are whose.
type execWatch struct {
	log  *slog.Logger
	open func() (procSource, error)
	self uint32 // the agent's pid: the parent of every supervisor
	read func(pid uint32) progInfo

	mu     sync.Mutex // guards the fields below
	src    procSource
	users  int
	procs  map[uint32]*tracked   // by tgid
	kids   map[uint32]bool       // the agent's children seen forking
	kidsCh chan struct{}         // closed and replaced when kids grows or src fails
	active map[*execSession]bool // sessions on src
	logged map[string]bool       // reasons logged
	failed error                 // why src stopped, until it is closed
}

type tracked struct {
	s    *execSession
	ppid uint32
}

func newExecWatch(log *slog.Logger) *execWatch {
	return &execWatch{log: log, open: openProcEvents, self: uint32(os.Getpid()), read: readProg,
		procs: map[uint32]*tracked{}, kids: map[uint32]bool{}, kidsCh: make(chan struct{}),
		active: map[*execSession]bool{}, logged: map[string]bool{}}
}

// execSession is one session program's share of the watch.
type execSession struct {
	w    *execWatch
	rec  *recorder
	root uint32
	gone chan struct{} // closed once the loop has seen the root's exit
	// read is closed once the loop has read the events up to the exit of
	// the session's program, or the session's programs are not recorded:
	// there is nothing more to wait for before the supervisor kills what
	// the program left.
	read chan struct{}
	// guarded by w.mu:
	off        bool   // its programs are not (all) recorded
	closed     bool   // gone is closed
	readClosed bool   // read is closed
	prog       uint32 // the session's program: the root's child that executed one
}

// closeGoneLocked closes s.gone once; w.mu is held.
func (s *execSession) closeGoneLocked() {
	if !s.closed {
		s.closed = true
		close(s.gone)
	}
	s.closeReadLocked()
}

// closeReadLocked closes s.read once; w.mu is held.
func (s *execSession) closeReadLocked() {
	if !s.readClosed {
		s.readClosed = true
		close(s.read)
	}
}

// caughtUp is closed once the programs the session's processes executed
// before its program exited are recorded (or its programs are not
// recorded). A process the session leaves behind is killed at the
// program's exit: killed before the agent read its arguments, a program
// that ran for long would be recorded without them.
func (s *execSession) caughtUp() <-chan struct{} { return s.read }

// begin subscribes (or joins the subscription) before a session's
// supervisor starts. Where that fails, the recording says the session's
// programs are not recorded.
func (w *execWatch) begin(rec *recorder) *execSession {
	s := &execSession{w: w, rec: rec, gone: make(chan struct{}), read: make(chan struct{})}
	w.mu.Lock()
	if w.src == nil {
		src, err := w.open()
		if err != nil {
			w.mu.Unlock()
			w.notRecorded(s, err.Error())
			return s
		}
		w.src, w.failed = src, nil
		go w.loop(src)
	}
	if w.failed != nil {
		err := w.failed
		w.mu.Unlock()
		w.notRecorded(s, err.Error())
		return s
	}
	w.users++
	w.active[s] = true
	w.mu.Unlock()
	return s
}

// check subscribes and lets go at once, to log at the agent's start
// (once, as a session would) that the programs sessions run will not be
// recorded, and why.
func (w *execWatch) check() {
	src, err := w.open()
	if err != nil {
		w.mu.Lock()
		first := !w.logged[err.Error()]
		w.logged[err.Error()] = true
		w.mu.Unlock()
		if first {
			w.log.Warn("access: the programs sessions run are not recorded", "reason", err.Error())
		}
		return
	}
	// A source is closed by its reader: read once after Close.
	_ = src.Close()
	_, _ = src.next()
}

// notRecorded marks s off, says so in its recording, and logs the reason
// once.
func (w *execWatch) notRecorded(s *execSession, reason string) {
	w.mu.Lock()
	s.off = true
	s.closeReadLocked()
	first := !w.logged[reason]
	w.logged[reason] = true
	w.mu.Unlock()
	_ = s.rec.Marker(api.MarkProgramsNotRecorded + reason)
	if first {
		w.log.Warn("access: the programs sessions run are not recorded", "reason", reason)
	}
}

// track follows the session's supervisor, pid, and its descendants. It
// returns once the kernel has reported the supervisor's fork, before the
// supervisor starts anything, so that no descendant's fork goes unseen.
func (s *execSession) track(pid int) {
	w := s.w
	deadline := time.NewTimer(trackTimeout)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		if s.off {
			w.mu.Unlock()
			return
		}
		if w.failed != nil {
			reason := w.failed.Error()
			w.mu.Unlock()
			w.notRecorded(s, reason)
			return
		}
		if w.kids[uint32(pid)] {
			delete(w.kids, uint32(pid))
			s.root = uint32(pid)
			w.procs[s.root] = &tracked{s: s}
			w.mu.Unlock()
			_ = s.rec.Marker(api.MarkProgramsRecorded + "every program the session's processes execute, from the kernel's process events")
			return
		}
		ch := w.kidsCh
		w.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			w.notRecorded(s, "the kernel did not report the session's start")
			return
		}
	}
}

// end is called once the supervisor has exited, which it does after every
// process of the session: it waits until the events up to the
// supervisor's exit are read, so that the last programs are recorded,
// then stops following the session's processes and lets the
// subscription go with the last session.
func (s *execSession) end() {
	w := s.w
	w.mu.Lock()
	tracking := s.root != 0 && !s.off
	w.mu.Unlock()
	if tracking {
		t := time.NewTimer(trackTimeout)
		select {
		case <-s.gone:
		case <-t.C:
			w.notRecorded(s, "the kernel did not report the session's end")
		}
		t.Stop()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	s.closeReadLocked()
	if !w.active[s] {
		return
	}
	delete(w.active, s)
	for pid, t := range w.procs {
		if t.s == s {
			delete(w.procs, pid)
		}
	}
	w.users--
	if w.users == 0 && w.src != nil {
		_ = w.src.Close()
		w.src, w.failed = nil, nil
		clear(w.kids)
	}
}

// loop reads src until it is closed.
func (w *execWatch) loop(src procSource) {
	for {
		evs, err := src.next()
		if err != nil {
			w.mu.Lock()
			if w.src != src { // closed
				w.mu.Unlock()
				return
			}
			// The tree of every running session may have lost a fork:
			// none of them is recorded whole from here.
			var lost []*execSession
			for s := range w.active {
				if !s.off {
					lost = append(lost, s)
				}
			}
			for pid, t := range w.procs {
				if !t.s.off {
					delete(w.procs, pid)
				}
			}
			for _, s := range lost {
				s.closeGoneLocked()
			}
			if !errors.Is(err, errProcLost) {
				w.failed = err
			}
			close(w.kidsCh)
			w.kidsCh = make(chan struct{})
			w.mu.Unlock()
			for _, s := range lost {
				w.notRecorded(s, err.Error())
			}
			if !errors.Is(err, errProcLost) {
				return
			}
			continue
		}
		for _, ev := range evs {
			w.handle(ev)
		}
	}
}

func (w *execWatch) handle(ev procEvent) {
	w.mu.Lock()
	switch ev.Kind {
	case procEventFork:
		if ev.Pid != ev.Tgid { // a thread
			break
		}
		if ev.PTgid == w.self {
			if len(w.kids) >= 4096 { // forks no session claimed
				clear(w.kids)
			}
			w.kids[ev.Tgid] = true
			close(w.kidsCh)
			w.kidsCh = make(chan struct{})
		} else if t := w.procs[ev.PTgid]; t != nil && !t.s.off {
			w.procs[ev.Tgid] = &tracked{s: t.s, ppid: ev.PTgid}
		}
	case procEventExec:
		t := w.procs[ev.Tgid]
		if t == nil || t.s.off || ev.Tgid == t.s.root {
			break
		}
		if t.ppid == t.s.root {
			// The supervisor's runtime may fork a child that executes
			// nothing (a probe of the kernel); the one that executes a
			// program is the session's.
			t.s.prog = ev.Tgid
		}
		w.mu.Unlock()
		info := w.read(ev.Tgid)
		info.pid, info.ppid = ev.Tgid, t.ppid
		_ = t.s.rec.Marker(api.MarkProgram + info.String())
		return
	case procEventExit:
		if ev.Pid == ev.Tgid {
			if t := w.procs[ev.Tgid]; t != nil && t.s.root == ev.Tgid {
				t.s.closeGoneLocked()
			} else if t != nil && t.s.prog == ev.Tgid {
				t.s.closeReadLocked()
			}
			delete(w.procs, ev.Tgid)
			delete(w.kids, ev.Tgid)
		}
	}
	w.mu.Unlock()
}

// progInfo is what is known of a program executed.
type progInfo struct {
	pid, ppid uint32
	uid, euid int64 // -1: unknown
	exe       string
	exeErr    string
	name      string // the kernel's name of the process (comm)
	argv      []string
	moreArgs  int  // arguments left out
	cut       bool // an argument or the whole was cut short
	gone      bool // it ended before it was read
}

// String is the marker's text: printable, every value from the session
// quoted.
func (p progInfo) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "pid %d ppid %d", p.pid, p.ppid)
	if p.gone {
		b.WriteString(": " + api.ProgramEndedFirst)
		return b.String()
	}
	if p.uid >= 0 {
		fmt.Fprintf(&b, " uid %d", p.uid)
		if p.euid >= 0 && p.euid != p.uid {
			fmt.Fprintf(&b, " euid %d", p.euid)
		}
	}
	if p.exe != "" {
		b.WriteString(" exe " + api.QuoteArg(p.exe))
	} else {
		b.WriteString(" exe ? (" + api.QuoteArg(p.exeErr) + "; name " + api.QuoteArg(p.name) + ")")
	}
	b.WriteString(" argv")
	if len(p.argv) == 0 {
		b.WriteString(" ? (" + api.ProgramEndedFirst + ")")
	}
	for _, a := range p.argv {
		b.WriteString(" " + api.QuoteArg(a))
	}
	if p.cut {
		b.WriteString(" …")
	}
	if p.moreArgs > 0 {
		fmt.Fprintf(&b, " (%d more arguments not recorded)", p.moreArgs)
	}
	return b.String()
}

// readProg reads what /proc holds of pid, within the bounds.
func readProg(pid uint32) progInfo {
	dir := "/proc/" + strconv.FormatUint(uint64(pid), 10)
	p := progInfo{uid: -1, euid: -1}
	// The arguments first: the program may end at any moment.
	cmdline, cerr := readBounded(dir+"/cmdline", maxProgArgv+1)
	status, serr := readBounded(dir+"/status", 4096)
	if serr != nil && cerr != nil {
		p.gone = true
		return p
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "Uid:"); ok {
			f := strings.Fields(v)
			if len(f) >= 2 {
				p.uid, _ = strconv.ParseInt(f[0], 10, 64)
				p.euid, _ = strconv.ParseInt(f[1], 10, 64)
			}
		} else if v, ok := strings.CutPrefix(line, "Name:"); ok {
			p.name = strings.TrimSpace(v)
		}
	}
	exe, err := os.Readlink(dir + "/exe")
	switch {
	case err == nil:
		if len(exe) > maxProgExe {
			exe = exe[:maxProgExe]
		}
		p.exe = exe
	case errors.Is(err, os.ErrPermission):
		p.exeErr = "not readable without the right to trace it"
	default:
		p.exeErr = "not readable"
	}
	p.argv, p.moreArgs, p.cut = splitArgv(cmdline)
	if len(p.argv) == 0 && cerr != nil {
		p.gone = p.exe == "" && p.name == ""
	}
	return p
}

// splitArgv splits /proc/PID/cmdline into at most maxProgArgs arguments of
// at most maxProgArgBytes each, from at most maxProgArgv bytes (b may hold
// one more, to tell that the whole was longer).
func splitArgv(b []byte) (argv []string, more int, cut bool) {
	if len(b) > maxProgArgv {
		b, cut = b[:maxProgArgv], true
	}
	s := strings.TrimSuffix(string(b), "\x00")
	if s == "" {
		return nil, 0, cut
	}
	parts := strings.Split(s, "\x00")
	if len(parts) > maxProgArgs {
		more = len(parts) - maxProgArgs
		parts = parts[:maxProgArgs]
	}
	for i, a := range parts {
		if len(a) > maxProgArgBytes {
			parts[i] = a[:maxProgArgBytes]
			cut = true
		}
	}
	return parts, more, cut
}

func readBounded(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, n)
	got := 0
	for got < n {
		m, err := f.Read(buf[got:])
		got += m
		if err != nil || m == 0 {
			break
		}
	}
	return buf[:got], nil
}
