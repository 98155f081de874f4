//go:build unix

package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckJoinInConfig: a configuration file that gives the join token
// (join:) is refused when every local user may read it and warned about
// when others may access it otherwise; one without join: is its own
// business, whatever its mode.
func TestCheckJoinInConfig(t *testing.T) {
	const tok = "moat-join-0123456789abcdef0123456789abcdef.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		name       string
		join       bool
		mode       os.FileMode
		warn, fail string
	}{
		{name: "owner's", join: true, mode: 0o600},
		{name: "group may read", join: true, mode: 0o640, warn: "has mode 0640, which its group may read, the join token with it: give the token in join_file"},
		{name: "others may write", join: true, mode: 0o602, warn: "has mode 0602, which users other than its owner may access, and it holds the join token"},
		{name: "everyone may read", join: true, mode: 0o644, fail: "join: " + "%s has mode 0644, which every local user may read, the join token with it"},
		{name: "everyone may read, group not", join: true, mode: 0o604, fail: "has mode 0604, which every local user may read"},
		{name: "no token", mode: 0o644},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "agent.yaml")
			src := "node: n1\n"
			if tc.join {
				src += "join: " + tok + "\n"
			}
			if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			warn, err := CheckJoinInConfig(path)
			if fail := strings.ReplaceAll(tc.fail, "%s", path); (err == nil) != (fail == "") || err != nil && !strings.Contains(err.Error(), fail) {
				t.Errorf("err = %v, want one containing %q", err, fail)
			}
			if (warn == "") != (tc.warn == "") || !strings.Contains(warn, tc.warn) || tc.warn != "" && !strings.HasPrefix(warn, path) {
				t.Errorf("warning %q, want one naming %s containing %q", warn, path, tc.warn)
			}
		})
	}
}
