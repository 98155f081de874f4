package cli

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"moat/internal/audit"
	"moat/internal/seal"
)

// TestAuditScripts runs testdata/audit/*.txtar. Besides testscript's own
// commands they have:
//
//	moat ARGS...              run moat in-process (stdin: none)
//	auditfixture DATADIR N    write an audit log of N entries under DATADIR/audit,
//	                          sealed under a keyring in DATADIR and DATADIR.kek;
//	                          entries 0-2 as written before entries recorded
//	                          the account, the later ones with fixtureAccount
//	audittamper DATADIR OP I  change the log: OP is flip (a byte of entry I),
//	                          drop (entry I), swap (entries I and I+1), dup
//	                          (insert a copy of entry I before it) or cut
//	                          (truncate the file 3 bytes into entry I)
func TestAuditScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("testdata", "audit"),
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"moat":         scriptMoat,
			"auditfixture": scriptAuditFixture,
			"audittamper":  scriptAuditTamper,
		},
	})
}

func scriptMoat(ts *testscript.TestScript, neg bool, args []string) {
	env := &Env{Stdin: strings.NewReader(""), Stdout: ts.Stdout(), Stderr: ts.Stderr(), Getenv: ts.Getenv}
	code := Run(context.Background(), env, args)
	if code != 0 && !neg {
		ts.Fatalf("moat %s: exit %d", strings.Join(args, " "), code)
	}
	if code == 0 && neg {
		ts.Fatalf("moat %s: exit 0, want failure", strings.Join(args, " "))
	}
}

// fixtureAccount is the account ID auditfixture records on its later entries.
const fixtureAccount = "0123456789abcdef0123456789abcdef"

func scriptAuditFixture(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: auditfixture DATADIR N")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	i := 0
	// Sealed as a server seals it: a keyring in the data directory under a
	// KEK file beside it.
	dataDir := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(dataDir, 0o700))
	kek, err := seal.GenerateKeyFile(dataDir+".kek", nil)
	ts.Check(err)
	kr, err := seal.Open(seal.Config{Dir: dataDir, KEK: kek})
	ts.Check(err)
	l, err := audit.Open(audit.Config{
		Dir:    filepath.Join(dataDir, audit.DirName),
		Sealer: kr.AEAD(),
		Name:   "test-audit",
		Now:    func() time.Time { i++; return t0.Add(time.Duration(i) * time.Minute) },
	})
	ts.Check(err)
	defer l.Close()
	actions := []string{"node.join", "token.create", "svc.register", "policy.apply", "revoke"}
	for k := 0; k < n; k++ {
		en := audit.Entry{
			Actor: "spiffe://example.org/admin", Role: "admin",
			Action: actions[k%len(actions)], Target: fmt.Sprintf("target-%d", k), Result: "ok",
		}
		if k >= 3 {
			en.Detail = map[string]string{audit.DetailAccount: fixtureAccount}
		}
		ts.Check(l.Record(context.Background(), en))
	}
}

// scriptAuditTamper edits the entries file directly, as someone with write
// access to the data directory but without the signer key would.
func scriptAuditTamper(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: audittamper DATADIR flip|drop|swap I")
	}
	p := filepath.Join(ts.MkAbs(args[0]), audit.DirName, "entries")
	b, err := os.ReadFile(p)
	ts.Check(err)
	var frames [][]byte
	for len(b) >= 4 {
		n := int(binary.BigEndian.Uint32(b))
		frames = append(frames, bytes.Clone(b[:4+n]))
		b = b[4+n:]
	}
	i, err := strconv.Atoi(args[2])
	ts.Check(err)
	switch args[1] {
	case "flip":
		frames[i][len(frames[i])-3] ^= 0x01
	case "drop":
		frames = append(frames[:i], frames[i+1:]...)
	case "swap":
		frames[i], frames[i+1] = frames[i+1], frames[i]
	case "dup":
		frames = append(frames[:i], append([][]byte{frames[i]}, frames[i:]...)...)
	case "cut":
		frames[i] = frames[i][:3]
		frames = frames[:i+1]
	default:
		ts.Fatalf("audittamper: unknown op %q", args[1])
	}
	ts.Check(os.WriteFile(p, bytes.Join(frames, nil), 0o600))
}

// TestAuditLogHostileText: an entry holding what would act on a terminal
// (a clipboard write, a title, a line break that starts a row of its own,
// a direction override, a C1 control) and a field of 100 KiB, as someone
// holding the KEK could write one, reaches `moat audit log` as escapes,
// in the table and in JSON, one row per entry, the long field cut.
func TestAuditLogHostileText(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	kek, err := seal.GenerateKeyFile(dataDir+".kek", nil)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := seal.Open(seal.Config{Dir: dataDir, KEK: kek})
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(audit.Config{Dir: filepath.Join(dataDir, audit.DirName), Sealer: kr.AEAD(), Name: "test-audit"})
	if err != nil {
		t.Fatal(err)
	}
	const hostile = "x\x1b]52;c;cm0gLXJmIH4K\x07\x1b]0;title\x1b\\\r\n9999  2026-01-01T00:00:00Z  spiffe://example.org/admin/root  admin  ok\u202e\u009b2J"
	entries := []audit.Entry{
		{Actor: "spiffe://example.org/admin/a" + hostile, Role: "admin", Action: "svc.register" + hostile, Target: hostile, Result: "ok" + hostile,
			Detail: map[string]string{"reason" + hostile: hostile, audit.DetailAccount: hostile}},
		{Actor: "spiffe://example.org/admin/b", Role: "admin", Action: "policy.apply", Target: strings.Repeat("t", 100<<10), Result: "ok"},
	}
	for _, en := range entries {
		if err := l.Record(context.Background(), en); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	for _, out := range []string{"table", "json"} {
		code, stdout, stderr := runCLI(t, nil, "audit", "log", "--data-dir", dataDir, "--output", out)
		if code != 0 {
			t.Fatalf("audit log --output %s: exit %d: %s", out, code, stderr)
		}
		if i := strings.IndexFunc(stdout, func(r rune) bool {
			return r == '\x1b' || r == '\a' || r == '\r' || r == '\u202e' || r == '\u009b'
		}); i >= 0 {
			t.Errorf("--output %s: a raw control at byte %d: %q", out, i, stdout[max(0, i-20):min(len(stdout), i+20)])
		}
		lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
		want := len(entries)
		if out == "table" {
			want++ // the header
		}
		if len(lines) != want {
			t.Errorf("--output %s: %d lines, want %d: a field started a row of its own", out, len(lines), want)
		}
		if out == "table" && (len(lines[2]) > 2*maxCell+200 || !strings.Contains(lines[2], "…")) {
			t.Errorf("the 100 KiB target is not cut in the table: %d bytes", len(lines[2]))
		}
		if out == "json" && !strings.Contains(stdout, `\u001b]52;c;`) {
			t.Errorf("--output json: the escape is not shown as one:\n%.400s", stdout)
		}
	}
}
