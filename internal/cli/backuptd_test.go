package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"moat/internal/backup"
)

// TestRestoreOldBackupTrustDomain: a backup made before backups recorded
// their trust domain (package backup's golden one) is refused by a
// restore that names the target's trust domain, and restored when the
// restore names none or allows another.
func TestRestoreOldBackupTrustDomain(t *testing.T) {
	old := filepath.Join("..", "backup", "testdata", "golden", "backup.moatbak")
	kek := goldenKEK(t)
	target := filepath.Join(t.TempDir(), "restored")
	code, _, stderr := runCLI(t, nil, "backup", "restore", "--data-dir", target, "--kek-file", kek, "--trust-domain", "example.org", old)
	if code == 0 || !strings.Contains(stderr, `the backup records no trust domain (made before backups did) and the target is trust domain "example.org"`) {
		t.Fatalf("exit %d, %q: want the old backup refused for a named trust domain", code, stderr)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Fatalf("a refused restore left %q: %v", target, err)
	}
	for i, args := range [][]string{{}, {"--trust-domain", "example.org", "--allow-other-trust-domain"}} {
		dir := filepath.Join(t.TempDir(), "restored")
		argv := append([]string{"backup", "restore", "--data-dir", dir, "--kek-file", kek}, args...)
		if code, stdout, stderr := runCLI(t, nil, append(argv, old)...); code != 0 || !strings.Contains(stdout, "restored ") {
			t.Fatalf("restore %d %v: exit %d, %s %s", i, args, code, stdout, stderr)
		}
	}
}

// TestRestoreOldBackupCA: a backup made before backups recorded their CA
// (package backup's golden one) is refused by a restore that names the
// target's root, and restored when it allows another CA.
func TestRestoreOldBackupCA(t *testing.T) {
	old := filepath.Join("..", "backup", "testdata", "golden", "backup.moatbak")
	kek := goldenKEK(t)
	root := strings.Repeat("ab", 32)
	target := filepath.Join(t.TempDir(), "restored")
	code, _, stderr := runCLI(t, nil, "backup", "restore", "--data-dir", target, "--kek-file", kek, "--ca-fingerprint", root, old)
	if code == 0 || !strings.Contains(stderr, "the backup records no CA (made before backups did) and the target's root is sha256 "+root+"; if it is this cluster's, --allow-other-ca restores it; nothing was restored") {
		t.Fatalf("exit %d, %q: want the old backup refused for a named CA", code, stderr)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Fatalf("a refused restore left %q: %v", target, err)
	}
	if code, stdout, stderr := runCLI(t, nil, "backup", "restore", "--data-dir", target, "--kek-file", kek, "--ca-fingerprint", root, "--allow-other-ca", old); code != 0 || !strings.Contains(stdout, "restored ") {
		t.Fatalf("restore with --allow-other-ca: exit %d, %s %s", code, stdout, stderr)
	}
}

// TestSameCA: a backup made during a root rotation records both roots and
// is the cluster's by either; another CA's is refused naming every root
// it records, and nothing is checked when the target names no root.
func TestSameCA(t *testing.T) {
	a, b, c := strings.Repeat("a", 64), strings.Repeat("b", 64), strings.Repeat("c", 64)
	rotating := &backup.Manifest{CARoots: []string{a, b}}
	for _, tc := range []struct {
		root  string
		allow bool
		m     *backup.Manifest
		err   string
	}{
		{root: a, m: rotating},
		{root: b, m: rotating},
		{root: "", m: rotating},
		{root: "", m: &backup.Manifest{}},
		{root: c, allow: true, m: rotating},
		{root: c, m: rotating, err: "the backup is of the CA with roots sha256 " + a + ", sha256 " + b + ", the target's root is sha256 " + c + "; --allow-other-ca"},
		{root: c, m: &backup.Manifest{CARoots: []string{a}}, err: "the backup is of the CA with root sha256 " + a + ", the target's root is sha256 " + c},
		{root: c, m: &backup.Manifest{}, err: "the backup records no CA"},
	} {
		err := sameCA(tc.root, tc.allow)(tc.m)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("root %.8s allow %v, roots %v: %v, want it restored", tc.root, tc.allow, tc.m.CARoots, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("root %.8s allow %v, roots %v: %v, want %q", tc.root, tc.allow, tc.m.CARoots, err, tc.err)
		}
	}
}

// goldenKEK is a file holding package seal's golden KEK, which opens
// package backup's golden backup.
func goldenKEK(t *testing.T) string {
	t.Helper()
	kek := filepath.Join(t.TempDir(), "kek")
	b, err := os.ReadFile(filepath.Join("..", "seal", "testdata", "golden", "kek"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kek, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return kek
}
