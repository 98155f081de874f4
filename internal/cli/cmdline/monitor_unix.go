//go:build unix

package cmdline

import (
	"fmt"
	"os"
	"syscall"
)

// KeepMonitorAwake re-executes the process (same executable, arguments
// and descriptors, same process ID) with GODEBUG's schedtrace set, so that
// the runtime's monitor thread no longer parks and is woken around every
// idle stretch (see monitor.go), unless GODEBUG names schedtrace already.
// In the re-executed image it puts GODEBUG back as it was and returns nil.
// It returns only on failure or when there is nothing to do; call it
// before the process has started anything it would lose.
func KeepMonitorAwake() error {
	if was, ok := os.LookupEnv(monitorWas); ok {
		_ = os.Unsetenv(monitorWas)
		if was == "" {
			return os.Unsetenv("GODEBUG")
		}
		return os.Setenv("GODEBUG", was)
	}
	env := monitorEnv(os.Environ())
	if env == nil {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("keep the runtime's monitor awake: %w", err)
	}
	if err := syscall.Exec(exe, os.Args, env); err != nil {
		return fmt.Errorf("keep the runtime's monitor awake: re-execute %s: %w", exe, err)
	}
	return nil
}
