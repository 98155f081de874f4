package cmdline

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// monitorChild is set in the environment of the test binary run as the
// process that re-executes itself.
const monitorChild = "MOAT_TEST_MONITOR_CHILD"

// TestKeepMonitorAwakeChild is the re-executing process: it says which
// image it is, keeps the monitor awake, and reports what the runtime read
// at start (/proc/self/environ is the environment the image was started
// with) and what the process's environment is now.
func TestKeepMonitorAwakeChild(t *testing.T) {
	if os.Getenv(monitorChild) == "" && os.Getenv(monitorWas) == "" {
		return // run by the parent below only
	}
	fmt.Printf("image pid=%d\n", os.Getpid())
	if err := KeepMonitorAwake(); err != nil {
		fmt.Printf("error %v\n", err)
		return
	}
	start, err := os.ReadFile("/proc/self/environ")
	if err != nil {
		fmt.Printf("error %v\n", err)
		return
	}
	for _, kv := range bytes.Split(start, []byte{0}) {
		if bytes.HasPrefix(kv, []byte("GODEBUG=")) {
			fmt.Printf("started with %s\n", kv)
		}
	}
	_, marker := os.LookupEnv(monitorWas)
	fmt.Printf("now GODEBUG=%s marker=%v\n", os.Getenv("GODEBUG"), marker)
}

func TestKeepMonitorAwake(t *testing.T) {
	run := func(godebug string) string {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^TestKeepMonitorAwakeChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), monitorChild+"=1")
		if godebug != "" {
			cmd.Env = append(cmd.Env, "GODEBUG="+godebug)
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return string(out)
	}
	lines := func(out, prefix string) []string {
		var l []string
		for _, s := range strings.Split(out, "\n") {
			if strings.HasPrefix(s, prefix) {
				l = append(l, s)
			}
		}
		return l
	}

	out := run("madvdontneed=1")
	images := lines(out, "image ")
	if len(images) != 2 || images[0] != images[1] {
		t.Fatalf("want the child to run twice under one pid (re-executed), got %q:\n%s", images, out)
	}
	if got := lines(out, "started with "); len(got) != 1 || got[0] != "started with GODEBUG=madvdontneed=1,"+monitorSetting {
		t.Errorf("the re-executed image started with %q, want GODEBUG=madvdontneed=1,%s:\n%s", got, monitorSetting, out)
	}
	if got := lines(out, "now "); len(got) != 1 || got[0] != "now GODEBUG=madvdontneed=1 marker=false" {
		t.Errorf("after start: %q, want GODEBUG put back and no marker:\n%s", got, out)
	}

	out = run("")
	if got := lines(out, "now "); len(got) != 1 || got[0] != "now GODEBUG= marker=false" {
		t.Errorf("without GODEBUG before: %q, want it unset again:\n%s", got, out)
	}

	out = run("schedtrace=0")
	if images := lines(out, "image "); len(images) != 1 {
		t.Fatalf("GODEBUG=schedtrace=0 is the operator's choice: want no re-execution, got %q:\n%s", images, out)
	}
	if got := lines(out, "started with "); len(got) != 1 || got[0] != "started with GODEBUG=schedtrace=0" {
		t.Errorf("got %q:\n%s", got, out)
	}
}
