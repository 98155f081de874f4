package cmdline

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// shedExecutable marks every mapping of the running executable for random
// access (no read-ahead), drops the pages of its read-only mappings (code,
// constants, tables: clean, so nothing is lost) and asks the kernel to
// evict from the page cache what no process maps any more. Pages the
// process touches afterwards come back one 4 KiB page each, read on
// demand, instead of the large folios read-ahead fills the page cache
// with at start-up, each of which a fault maps whole (on Linux 6.x with
// large folios a touch maps up to 150 KiB). Writable mappings (the data
// and its copy-on-write pages) are left alone. Pages another process maps
// (a second process of the same executable) stay in the page cache.
func shedExecutable() error {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return err
	}
	maps, err := os.Open("/proc/self/maps")
	if err != nil {
		return err
	}
	defer maps.Close()
	var errs []error
	sc := bufio.NewScanner(maps)
	for sc.Scan() {
		// start-end perms offset dev inode path
		f := strings.Fields(sc.Text())
		if len(f) < 6 || strings.Join(f[5:], " ") != exe {
			continue
		}
		lo, hi, _ := strings.Cut(f[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			return fmt.Errorf("/proc/self/maps: bad range %q", f[0])
		}
		if err := madvise(start, end-start, unix.MADV_RANDOM); err != nil {
			errs = append(errs, err)
			continue
		}
		if !strings.Contains(f[1], "w") {
			if err := madvise(start, end-start, unix.MADV_DONTNEED); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(errs) > 0 {
		return fmt.Errorf("madvise: %w", errs[0])
	}
	ef, err := os.Open(exe)
	if err != nil {
		return err
	}
	defer ef.Close()
	// Pages not yet written back (an executable installed just before it
	// started) cannot be evicted: write them first.
	if err := unix.Fdatasync(int(ef.Fd())); err != nil {
		return err
	}
	return unix.Fadvise(int(ef.Fd()), 0, 0, unix.FADV_DONTNEED)
}

// madvise is madvise(2) on a range of the process's own mappings, given by
// address (not a Go pointer: the range is the executable's).
func madvise(addr, n uint64, advice int) error {
	if _, _, e := unix.Syscall(unix.SYS_MADVISE, uintptr(addr), uintptr(n), uintptr(advice)); e != 0 {
		return e
	}
	return nil
}
