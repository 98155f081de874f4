package faults

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestDamagedStateFilesRefused flips bytes in a real server's store.db and
// keyring.json (made by init and run, sealed as in production): the
// server refuses to start, naming the damaged file, instead of serving a
// part of its state. The undamaged files start again.
func TestDamagedStateFilesRefused(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "server")
	ports := freePorts(t, 1)
	env := []string{"MOAT_SERVER=" + addr(ports[0]), "MOAT_ADMIN_DIR=" + data + ".admin"}
	mustMoat(t, nil, "server", "init", "--data-dir", data, "--trust-domain", "example.org")
	run := []string{"server", "run", "--data-dir", data, "--listen", addr(ports[0])}
	srv := start(t, "server", nil, moatBin, run...)
	waitFor(t, "the server", func() bool { _, _, err := moat(t, env, "svc", "list"); return err == nil })
	enrolMFA(t, addr(ports[0]), data+".admin")
	for i := range 40 {
		mustMoat(t, env, "svc", "register", "--node", "n1", "--name", fmt.Sprintf("svc%02d", i), "--port", fmt.Sprint(9000+i))
	}
	srv.stop()

	// The stored record of one service, read as bbolt holds it, so the
	// flip hits its live copy (stale copies sit in freed pages too).
	db, err := bolt.Open(filepath.Join(data, "store.db"), 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var record []byte
	db.View(func(tx *bolt.Tx) error {
		record = bytes.Clone(tx.Bucket([]byte("kv")).Get([]byte("svc/svc20")))
		return nil
	})
	db.Close()
	if len(record) < 40 {
		t.Fatalf("record of svc/svc20: %d bytes", len(record))
	}
	for _, tc := range []struct {
		file string
		flip func(b []byte) []int // the offsets to flip
	}{
		{"store.db", func(b []byte) []int {
			var at []int
			for i := 0; ; {
				j := bytes.Index(b[i:], record)
				if j < 0 {
					break
				}
				at = append(at, i+j+len(record)-20)
				i += j + len(record)
			}
			return at
		}},
		{"keyring.json", func(b []byte) []int { return []int{bytes.Index(b, []byte(`"keyset":"`)) + 30} }},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join(data, tc.file)
			good, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			bad := bytes.Clone(good)
			at := tc.flip(bad)
			if len(at) == 0 {
				t.Fatalf("nothing to flip in %s", tc.file)
			}
			for _, i := range at {
				bad[i] ^= 0x01
			}
			if err := os.WriteFile(path, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			_, errOut, err := moatFor(t, 30*time.Second, nil, run...)
			if err == nil {
				t.Fatalf("the server ran on a damaged %s", tc.file)
			}
			if !strings.Contains(errOut, path) || !strings.Contains(errOut, "damaged") {
				t.Fatalf("refusal does not name the damaged file %s: %s", path, errOut)
			}
			t.Logf("bytes %v of %s flipped: %s", at, tc.file, strings.TrimSpace(errOut))
			if err := os.WriteFile(path, good, 0o600); err != nil {
				t.Fatal(err)
			}
		})
	}

	t.Log("the undamaged files serve every service again")
	start(t, "server (restarted)", nil, moatBin, run...)
	waitForDetail(t, "all 40 services listed", func() (bool, string) {
		out, errOut, err := moat(t, env, "svc", "list")
		return err == nil && strings.Count(out, "svc") >= 40, errOut
	})
}
