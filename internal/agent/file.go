package agent

import (
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"moat/internal/api"
	"moat/internal/config"
	"moat/internal/identity"
	"moat/internal/mesh"
	"moat/internal/seal"
)

// File is the configuration of "moat agent" as written in YAML; its flags
// share the key names (--data-dir is data_dir). The gateway's node takes
// the same keys as flags.
type File struct {
	// DataDir keeps the node identity, cached SVIDs and the flow spool;
	// required.
	DataDir string `yaml:"data_dir"`
	// Server lists the control plane's servers, "host:port[,host:port...]";
	// a name resolving to several addresses names them all. The agent
	// fails over between them. Required.
	Server string `yaml:"server"`
	// Join is a one-time join token, needed on the first start only. Given
	// as --join it is in the process's argv, which every local user may
	// read while the agent runs: JoinFile or JoinEnv keep it off. Written
	// in a configuration file it is as readable as the file
	// (CheckJoinInConfig).
	Join string `yaml:"join"`
	// JoinFile names a file holding the join token, read once at start;
	// one that group or others may read is refused.
	JoinFile string `yaml:"join_file"`
	// Node names this node; required.
	Node string `yaml:"node"`
	// Listen is the mesh port (mutual TLS), published to peers; required.
	Listen string `yaml:"listen"`
	// Socket is the SPIFFE Workload API socket; empty means
	// DATA_DIR.public/workload.sock (see SocketPath).
	Socket string `yaml:"socket"`
	// RequireUID serves an SVID only to the uid its registration names.
	RequireUID bool `yaml:"require_uid"`
	// Metrics, when set, serves Prometheus /metrics (plain HTTP, no
	// authentication) on this address.
	Metrics string `yaml:"metrics"`
	// MemoryLimit is the agent's soft memory limit (runtime/debug's), e.g.
	// "64MiB": past it the garbage collector works harder, so the agent
	// gives the memory of a burst back instead of keeping its peak. Empty
	// means DefaultMemoryLimit unless GOMEMLIMIT is set; "off" means none.
	MemoryLimit string `yaml:"memory_limit"`
	// StreamBuffer bounds what the node's inbound mesh streams hold of
	// their callers' bytes, received and not yet delivered to their apps,
	// e.g. "128MiB"; past it, the streams of the caller holding the most
	// are reset. Empty means mesh.DefaultStreamBuffer (64MiB). It also
	// bounds the streams one caller holds open on the node: one per 4 KiB.
	StreamBuffer string `yaml:"stream_buffer"`
	// Procs is how many threads run the agent's Go code at once
	// (GOMAXPROCS). Zero means DefaultProcs unless GOMAXPROCS is set.
	Procs int `yaml:"procs"`
	// GCPercent is how far the heap grows past what the last collection
	// left before the next one (GOGC). Zero means DefaultGCPercent unless
	// GOGC is set.
	GCPercent int `yaml:"gc_percent"`
	// KEK seals the node key, cached SVID keys and the spool; the key file
	// defaults to DATA_DIR.kek, created on first start.
	KEK seal.KEKConfig `yaml:"kek"`
	// Firewall is the node's host firewall; its zero value is off.
	Firewall FirewallFile `yaml:"firewall"`
	// Egress is the node's way out of the mesh; its zero value runs no
	// proxy and connects out for no one.
	Egress EgressFile `yaml:"egress"`
	// Access configures break-glass sessions on this node.
	Access AccessFile `yaml:"access"`
	Log    config.Log `yaml:",inline"`
}

// DefaultMemoryLimit is an agent's soft memory limit unless configured: a
// few times what it holds carrying traffic (bench/mesh), so the collector
// works harder only after a burst, to give the burst's memory back.
const DefaultMemoryLimit = 32 << 20

// DefaultProcs is how many threads run an agent's Go code unless
// configured. One, as linkerd2-proxy's default: a connection through the
// mesh is a chain of hand-offs between goroutines (app socket, tunnel
// stream, the tunnel's send and receive loops), which on one thread are
// direct switches and on several are cross-thread wake-ups that cost more
// than the work handed over; bench/mesh measured bulk and request rates
// higher on one than on two. A node whose mesh traffic needs more cores
// says so with procs.
const DefaultProcs = 1

// DefaultGCPercent is an agent's GOGC unless configured: half Go's
// default. An agent's live heap is small (about 1 MB idle, its
// connections' buffers under load), so the heap a collection lets grow
// (GOGC percent of the live heap, and at least 4 MB at 100) is most of
// what it holds under load beyond those buffers. At 50, bench/mesh measured
// 1.1-1.2 MiB less RssAnon per agent at 1,000 req/s, and the agents' CPU
// there within the run-to-run noise of its host ("Where the agent's memory
// goes").
const DefaultGCPercent = 50

