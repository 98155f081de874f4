//go:build !linux

package firewall

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"syscall"
	"time"

	"moat/internal/flow"
)

// Config configures a Manager (see the Linux build for the fields' use).
type Config struct {
	NetNS    string
	Node     string
	Flows    flow.Writer
	Owner    func(uid int) string
	LogGroup uint16
	Now      func() time.Time
	Logger   *slog.Logger
	// BypassesChanged is never called: there are no bypasses here.
	BypassesChanged func()
}

// Manager is the host firewall; it exists only on Linux.
type Manager struct{}

// New fails: there is no nftables here.
func New(Config) (*Manager, error) { return nil, ErrUnsupported }

// Apply fails: there is no nftables here.
func (m *Manager) Apply(Spec) error { return ErrUnsupported }

// Applied reports nothing applied.
func (m *Manager) Applied() (Spec, bool) { return Spec{}, false }

// Installed fails: there is no nftables here.
func (m *Manager) Installed() (bool, error) { return false, ErrUnsupported }

// Guard is not supported.
func (m *Manager) Guard(context.Context) error { return ErrUnsupported }

// Bypasses reports none: there is no nftables here.
func (m *Manager) Bypasses() []Bypass { return nil }

// Pin fails: there is no nftables here.
func (m *Manager) Pin([]netip.Addr, uint16, time.Duration) error { return ErrUnsupported }

// Log is the table's log group; it exists only on Linux.
type Log struct{}

// OpenLog fails: there is no nftables here.
func (m *Manager) OpenLog() (*Log, error) { return nil, ErrUnsupported }

// Run fails: there is no nftables here.
func (l *Log) Run(context.Context) error { return ErrUnsupported }

// State is what the kernel holds in the moat table.
type State struct {
	Installed bool `json:"installed"`
	Mode      Mode `json:"mode,omitempty"`
}

// Show fails: there is no nftables here.
func Show(string) (State, error) { return State{}, ErrUnsupported }

// Format writes s.
func (s State) Format(w io.Writer) { io.WriteString(w, "no host firewall on this platform\n") }

// Control fails: socket marks are a Linux feature.
func Control(_, _ string, _ syscall.RawConn) error { return ErrUnsupported }
