//go:build !unix

package cmdline

// KeepMonitorAwake does nothing here: the process cannot re-execute itself
// in place (see monitor.go).
func KeepMonitorAwake() error { return nil }