// gcPercentRange bounds gc_percent.
const minGCPercent, maxGCPercent = 10, 1000

// GCPercentToUse is the GOGC to set, or 0 to leave the runtime's (GOGC set
// and no gc_percent given).
func (f *File) GCPercentToUse(getenv func(string) string) int {
	switch {
	case f.GCPercent > 0:
		return f.GCPercent
	case getenv("GOGC") != "":
		return 0
	}
	return DefaultGCPercent
}

// maxProcs bounds procs: more threads than this help no agent.
const maxProcs = 1024

// ProcsToUse is the GOMAXPROCS to set, or 0 to leave the runtime's
// (GOMAXPROCS set and no procs given).
func (f *File) ProcsToUse(getenv func(string) string) int {
	switch {
	case f.Procs > 0:
		return f.Procs
	case getenv("GOMAXPROCS") != "":
		return 0
	}
	return DefaultProcs
}

// MemoryLimitBytes is the limit to set, or -1 to leave the runtime's
// (GOMEMLIMIT set and no memory_limit given).
func (f *File) MemoryLimitBytes(getenv func(string) string) (int64, error) {
	switch {
	case f.MemoryLimit == "off":
		return math.MaxInt64, nil
	case f.MemoryLimit != "":
		n, err := config.ParseBytes(f.MemoryLimit)
		if err == nil && n < 4<<20 {
			err = fmt.Errorf("%s is below 4MiB, the least an agent can run in", f.MemoryLimit)
		}
		return n, err
	case getenv("GOMEMLIMIT") != "":
		return -1, nil
	}
	return DefaultMemoryLimit, nil
}

// StreamBufferBytes is the mesh's stream buffer, or 0 for its default.
func (f *File) StreamBufferBytes() (int64, error) {
	if f.StreamBuffer == "" {
		return 0, nil
	}
	n, err := config.ParseBytes(f.StreamBuffer)
	if err == nil && n < mesh.MinStreamBuffer {
		err = fmt.Errorf("%s is below %dMiB, four streams' windows", f.StreamBuffer, mesh.MinStreamBuffer>>20)
	}
	return n, err
}

// JoinEnv is the environment variable a join token may be given in.
const JoinEnv = "MOAT_JOIN_TOKEN"

// maxJoinFile bounds what is read of a join_file: a token is about a
// hundred bytes.
const maxJoinFile = 512

// JoinToken is the join token f gives: Join, the contents of JoinFile (less
// one trailing newline), or the variable JoinEnv, checked for form. None is
// "" (an agent that has joined needs none); more than one is an error.
func (f *File) JoinToken(getenv func(string) string) (string, error) {
	env := getenv(JoinEnv)
	n := 0
	for _, v := range []string{f.Join, f.JoinFile, env} {
		if v != "" {
			n++
		}
	}
	switch {
	case n > 1:
		return "", config.Errorf("join", "given more than one way (join, join_file, %s): give one", JoinEnv)
	case f.Join != "":
		return checkJoin("join", f.Join)
	case env != "":
		return checkJoin(JoinEnv, env)
	case f.JoinFile != "":
		tok, err := readJoinFile(f.JoinFile)
		if err != nil {
			return "", config.Errorf("join_file", "%v", err)
		}
		return tok, nil
	}
	return "", nil
}

func checkJoin(key, tok string) (string, error) {
	if _, _, err := api.SplitToken(tok); err != nil {
		return "", config.Errorf(key, "%v", err)
	}
	return tok, nil
}

