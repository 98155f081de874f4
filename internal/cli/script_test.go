package cli

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"moat/internal/audit"
	"moat/internal/seal"
	"moat/internal/server"
	"moat/internal/store"
)

// TestMain lets scripts run this test binary as the moat command: "exec
// moat ..." starts a separate process running cli.Main, as the built
// binary would.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"moat": func() { os.Exit(Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// TestScript runs testdata/script/*.txtar against real processes: the
// scripts start "moat server run" on sealed data directories made by
// "moat server init", and call it with "exec moat ...". Besides
// testscript's own commands they have:
//
//	waitserver ADDR          wait until ADDR accepts connections
//	auditforge DIR I [plain] rewrite entry I of the (stopped) server's audit
//	                         log in DIR and re-sign every checkpoint from
//	                         there with the log's own key, unsealed from the
//	                         store with the KEK DIR.kek: what someone holding
//	                         the data directory and the KEK can do. With
//	                         plain the new entry is written unencrypted.
//
// $SERVER is a free loopback address for a server.
func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("testdata", "script"),
		Setup: func(env *testscript.Env) error {
			port, err := freeScriptPort()
			if err != nil {
				return err
			}
			env.Setenv("SERVER", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitserver": scriptWaitServer,
			"auditforge": scriptAuditForge,
		},
	})
}

// freeScriptPort finds a free port below the ephemeral range, where the
// :0 listeners of other tests never land.
func freeScriptPort() (int, error) {
	for attempt := 0; attempt < 200; attempt++ {
		p := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err == nil {
			l.Close()
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free port")
}

func scriptWaitServer(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: waitserver ADDR")
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", args[0], time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s does not accept connections: %v", args[0], err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func scriptAuditForge(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 || len(args) > 3 || (len(args) == 3 && args[2] != "plain") {
		ts.Fatalf("usage: auditforge DIR INDEX [plain]")
	}
	dir := ts.MkAbs(args[0])
	at, err := strconv.ParseInt(args[1], 10, 64)
	ts.Check(err)
	kek, err := seal.OpenKeyFile(dir + ".kek")
	ts.Check(err)
	kr, err := seal.Open(seal.Config{Dir: dir, KEK: kek, NoCreate: true})
	ts.Check(err)
	st, err := store.OpenBolt(store.BoltConfig{Dir: dir, Sealer: server.NewStoreSealer(kr.AEAD())})
	ts.Check(err)
	kv, err := st.Get(context.Background(), audit.DefaultStoreKey)
	st.Close()
	ts.Check(err)
	signer, err := note.NewSigner(string(kv.Value))
	ts.Check(err)

	logDir := filepath.Join(dir, audit.DirName)
	entries := readFramesFile(ts, filepath.Join(logDir, "entries"))
	cps := readFramesFile(ts, filepath.Join(logDir, "checkpoints"))
	var sealer audit.Sealer = kr.AEAD()
	if len(args) == 3 {
		sealer = nil
	}
	forged, err := audit.EncodeEntry(at, audit.Entry{Time: time.Now().UTC(), Actor: "mallory", Action: "policy.apply", Target: "allow-all", Result: "ok"}, sealer)
	ts.Check(err)
	entries[at] = forged
	// Recompute every stored hash, and re-sign the checkpoints of every
	// size past the rewritten entry.
	var hashes []tlog.Hash
	hr := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	})
	bySize := map[int64]int{}
	for i, cp := range cps {
		n, err := note.Open(cp, note.VerifierList())
		if u, ok := err.(*note.UnverifiedNoteError); ok {
			n = u.Note
		} else {
			ts.Check(err)
		}
		c, err := audit.ParseCheckpoint([]byte(n.Text))
		ts.Check(err)
		bySize[c.Size] = i
	}
	for i, e := range entries {
		hs, err := tlog.StoredHashes(int64(i), e, hr)
		ts.Check(err)
		hashes = append(hashes, hs...)
		if k, ok := bySize[int64(i+1)]; ok && int64(i) >= at {
			root, err := tlog.TreeHash(int64(i+1), hr)
			ts.Check(err)
			cps[k], err = audit.SignCheckpoint(audit.Checkpoint{Origin: signer.Name(), Size: int64(i + 1), Root: root}, signer)
			ts.Check(err)
		}
	}
	var hb []byte
	for _, h := range hashes {
		hb = append(hb, h[:]...)
	}
	ts.Check(os.WriteFile(filepath.Join(logDir, "entries"), joinFrames(entries), 0o600))
	ts.Check(os.WriteFile(filepath.Join(logDir, "hashes"), hb, 0o600))
	ts.Check(os.WriteFile(filepath.Join(logDir, "checkpoints"), joinFrames(cps), 0o600))
	ts.Check(os.WriteFile(filepath.Join(logDir, "checkpoint"), cps[len(cps)-1], 0o644))
}

func readFramesFile(ts *testscript.TestScript, p string) [][]byte {
	b, err := os.ReadFile(p)
	ts.Check(err)
	var out [][]byte
	for len(b) >= 4 {
		n := int(binary.BigEndian.Uint32(b))
		out = append(out, bytes.Clone(b[4:4+n]))
		b = b[4+n:]
	}
	return out
}

func joinFrames(frames [][]byte) []byte {
	var out []byte
	for _, f := range frames {
		out = binary.BigEndian.AppendUint32(out, uint32(len(f)))
		out = append(out, f...)
	}
	return out
}
