package cmdline

import (
	"strings"
)

// The Go runtime's monitor thread (sysmon) parks whenever every thread
// running Go code is idle, and the first system call after that wakes it,
// which then naps 20 µs at a time until it has found nothing to do for a
// millisecond. A proxy on one thread (the node agent) goes idle and wakes
// thousands of times a second under load, so each wake-up is a futex call
// and the naps are thousands of timer wake-ups and context switches a
// second: under wrk they were about a third of the agent's CPU per request
// (bench/mesh). The runtime keeps the monitor awake only while it prints
// scheduler traces (GODEBUG's schedtrace); with a period of 24 days the
// monitor stays on its backed-off 10 ms tick when there is nothing to do,
// and parks and is woken no more.
const (
	// monitorSetting is what GODEBUG gains: schedtrace in milliseconds, the
	// largest the runtime takes. The runtime prints one line of scheduler
	// trace to stderr each time that much of the host's uptime has passed
	// since the last: every 24.8 days, and once at start on a host up for
	// longer.
	monitorSetting = "schedtrace=2147483647"
	// monitorWas carries GODEBUG's value before the re-execution, so that
	// the new image can put it back: processes the agent starts do not
	// inherit the setting, and the runtime keeps it once read at start.
	monitorWas = "MOAT_GODEBUG_BEFORE"
)

// monitorEnv returns the environment to re-execute with so that the
// monitor stays awake, or nil when there is nothing to do: GODEBUG names
// schedtrace already (the operator's choice: GODEBUG=schedtrace=0 keeps the
// runtime's default), or this image is the re-executed one.
func monitorEnv(environ []string) []string {
	var godebug string
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case monitorWas:
			return nil
		case "GODEBUG":
			godebug = v
		}
	}
	for _, f := range strings.Split(godebug, ",") {
		if k, _, _ := strings.Cut(strings.TrimSpace(f), "="); k == "schedtrace" {
			return nil
		}
	}
	out := make([]string, 0, len(environ)+2)
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "GODEBUG=") {
			out = append(out, kv)
		}
	}
	set := monitorSetting
	if godebug != "" {
		set = godebug + "," + monitorSetting
	}
	return append(out, "GODEBUG="+set, monitorWas+"="+godebug)
}
