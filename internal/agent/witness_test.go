package agent

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"moat/internal/api"
	"moat/internal/audit"
)

// witnessedNode makes a node data directory whose agent pinned an audit
// verifier key and witnessed a checkpoint of size entries; it returns
// the directory and the signed checkpoint.
func witnessedNode(t *testing.T, size int64) (string, []byte) {
	t.Helper()
	dir := t.TempDir()
	node := filepath.Join(dir, nodeDir)
	if err := os.Mkdir(node, 0o700); err != nil {
		t.Fatal(err)
	}
	skey, vkey, err := audit.GenerateKey("moat-audit", nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := audit.SignCheckpoint(audit.Checkpoint{Origin: "moat-audit", Size: size, Root: tlog.Hash{1, 2, 3}}, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(node, api.AuditKeyFile), []byte(vkey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(node, api.AuditCheckpointFile), signed, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, signed
}

// TestResetWitness: the reset is refused while an agent holds the data
// directory's lock and changes nothing then; once it is free, the
// witnessed checkpoint is reported and moved aside whole, and a second
// reset finds nothing to drop.
func TestResetWitness(t *testing.T) {
	dir, signed := witnessedNode(t, 7)
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	cp := filepath.Join(dir, nodeDir, api.AuditCheckpointFile)

	lock, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockDataDir(dir); !errors.Is(err, ErrRunning) {
		t.Fatalf("a second lock: %v, want ErrRunning", err)
	}
	_, err = ResetWitness(dir, now)
	if err == nil || !strings.Contains(err.Error(), "is running (it holds "+filepath.Join(dir, nodeDir, LockFile)+"); stop it first; nothing was changed") {
		t.Fatalf("reset while the agent runs: %v, want it refused", err)
	}
	if b, err := os.ReadFile(cp); err != nil || !bytes.Equal(b, signed) {
		t.Fatalf("a refused reset changed the checkpoint: %q, %v", b, err)
	}
	lock.Close()

	r, err := ResetWitness(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	if r.Unverified != "" || r.Checkpoint.Size != 7 || r.Checkpoint.Root != (tlog.Hash{1, 2, 3}) {
		t.Fatalf("reset reported %+v, want the checkpoint of 7 entries", r)
	}
	if want := cp + ".dropped-20260304T050607Z"; r.Kept != want {
		t.Fatalf("kept as %q, want %q", r.Kept, want)
	}
	if b, err := os.ReadFile(r.Kept); err != nil || !bytes.Equal(b, signed) {
		t.Fatalf("the kept checkpoint is %q, %v; want the one dropped", b, err)
	}
	if _, err := os.Stat(cp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the checkpoint is still there: %v", err)
	}
	if _, err := ResetWitness(dir, now.Add(time.Second)); !errors.Is(err, ErrNoWitnessed) {
		t.Fatalf("a second reset: %v, want ErrNoWitnessed", err)
	}
}

// TestResetWitnessUnverified: a checkpoint that does not verify under the
// pinned key (the agent cannot open it either) is dropped too, and the
// reset says why it was not checked.
func TestResetWitnessUnverified(t *testing.T) {
	dir, _ := witnessedNode(t, 7)
	cp := filepath.Join(dir, nodeDir, api.AuditCheckpointFile)
	if err := os.WriteFile(cp, []byte("not a checkpoint\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := ResetWitness(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Unverified, "checkpoint") || r.Checkpoint.Size != 0 {
		t.Fatalf("reset reported %+v, want it unverified", r)
	}
	if _, err := os.Stat(cp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the checkpoint is still there: %v", err)
	}
}

// TestResetWitnessNoNode: a directory that holds no node is refused, and
// nothing is made in it.
func TestResetWitnessNoNode(t *testing.T) {
	dir := t.TempDir()
	if _, err := ResetWitness(dir, time.Now()); err == nil || !strings.Contains(err.Error(), "holds no node identity") {
		t.Fatalf("reset of an empty directory: %v, want it refused", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("a refused reset made %q", ents[0].Name())
	}
}
