package agent

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"moat/internal/flow"
)

// fakeProcs is a procSource fed by the test.
type fakeProcs struct {
	ch     chan fakeRead
	closed chan struct{}
}

type fakeRead struct {
	evs []procEvent
	err error
}

func (f *fakeProcs) next() ([]procEvent, error) {
	select {
	case r := <-f.ch:
		return r.evs, r.err
	case <-f.closed:
		return nil, errors.New("closed")
	}
}

func (f *fakeProcs) Close() error { close(f.closed); return nil }

func (f *fakeProcs) send(evs ...procEvent) { f.ch <- fakeRead{evs: evs} }

func fork(parent, child uint32) procEvent {
	return procEvent{Kind: procEventFork, PPid: parent, PTgid: parent, Pid: child, Tgid: child}
}

func execEv(pid uint32) procEvent { return procEvent{Kind: procEventExec, Pid: pid, Tgid: pid} }

func exitEv(pid uint32) procEvent { return procEvent{Kind: procEventExit, Pid: pid, Tgid: pid} }

// testRecorder is a recorder writing to a temporary directory, and a way
// to read what it recorded.
func testRecorder(t *testing.T) (*recorder, func() string) {
	dir := t.TempDir()
	x := newAccess(&Agent{cfg: Config{DataDir: dir, Now: time.Now}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}, AccessConfig{})
	rec, err := x.newRecorder("s1", 80, 24, "xterm", "shell")
	if err != nil {
		t.Fatal(err)
	}
	return rec, func() string {
		if _, _, err := rec.Close(); err != nil {
			t.Fatal(err)
		}
		b, err := readRecording(filepath.Join(dir, recDir, "s1.cast"), "s1", nil)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
}

func testWatch(src procSource, openErr error) (*execWatch, *bytes.Buffer) {
	var logs bytes.Buffer
	w := newExecWatch(slog.New(slog.NewTextHandler(&logs, nil)))
	w.self = 100
	w.open = func() (procSource, error) { return src, openErr }
	w.read = func(pid uint32) progInfo {
		return progInfo{uid: 1000, euid: 1000, exe: "/bin/prog", argv: []string{"prog", "pid-" + string(rune('a'+pid%26)), "\x1b]52;c;eA==\x07\nrm -rf /"}}
	}
	return w, &logs
}

// TestExecWatchFollowsTheSessionTree: the programs executed by the
// supervisor's descendants are recorded, however they left it (a double
// fork whose middle process exits, which reparents the grandchild), with
// their arguments quoted; other processes' programs, the supervisor's own
// exec and threads are not; the session's end waits for the kernel's
// report of the supervisor's exit, so that the last programs are in.
func TestExecWatchFollowsTheSessionTree(t *testing.T) {
	src := &fakeProcs{ch: make(chan fakeRead), closed: make(chan struct{})}
	w, _ := testWatch(src, nil)
	rec, read := testRecorder(t)
	s := w.begin(rec)
	src.send(fork(100, 200), fork(100, 999)) // the supervisor, and another child of the agent
	s.track(200)
	src.send(
		execEv(200),    // the supervisor itself
		fork(200, 201), // the shell
		execEv(201),
		procEvent{Kind: procEventFork, PPid: 202, PTgid: 201, Pid: 203, Tgid: 201}, // a thread of the shell
		fork(201, 210), fork(210, 211), exitEv(210), execEv(211), // a double fork
		fork(1, 300), execEv(300), // not the session's
	)
	done := make(chan struct{})
	go func() { s.end(); close(done) }()
	src.send(execEv(201), exitEv(211), exitEv(201), exitEv(200))
	<-done
	got := read()
	if n := strings.Count(got, `"program: `); n != 3 {
		t.Errorf("%d programs recorded, want 3:\n%s", n, got)
	}
	for _, want := range []string{
		`"m","programs recorded: `,
		`"m","program: pid 201 ppid 200 uid 1000 exe /bin/prog argv prog pid-t \"\\x1b]52;c;eA==\\a\\nrm -rf /\""]`,
		`"m","program: pid 211 ppid 210 uid 1000 exe /bin/prog argv prog pid-d `,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the recording lacks %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, "program: pid 300") || strings.Contains(got, "program: pid 200 ") {
		t.Errorf("a program outside the session recorded:\n%s", got)
	}
	if strings.Contains(got, "NOT") {
		t.Errorf("the recording says programs are not recorded:\n%s", got)
	}
	if !isClosed(src.closed) {
		t.Error("the subscription outlived the last session")
	}
}

// TestExecWatchCaughtUpAtTheProgramsExit: the supervisor kills what a
// session's program left once the agent has read the events up to the
// program's exit, so that a program still running then is recorded with
// its arguments; the agent says so only then (neither a descendant's exit
// nor that of a child of the supervisor that executed nothing is the
// program's), and at once for a session whose programs are not recorded.
func TestExecWatchCaughtUpAtTheProgramsExit(t *testing.T) {
	src := &fakeProcs{ch: make(chan fakeRead), closed: make(chan struct{})}
	w, _ := testWatch(src, nil)
	rec, read := testRecorder(t)
	s := w.begin(rec)
	src.send(fork(100, 200))
	s.track(200)
	src.send(execEv(200), fork(200, 199), exitEv(199), // a child of the supervisor's runtime that executes nothing
		fork(200, 201), execEv(201), fork(201, 210), execEv(210), fork(201, 211), execEv(211), exitEv(211))
	src.send() // the loop has handled those once it takes the next read
	if isClosed(s.caughtUp()) {
		t.Fatal("caught up before the session's program exited")
	}
	src.send(exitEv(201))
	src.send() // the loop has handled the program's exit once it takes the next read
	if !isClosed(s.caughtUp()) {
		t.Fatal("not caught up once the program's exit was read")
	}
	done := make(chan struct{})
	go func() { s.end(); close(done) }()
	src.send(exitEv(210), exitEv(200))
	<-done
	if got := read(); !strings.Contains(got, `"m","program: pid 210 ppid 201 `) {
		t.Errorf("the program left running is not recorded:\n%s", got)
	}

	off, _ := testWatch(nil, errors.New("the kernel's process events take CAP_NET_ADMIN, which the agent lacks"))
	rec, _ = testRecorder(t)
	s = off.begin(rec)
	if !isClosed(s.caughtUp()) {
		t.Error("a session whose programs are not recorded waits for the agent to catch up")
	}
	s.end()
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// TestExecWatchFailsClosed: where the kernel's events cannot be had the
// session's recording says its programs are NOT recorded, and the agent
// logs it once; where events are lost (ENOBUFS) every running session's
// recording says so from there on.
func TestExecWatchFailsClosed(t *testing.T) {
	w, logs := testWatch(nil, errors.New("the kernel's process events take CAP_NET_ADMIN, which the agent lacks"))
	w.check() // at the agent's start
	for range 2 {
		rec, read := testRecorder(t)
		s := w.begin(rec)
		s.track(200)
		s.end()
		if got := read(); !strings.Contains(got, `"m","programs NOT recorded: the kernel's process events take CAP_NET_ADMIN, which the agent lacks"]`) || strings.Contains(got, "programs recorded") {
			t.Errorf("recording without the kernel's events:\n%s", got)
		}
	}
	if n := strings.Count(logs.String(), "not recorded"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, logs)
	}

	src := &fakeProcs{ch: make(chan fakeRead), closed: make(chan struct{})}
	w, _ = testWatch(src, nil)
	rec, read := testRecorder(t)
	s := w.begin(rec)
	src.send(fork(100, 200))
	s.track(200)
	src.send(fork(200, 201), execEv(201))
	src.ch <- fakeRead{err: errProcLost}
	src.send(fork(201, 202), execEv(202)) // its fork may have been the one lost
	s.end()
	got := read()
	if !strings.Contains(got, `"m","programs NOT recorded: process events were lost"]`) || strings.Contains(got, "pid 202") {
		t.Errorf("recording of a session whose events overran:\n%s", got)
	}
}

// TestProgInfoBounds: a program's record keeps at most maxProgArgs
// arguments of at most maxProgArgBytes, maxProgArgv bytes in all, and says
// what it left out; its text is printable whatever the arguments hold.
func TestProgInfoBounds(t *testing.T) {
	var cmdline []byte
	for range 100 {
		cmdline = append(cmdline, "a\x00"...)
	}
	argv, more, cut := splitArgv(cmdline)
	if len(argv) != maxProgArgs || more != 100-maxProgArgs || cut {
		t.Errorf("100 arguments: %d kept, %d more, cut %v", len(argv), more, cut)
	}
	argv, _, cut = splitArgv([]byte(strings.Repeat("x", maxProgArgBytes+10) + "\x00y\x00"))
	if len(argv[0]) != maxProgArgBytes || argv[1] != "y" || !cut {
		t.Errorf("a long argument: %d bytes, %q, cut %v", len(argv[0]), argv[1], cut)
	}
	argv, _, cut = splitArgv(bytes.Repeat([]byte("z"), maxProgArgv+1))
	if len(argv) != 1 || len(argv[0]) != maxProgArgBytes || !cut {
		t.Errorf("a long command line: %d, cut %v", len(argv), cut)
	}
	p := progInfo{pid: 5, ppid: 4, uid: 0, euid: 0, exe: "/tmp/\u202eevil\n", argv: []string{"x", "\u009b6n", "a b", "\xff"}, moreArgs: 2, cut: true}
	s := p.String()
	if want := `pid 5 ppid 4 uid 0 exe "/tmp/\u202eevil\n" argv x "\u009b6n" "a b" "\xff" … (2 more arguments not recorded)`; s != want {
		t.Errorf("got  %s\nwant %s", s, want)
	}
	if flow.PrintableText(s) != s {
		t.Errorf("not printable: %q", s)
	}
}

// TestRecordingStaysWithinItsBound: a holder of a shell grant fills the
// session's recording with small writes, and ends it with a character
// left incomplete. The recording ends the session at its bound and says
// so, and what it keeps, its closing note included, is within the bound:
// the control plane takes recordings up to the same bound, and one past
// it would be refused each time the agent sent it, never reaching it.
func TestRecordingStaysWithinItsBound(t *testing.T) {
	const max = 4096
	dir := t.TempDir()
	x := newAccess(&Agent{cfg: Config{DataDir: dir, Now: time.Now}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}, AccessConfig{MaxRecording: max})
	rec, err := x.newRecorder("s1", 80, 24, "xterm", "shell")
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Output([]byte("\xe2\x82")); err != nil { // the start of a "€"
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if i > max {
			t.Fatal("the recording never reached its bound")
		}
		if err := rec.Script([]byte("y\n")); errors.Is(err, errRecordingFull) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	_, size, err := rec.Close()
	if err != nil {
		t.Fatal(err)
	}
	b, err := readRecording(filepath.Join(dir, recDir, "s1.cast"), "s1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > max || size != int64(len(b)) || !strings.Contains(string(b), "recording limit reached: session ended") {
		t.Fatalf("a recording bound to %d bytes kept %d (reported %d):\n%s", max, len(b), size, b)
	}
}
