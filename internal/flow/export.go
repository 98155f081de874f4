package flow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"
)

// Export formats.
const (
	FormatOCSF = "ocsf" // one OCSF JSON record per line
	FormatVPC  = "vpc"  // AWS VPC Flow Logs version 2 text, Network Activity only
)

// VPCHeader is the field line of the AWS VPC Flow Logs v2 default format.
const VPCHeader = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"

// VPCLine renders a Network Activity record as one AWS VPC Flow Logs v2
// line (without newline) and reports false for other classes. moat does not
// count packets, so that field is "-"; interface-id is the recording node;
// start and end are Unix seconds; action is REJECT for a denied flow and
// ACCEPT otherwise (audit-mode flows were let through). Missing addresses
// and ports are "-".
func VPCLine(r *Record, accountID string) (string, bool) {
	if r.ClassUID != ClassNetworkActivity {
		return "", false
	}
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	addr := func(e *Endpoint) (string, string) {
		if e == nil {
			return "-", "-"
		}
		port := "-"
		if e.Port > 0 {
			port = strconv.Itoa(e.Port)
		}
		return dash(e.IP), port
	}
	srcIP, srcPort := addr(r.SrcEndpoint)
	dstIP, dstPort := addr(r.DstEndpoint)
	proto := "-"
	if c := r.ConnectionInfo; c != nil {
		switch {
		case c.ProtocolNum > 0:
			proto = strconv.Itoa(c.ProtocolNum)
		case strings.EqualFold(c.ProtocolName, "tcp"):
			proto = "6"
		case strings.EqualFold(c.ProtocolName, "udp"):
			proto = "17"
		}
	}
	node := ""
	if r.Unmapped != nil {
		node = r.Unmapped.Node
	}
	start, end := r.StartTime, r.EndTime
	if start == 0 {
		start = r.Time
	}
	if end == 0 {
		end = r.Time
	}
	action := "ACCEPT"
	switch v := r.Verdict(); {
	case v == VerdictDeny:
		action = "REJECT"
	case v == "" && r.ActionID == ActionDenied:
		action = "REJECT"
	}
	fields := []string{
		"2", dash(accountID), dash(node), srcIP, dstIP, srcPort, dstPort, proto, "-",
		strconv.FormatInt(columns(r).bytes, 10),
		strconv.FormatInt(start/1000, 10), strconv.FormatInt(end/1000, 10),
		action, "OK",
	}
	return strings.Join(fields, " "), true
}

// VPCWriter writes Network Activity records as VPC Flow Logs lines and
// skips the other classes.
type VPCWriter struct {
	mu        sync.Mutex // guards w
	w         io.Writer
	accountID string
}

// NewVPCWriter returns a writer of VPC Flow Logs v2 lines to w; accountID
// fills the account-id field ("-" when empty). It writes no header line;
// VPCHeader is there for callers that want one.
func NewVPCWriter(w io.Writer, accountID string) *VPCWriter {
	return &VPCWriter{w: w, accountID: accountID}
}

// Write appends r's line, if r is Network Activity.
func (v *VPCWriter) Write(r Record) error {
	line, ok := VPCLine(&r, v.accountID)
	if !ok {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, err := io.WriteString(v.w, line+"\n"); err != nil {
		return fmt.Errorf("flow: write vpc flow log: %w", err)
	}
	return nil
}

// FileConfig configures a rotating export file.
type FileConfig struct {
	// Path is the live file; rotated files sit beside it with a timestamp
	// in their name and are gzipped. Required.
	Path string
	// Format is FormatOCSF (the default when empty) or FormatVPC.
	Format string
	// AccountID fills VPC lines' account-id.
	AccountID string
	// MaxMegabytes rotates the file before it would grow past this size;
	// zero means 100.
	MaxMegabytes int
	// RotateEvery rotates the file this often when Run runs; zero means
	// only by size.
	RotateEvery time.Duration
	// MaxBackups is how many rotated files are kept; zero keeps them all.
	MaxBackups int
	// MaxAgeDays removes rotated files older than this; zero keeps them.
	MaxAgeDays int
}

// FileWriter is a Writer to a file rotated by size and time, whose rotated
// files are gzipped. Lines never straddle two files.
type FileWriter struct {
	cfg FileConfig
	lj  *lumberjack.Logger
	w   Writer
}

// NewFileWriter opens (appending) the export file of cfg.
func NewFileWriter(cfg FileConfig) (*FileWriter, error) {
	if cfg.Path == "" {
		return nil, errors.New("flow: export: empty path")
	}
	if cfg.MaxMegabytes < 0 || cfg.MaxBackups < 0 || cfg.MaxAgeDays < 0 || cfg.RotateEvery < 0 {
		return nil, fmt.Errorf("flow: export %q: negative limit", cfg.Path)
	}
	if cfg.MaxMegabytes == 0 {
		cfg.MaxMegabytes = 100
	}
	lj := &lumberjack.Logger{
		Filename:   cfg.Path,
		MaxSize:    cfg.MaxMegabytes,
		MaxBackups: cfg.MaxBackups,
		MaxAge:     cfg.MaxAgeDays,
		Compress:   true,
	}
	f := &FileWriter{cfg: cfg, lj: lj}
	switch cfg.Format {
	case "", FormatOCSF:
		f.w = NewJSONLines(lj)
	case FormatVPC:
		f.w = NewVPCWriter(lj, cfg.AccountID)
	default:
		return nil, fmt.Errorf("flow: export %q: unknown format %q (want %q or %q)", cfg.Path, cfg.Format, FormatOCSF, FormatVPC)
	}
	return f, nil
}

// Write appends r.
func (f *FileWriter) Write(r Record) error { return f.w.Write(r) }

// Rotate starts a new file now; the old one is gzipped in the background.
func (f *FileWriter) Rotate() error {
	if err := f.lj.Rotate(); err != nil {
		return fmt.Errorf("flow: export %q: rotate: %w", f.cfg.Path, err)
	}
	return nil
}

// Run rotates every RotateEvery until ctx ends.
func (f *FileWriter) Run(ctx context.Context) error {
	if f.cfg.RotateEvery == 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(f.cfg.RotateEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := f.Rotate(); err != nil {
				return err
			}
		}
	}
}

// Close closes the live file.
func (f *FileWriter) Close() error {
	if err := f.lj.Close(); err != nil {
		return fmt.Errorf("flow: export %q: %w", f.cfg.Path, err)
	}
	return nil
}
