//go:build linux

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"moat/internal/netlab"
)

// asOtherUID returns setpriv and a copy of the running test binary that
// other uids may run (removed when the test ends), for a test that plays
// a local user of another uid through the binary itself. Needs root.
func asOtherUID(t *testing.T) (setpriv, bin string) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Fatal("running the client as other uids (setpriv) needs root")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Fatalf("setpriv (Debian package util-linux) is needed: %v", err)
	}
	bin, err = netlab.SelfCopy("")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(bin) // 0755: other uids reach the sockets in it
	t.Cleanup(func() { os.RemoveAll(dir) })
	return setpriv, bin
}
