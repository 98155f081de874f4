package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRestoreOldBackupTrustDomain: a backup made before backups recorded
// their trust domain (package backup's golden one) is refused by a
// restore that names the target's trust domain, and restored when the
// restore names none or allows another.
func TestRestoreOldBackupTrustDomain(t *testing.T) {
	old := filepath.Join("..", "backup", "testdata", "golden", "backup.moatbak")
	kek := filepath.Join(t.TempDir(), "kek")
	b, err := os.ReadFile(filepath.Join("..", "seal", "testdata", "golden", "kek"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kek, b, 0o600); err != nil {
		t.Fatal(err)
	}
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
