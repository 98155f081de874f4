package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// TestBreakGlassRecordsProgramsRun: what a session did is in its
// recording even when the terminal shows none of it. A holder turns echo
// off (stty -echo), then runs commands whose output goes nowhere, one of
// them in a session of its own (setsid, in the background) and one whose
// arguments hold terminal escape sequences and a newline: the replay of
// the recording lists every one of those programs with its arguments, the
// hostile ones escaped, and says that the session's programs are recorded;
// the exported asciicast holds them as markers and stays an asciicast.
func TestBreakGlassRecordsProgramsRun(t *testing.T) {
	b := startBreakGlass(t)
	id := b.request(t, "--node", "web-1", "--shell", "--reason", "INC-77", "--for", "1h")
	mark := strconv.FormatInt(time.Now().UnixNano()%1_000_000, 10)

	// The programs wait on a FIFO no one writes, until the session's end
	// kills them: their arguments are there to read whenever the agent
	// gets to them. The test holds it open, so that each program opens it
	// at once and waits in a read: a program holding it has executed,
	// which its command line does not prove (it changes before the
	// exec is done and reported).
	fifoDir, err := os.MkdirTemp("", "moat-programs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(fifoDir) })
	fifo := filepath.Join(fifoDir, "p")
	if err := syscall.Mkfifo(fifo, 0o666); err != nil {
		t.Fatal(err)
	}
	os.Chmod(fifoDir, 0o755)
	os.Chmod(fifo, 0o666)
	hold, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()

	stdin, feed, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer feed.Close()
	live := moatStart(t, b.alice.env, stdin, "ssh", "-t", "web-1")
	stdin.Close()
	t.Log("echo off: from here the terminal shows no command typed")
	fmt.Fprintf(feed, "stty -echo; echo echo-$((1+1))-off\n")
	waitUntil(t, time.Minute, "echo to be off", func() bool { return strings.Contains(live.out.String(), "echo-2-off") })
	fmt.Fprintf(feed, "cat %s hidden-%s 2>/dev/null &\n", fifo, mark)
	fmt.Fprintf(feed, "setsid sh -c 'cat \"$0\" detached-%s' %s </dev/null >/dev/null 2>&1 &\n", mark, fifo)
	fmt.Fprintf(feed, "cat %s \"$(printf 'esc-\\033]52;c;eA==\\007-nl\\nend-%s')\" 2>/dev/null &\n", fifo, mark)
	fmt.Fprintf(feed, "echo done-$((40+4))\n")
	waitUntil(t, time.Minute, "the commands to run", func() bool { return strings.Contains(live.out.String(), "done-44") })
	if strings.Contains(live.out.String(), "hidden-"+mark) {
		t.Fatalf("echo was not off: %q", live.out.String())
	}
	// The shell prints done-44 without waiting for its background jobs:
	// on a loaded host one may not have executed its program yet, and an
	// exit now would have the session's end kill it unrun. Each is waited
	// for: a process with its command line holding the FIFO.
	for _, arg := range []string{"hidden-" + mark, "detached-" + mark, "esc-\x1b]52;c;eA==\a-nl\nend-" + mark} {
		want := []byte("cat\x00" + fifo + "\x00" + arg + "\x00")
		waitUntil(t, time.Minute, fmt.Sprintf("cat %s %q to run", fifo, arg), func() bool {
			for _, pid := range liveProcs(t, func(cmdline []byte) bool { return bytes.Equal(cmdline, want) }) {
				if holds(pid, fifo) {
					return true
				}
			}
			return false
		})
	}
	fmt.Fprintf(feed, "exit\n")
	waitUntil(t, time.Minute, "the session to end", live.exited)
	sessions := storedSessions(t, b.alice.env, id, 1)

	t.Log("the replay lists the programs, escaped, and says they are recorded")
	r := moatRun(t, b.alice.env, "", "access", "replay", "--programs", sessions[0].ID)
	if r.code != 0 {
		t.Fatalf("replay --programs: exit %d: %s", r.code, r.errOut)
	}
	t.Logf("replay --programs:\n%s%s", r.out, r.errOut)
	for _, want := range []string{
		"programs recorded: ",
		" argv cat " + fifo + " hidden-" + mark + "\n",
		" argv cat " + fifo + " detached-" + mark + "\n",
		" argv cat " + fifo + ` "esc-\x1b]52;c;eA==\a-nl\nend-` + mark + "\"\n",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("replay --programs lacks %q:\n%s", want, r.out)
		}
	}
	if strings.ContainsAny(r.out, "\x1b\x07") {
		t.Errorf("replay --programs wrote a control character:\n%q", r.out)
	}
	if want := "every program it ran is recorded"; !strings.Contains(r.errOut, want) {
		t.Errorf("replay --programs said %q, want %q", r.errOut, want)
	}

	t.Log("the export is an asciicast whose markers hold the programs")
	cast := filepath.Join(b.dir, "programs.cast")
	must(t, b.alice.env, "access", "export", "-o", cast, sessions[0].ID)
	f, err := os.Open(cast)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	var header map[string]any
	if !sc.Scan() || json.Unmarshal(sc.Bytes(), &header) != nil || header["version"] != float64(2) {
		t.Fatalf("export header: %q", sc.Text())
	}
	found := false
	for sc.Scan() {
		var ev []any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || len(ev) != 3 {
			t.Fatalf("export event %q: %v", sc.Text(), err)
		}
		label, _ := ev[2].(string)
		if ev[1] != "m" {
			continue
		}
		if strings.HasPrefix(label, "program: ") && strings.Contains(label, "detached-"+mark) {
			found = true
		}
		// Stored escaped, not only shown so: the label itself holds no
		// control character.
		if strings.ContainsFunc(label, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Errorf("a marker holds a control character: %q", label)
		}
		if strings.Contains(label, "esc-") && !strings.HasSuffix(label, ` "esc-\x1b]52;c;eA==\a-nl\nend-`+mark+`"`) {
			t.Errorf("the hostile arguments are stored as %q", label)
		}
	}
	if !found {
		t.Error("the exported asciicast holds no marker of the detached program")
	}
	path, err := exec.LookPath("asciinema")
	if err != nil {
		t.Fatal("asciinema is not installed (scripts/test installs it)")
	}
	// asciinema reads its controls from a terminal: give it one.
	cmd := exec.Command(path, "cat", cast)
	tty, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(tty) // EIO once it exits
	tty.Close()
	if err := cmd.Wait(); err != nil || !strings.Contains(string(out), "echo-2-off") {
		t.Fatalf("asciinema cat of the export: %v: %s", err, out)
	}
}

// holds reports whether process pid has path open.
func holds(pid int, path string) bool {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && target == path {
			return true
		}
	}
	return false
}
