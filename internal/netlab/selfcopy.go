package netlab

import (
	"io"
	"os"
	"path/filepath"
)

// SelfCopy copies the running executable (a test binary, say) into dir,
// or a new temporary directory when dir is empty, mode 0755, and makes dir
// 0755, so that a test can run it again as an unprivileged uid (setpriv)
// whatever the build cache's modes. It returns the copy's path; the caller
// removes its directory.
func SelfCopy(dir string) (string, error) {
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "moat-selfcopy-"); err != nil {
			return "", err
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, filepath.Base(self))
	src, err := os.Open(self)
	if err != nil {
		return "", err
	}
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return "", err
	}
	_, err = io.Copy(dst, src)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	return bin, err
}
