package cmdline

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// TestShedExecutable sheds the test binary's own pages, as the agent does
// once ready, and checks with the kernel's account of the process
// (/proc/self/smaps) that every mapping of the executable now reads at
// random (VmFlags "rr": no read-ahead, so what comes back comes back a
// page at a time) and that the process runs on.
func TestShedExecutable(t *testing.T) {
	if err := shedExecutable(); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var cur string
	n := 0
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		switch {
		case len(fs) >= 5 && strings.Contains(fs[0], "-") && !strings.HasSuffix(fs[0], ":"):
			cur = ""
			if len(fs) >= 6 {
				cur = strings.Join(fs[5:], " ")
			}
		case len(fs) > 0 && fs[0] == "VmFlags:" && cur == exe:
			n++
			if !strings.Contains(sc.Text(), " rr") {
				t.Errorf("a mapping of %s is not marked for random reads: %s", exe, sc.Text())
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("no mapping of %s in /proc/self/smaps", exe)
	}
}
