package flowstore

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	json "github.com/goccy/go-json"

	"moat/internal/flow"
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
// and ports are "-", and so is an address that is not one.
func VPCLine(r *flow.Record, accountID string) (string, bool) {
	if r.ClassUID != flow.ClassNetworkActivity {
		return "", false
	}
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	addr := func(e *flow.Endpoint) (string, string) {
		if e == nil {
			return "-", "-"
		}
		port := "-"
		if e.Port > 0 {
			port = strconv.Itoa(e.Port)
		}
		ip, err := netip.ParseAddr(e.IP)
		if err != nil {
			// Not an address (a record a node sent may say anything):
			// written as it is, it could end the line and forge another.
			return "-", port
		}
		return ip.WithZone("").String(), port
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
	case v == flow.VerdictDeny:
		action = "REJECT"
	case v == "" && r.ActionID == flow.ActionDenied:
		action = "REJECT"
	}
	fields := []string{
		"2", dash(accountID), dash(node), srcIP, dstIP, srcPort, dstPort, proto, "-",
		strconv.FormatInt(r.TrafficBytes(), 10),
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
func (v *VPCWriter) Write(r flow.Record) error {
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
	// Path is the live file; rotated files sit beside it, named
	// NAME-TIMESTAMP.EXT.gz (flows-2026-11-23T12-00-00.000.jsonl.gz),
	// gzipped. Required.
	Path string
	// Format is FormatOCSF (the default when empty) or FormatVPC. A VPC
	// file starts with the VPCHeader line, as AWS writes its files.
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
	// Now is the clock naming rotated files; nil means time.Now.
	Now func() time.Time
}

// FileWriter is a Writer to a file rotated by size and time, whose rotated
// files are gzipped (in the background; Close waits for them). Lines never
// straddle two files, and a rotated file appears under its final name only
// once it is whole and synced: a shipper tailing the directory for *.gz
// never reads half a file.
type FileWriter struct {
	cfg FileConfig
	max int64

	mu     sync.Mutex // guards the fields below
	f      *os.File
	size   int64
	closed bool
	err    error // the first background compression failure

	wg sync.WaitGroup // background compressions
}

// NewFileWriter opens (appending) the export file of cfg.
func NewFileWriter(cfg FileConfig) (*FileWriter, error) {
	if cfg.Path == "" {
		return nil, errors.New("flow: export: empty path")
	}
	if cfg.MaxMegabytes < 0 || cfg.MaxBackups < 0 || cfg.MaxAgeDays < 0 || cfg.RotateEvery < 0 {
		return nil, fmt.Errorf("flow: export %q: negative limit", cfg.Path)
	}
	switch cfg.Format {
	case "", FormatOCSF, FormatVPC:
	default:
		return nil, fmt.Errorf("flow: export %q: unknown format %q (want %q or %q)", cfg.Path, cfg.Format, FormatOCSF, FormatVPC)
	}
	if cfg.MaxMegabytes == 0 {
		cfg.MaxMegabytes = 100
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o750); err != nil {
		return nil, fmt.Errorf("flow: export: %w", err)
	}
	return &FileWriter{cfg: cfg, max: int64(cfg.MaxMegabytes) << 20}, nil
}

// line renders r in the file's format; ok is false for a record the
// format leaves out.
func (f *FileWriter) line(r *flow.Record) ([]byte, bool, error) {
	if f.cfg.Format == FormatVPC {
		l, ok := VPCLine(r, f.cfg.AccountID)
		return []byte(l + "\n"), ok, nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, false, fmt.Errorf("flow: encode record: %w", err)
	}
	// A record's text is what a node sent (paths, names); the file is read
	// as text (a SIEM's console, a terminal): what would not print is
	// escaped, the value unchanged.
	return append(flow.PrintableJSON(b), '\n'), true, nil
}

// Write appends r.
func (f *FileWriter) Write(r flow.Record) error {
	b, ok, err := f.line(&r)
	if err != nil || !ok {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return fmt.Errorf("flow: export %q: closed", f.cfg.Path)
	}
	if f.f != nil && f.size > 0 && f.size+int64(len(b)) > f.max {
		if err := f.rotateLocked(); err != nil {
			return err
		}
	}
	if err := f.openLocked(); err != nil {
		return err
	}
	n, err := f.f.Write(b)
	f.size += int64(n)
	if err != nil {
		return fmt.Errorf("flow: export %q: %w", f.cfg.Path, err)
	}
	return nil
}

func (f *FileWriter) openLocked() error {
	if f.f != nil {
		return nil
	}
	file, err := os.OpenFile(f.cfg.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("flow: export: %w", err)
	}
	fi, err := file.Stat()
	if err != nil {
		file.Close()
		return fmt.Errorf("flow: export: %w", err)
	}
	f.f, f.size = file, fi.Size()
	if f.size == 0 && f.cfg.Format == FormatVPC {
		n, err := io.WriteString(file, VPCHeader+"\n")
		f.size += int64(n)
		if err != nil {
			return fmt.Errorf("flow: export %q: %w", f.cfg.Path, err)
		}
	}
	return nil
}

// Rotate starts a new file now; the old one is gzipped in the background.
// An empty live file is left as it is.
func (f *FileWriter) Rotate() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rotateLocked()
}

func (f *FileWriter) rotateLocked() error {
	if err := f.openLocked(); err != nil {
		return err
	}
	if f.size == 0 || f.cfg.Format == FormatVPC && f.size == int64(len(VPCHeader)+1) {
		return nil
	}
	if err := f.f.Sync(); err != nil {
		return fmt.Errorf("flow: export %q: %w", f.cfg.Path, err)
	}
	if err := f.f.Close(); err != nil {
		return fmt.Errorf("flow: export %q: %w", f.cfg.Path, err)
	}
	f.f, f.size = nil, 0
	rotated := rotatedName(f.cfg)
	if err := os.Rename(f.cfg.Path, rotated); err != nil {
		return fmt.Errorf("flow: export %q: rotate: %w", f.cfg.Path, err)
	}
	f.finish(rotated)
	return nil
}

// rotatedName is a free name for the live file of cfg rotated now:
// NAME-TIMESTAMP.EXT, with a counter when that is taken.
func rotatedName(cfg FileConfig) string {
	ext := filepath.Ext(cfg.Path)
	stem := strings.TrimSuffix(cfg.Path, ext)
	stamp := cfg.Now().UTC().Format("2006-01-02T15-04-05.000")
	rotated := fmt.Sprintf("%s-%s%s", stem, stamp, ext)
	for i := 1; fileExists(rotated) || fileExists(rotated+".gz"); i++ {
		rotated = fmt.Sprintf("%s-%s.%d%s", stem, stamp, i, ext)
	}
	return rotated
}

// finish gzips a rotated file in the background, then prunes old ones; a
// failure is kept for Close.
func (f *FileWriter) finish(rotated string) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		if err := f.compress(rotated); err != nil {
			f.mu.Lock()
			if f.err == nil {
				f.err = err
			}
			f.mu.Unlock()
		}
		f.prune()
	}()
}

