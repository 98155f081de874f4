package e2e

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/audit"
)

// copyFiles copies the regular files of one directory into another.
func copyFiles(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	des, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if !de.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, de.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			// A live log's temporary file (checkpoint.tmp~), renamed
			// or removed since the directory was read.
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, de.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAgentWitnessRefusesCutBackLog: an agent remembers the newest
// checkpoint of the audit log it checked. The log cut back to an earlier
// state (a backup restored over it, by someone who can write the server's
// data directory) is consistent with itself and its own key, but the
// agent refuses it and keeps what it witnessed.
func TestAgentWitnessRefusesCutBackLog(t *testing.T) {
	c := newCluster(t)
	a := c.startAgent("n1")
	c.register(api.Registration{Name: "api", Node: "n1", Port: 8080})
	earlier := filepath.Join(t.TempDir(), "audit-earlier")
	copyFiles(t, filepath.Join(c.dir, "audit"), earlier)
	for _, name := range []string{"db", "cache", "queue"} {
		c.register(api.Registration{Name: name, Node: "n1", Port: 9000})
	}
	// The log may grow past this while the rounds run (the fake clock
	// moves on by minutes): what counts is that the agent witnessed at
	// least these entries, and then what it holds when the server stops.
	least := c.alog.Size()
	c.rounds("the agent to witness the log", time.Minute, func() bool { s, _ := a.AuditWitnessed(); return s >= least })

	t.Log("the server's log is cut back to the earlier copy")
	addr := c.addr
	c.stopServer()
	want, _ := a.AuditWitnessed()
	dir := filepath.Join(c.dir, "audit")
	c.alog.Close()
	for _, f := range []string{"entries", "hashes", "checkpoints", "checkpoint"} {
		os.Remove(filepath.Join(dir, f))
	}
	copyFiles(t, earlier, dir)
	alog, err := audit.Open(audit.Config{Dir: dir, Now: c.clk.Now, Logger: c.logger})
	if err != nil {
		t.Fatalf("the cut-back log does not open: %v", err)
	}
	if err := alog.Verify(t.Context()); err != nil {
		t.Fatalf("the cut-back log does not verify on its own (%v); this case is about what only a witness sees", err)
	}
	c.alog = alog
	t.Cleanup(func() { alog.Close() })
	c.startServer(addr)

	c.rounds("the agent to refuse the cut-back log", time.Minute, func() bool { _, bad := a.AuditWitnessed(); return bad > 0 })
	if s, _ := a.AuditWitnessed(); s < want {
		t.Fatalf("the agent now holds a checkpoint of %d entries, want the %d it witnessed", s, want)
	}
}
