//go:build !linux

package waf

import "time"

// threadCPU falls back to elapsed time where the thread's CPU clock is
// not read: the budget then counts time waiting for a CPU too.
func threadCPU() time.Duration { return monotonicNow() }