// readJoinFile reads the token in path, which only its owner may read;
// its errors name path.
func readJoinFile(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s: not a regular file", path)
	}
	if err := seal.CheckPrivateMode(path, fi); err != nil {
		return "", err
	}
	b, err := io.ReadAll(io.LimitReader(fh, maxJoinFile+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxJoinFile {
		return "", fmt.Errorf("%s: larger than %d bytes, more than a join token", path, maxJoinFile)
	}
	tok := strings.TrimSuffix(string(b), "\n")
	if tok == "" {
		return "", fmt.Errorf("%s: no join token in it", path)
	}
	if _, _, err := api.SplitToken(tok); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return tok, nil
}

// CheckJoinInConfig checks the configuration file at path when it gives
// a join token (join:), which is then as readable as the file is, and for
// longer than the process's argv is: until the file is edited. A file
// every local user may read is refused, since the token, until the first
// join spends it, would join their node as this one; one that its group
// (or others but for reading) may access is allowed, with the warning
// returned. A file only its owner may access, or one with no join:, gives
// "" and nil. Where files have no such modes (seal.CheckPrivateMode),
// nothing is refused.
func CheckJoinInConfig(path string) (warning string, err error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	if seal.CheckPrivateMode(path, fi) == nil {
		return "", nil
	}
	src, err := io.ReadAll(fh)
	if err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	f, err := ParseFile(src)
	if err != nil || f.Join == "" {
		return "", nil // a file that does not decode is refused by its decoding
	}
	const fix = "give the token in join_file (a file only its owner may read) or " + JoinEnv
	perm := fi.Mode().Perm()
	switch {
	case perm&0o004 != 0:
		return "", config.Errorf("join", "%s has mode %04o, which every local user may read, the join token with it: %s, or chmod o-r %s (a node that has joined needs no token: delete join:)", path, perm, fix, path)
	case perm&0o040 != 0:
		return fmt.Sprintf("%s has mode %04o, which its group may read, the join token with it: %s, or chmod go-rwx %s", path, perm, fix, path), nil
	}
	return fmt.Sprintf("%s has mode %04o, which users other than its owner may access, and it holds the join token: %s, or chmod go-rwx %s", path, perm, fix, path), nil
}

// DecodeFile reads an agent configuration file strictly.
func DecodeFile(name string) (*File, error) {
	var f File
	if err := config.DecodeFile(name, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// ParseFile decodes an agent configuration file's contents strictly.
func ParseFile(src []byte) (*File, error) {
	var f File
	if err := config.Decode(src, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// Validate checks f as the agent would run it; errors name the key path.
func (f *File) Validate() error {
	for _, req := range []struct{ key, v string }{{"data_dir", f.DataDir}, {"server", f.Server}, {"node", f.Node}, {"listen", f.Listen}} {
		if req.v == "" {
			return config.Errorf(req.key, "required")
		}
	}
	if err := checkSocketPath(f.SocketPath()); err != nil {
		return err
	}
	return f.ValidateFile()
}

// SocketPath is the Workload API socket the agent serves: Socket, or
// DATA_DIR.public/workload.sock, beside the data directory rather than in
// it (the data directory is private, 0700, and the services' own uids must
// reach the socket).
func (f *File) SocketPath() string {
	if f.Socket != "" {
		return f.Socket
	}
	return filepath.Join(filepath.Clean(f.DataDir)+".public", "workload.sock")
}

// MaxSocketPath is the longest Unix socket path this system accepts (the
// kernel's sun_path less its terminating NUL: 107 bytes on Linux, 103 on
// the BSDs and macOS).
var MaxSocketPath = len(syscall.RawSockaddrUnix{}.Path) - 1

func checkSocketPath(p string) error {
	if len(p) > MaxSocketPath {
		return config.Errorf("socket", "%q is %d bytes, longer than a Unix socket path may be here (%d): set socket (--socket) to a shorter path", p, len(p), MaxSocketPath)
	}
	return nil
}

// ValidateFile checks the values a file gives, without requiring what the
// command line may supply instead: what "moat check" asks of a
// configuration file on its own.
func (f *File) ValidateFile() error {
	if f.Server != "" {
		if _, err := api.ParseServers(f.Server); err != nil {
			return config.Errorf("server", "%v", err)
		}
	}
	if f.Node != "" {
		if err := identity.ValidName(f.Node); err != nil {
			return config.Errorf("node", "%v", err)
		}
	}
	if f.Listen != "" {
		if _, _, err := net.SplitHostPort(f.Listen); err != nil {
			return config.Errorf("listen", "%q: want host:port", f.Listen)
		}
	}
	if f.Socket != "" {
		if err := checkSocketPath(f.Socket); err != nil {
			return err
		}
	}
	if f.Metrics != "" {
		if _, _, err := net.SplitHostPort(f.Metrics); err != nil {
			return config.Errorf("metrics", "%q: want host:port", f.Metrics)
		}
	}
	if _, err := f.Firewall.Config("firewall"); err != nil {
		return err
	}
	if _, err := f.Egress.Config("egress"); err != nil {
		return err
	}
	if _, err := f.MemoryLimitBytes(func(string) string { return "" }); err != nil {
		return config.Errorf("memory_limit", "%v", err)
	}
	if _, err := f.StreamBufferBytes(); err != nil {
		return config.Errorf("stream_buffer", "%v", err)
	}
	if f.Procs < 0 || f.Procs > maxProcs {
		return config.Errorf("procs", "%d: want 1 to %d, or 0 for the default", f.Procs, maxProcs)
	}
	if f.GCPercent != 0 && (f.GCPercent < minGCPercent || f.GCPercent > maxGCPercent) {
		return config.Errorf("gc_percent", "%d: want %d to %d, or 0 for the default", f.GCPercent, minGCPercent, maxGCPercent)
	}
	if err := f.Log.Validate(); err != nil {
		return err
	}
	if _, err := f.Access.Config("access"); err != nil {
		return err
	}
	return f.KEK.Validate("kek")
}