// compress gzips path into path.gz (whole and synced before it takes that
// name) and removes path.
func (f *FileWriter) compress(path string) error {
	in, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("flow: export: %w", err)
	}
	defer in.Close()
	tmp := path + ".gz.tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("flow: export: %w", err)
	}
	zw := gzip.NewWriter(out)
	_, err = io.Copy(zw, in)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if serr := out.Sync(); err == nil {
		err = serr
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path+".gz")
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("flow: export: compress %q: %w", path, err)
	}
	return os.Remove(path)
}

// prune removes rotated files beyond MaxBackups or older than MaxAgeDays.
func (f *FileWriter) prune() {
	if f.cfg.MaxBackups == 0 && f.cfg.MaxAgeDays == 0 {
		return
	}
	ext := filepath.Ext(f.cfg.Path)
	stem := strings.TrimSuffix(f.cfg.Path, ext)
	files, _ := filepath.Glob(stem + "-*" + ext + ".gz")
	sort.Strings(files) // the timestamp sorts them oldest first
	cutoff := f.cfg.Now().Add(-time.Duration(f.cfg.MaxAgeDays) * 24 * time.Hour)
	for i, p := range files {
		old := f.cfg.MaxAgeDays > 0
		if old {
			if fi, err := os.Stat(p); err != nil || !fi.ModTime().Before(cutoff) {
				old = false
			}
		}
		if old || f.cfg.MaxBackups > 0 && i < len(files)-f.cfg.MaxBackups {
			os.Remove(p)
		}
	}
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
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

// Close syncs and closes the live file and waits for the compressions
// under way; it reports the first that failed. It is idempotent.
func (f *FileWriter) Close() error {
	f.mu.Lock()
	var err error
	if !f.closed && f.f != nil {
		err = f.f.Sync()
		if cerr := f.f.Close(); err == nil {
			err = cerr
		}
		f.f = nil
	}
	f.closed = true
	f.mu.Unlock()
	f.wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		err = f.err
	}
	if err != nil {
		return fmt.Errorf("flow: export %q: %w", f.cfg.Path, err)
	}
	return nil
}
