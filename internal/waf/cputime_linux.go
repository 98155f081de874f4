package waf

import (
	"time"

	"golang.org/x/sys/unix"
)

// threadCPU is the CPU time the calling thread has used. The WAF locks
// the goroutine that runs phase 2 to its thread (Tx.Request), so the
// difference of two readings there is the CPU that phase 2 spent, however
// busy the machine is.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return monotonicNow()
	}
	return time.Duration(ts.Nano())
}
