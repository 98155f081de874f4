package waf

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

const heapChild = "MOAT_WAF_HEAP_CHILD"

// maxRuleSetHeap is what the default rule set (CRS at paranoia level 1
// and moat's rules) may keep of the heap once loaded, with the process's
// own start-up: every gateway with the WAF on holds it, and at Go's
// default GOGC its heap grows to twice that before a collection. It was
// 83 MB while @pm's phrase lists kept the library's DFAs (pm.go); it is
// about 31 MB.
const maxRuleSetHeap = 48 << 20

// TestRuleSetHeapChild loads the default rule set in a process of its
// own (TestRuleSetHeap starts it: phrase lists are shared between rule
// sets, so another test's would be counted or hidden) and prints the
// heap it keeps.
func TestRuleSetHeapChild(t *testing.T) {
	if os.Getenv(heapChild) == "" {
		return
	}
	w, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	fmt.Printf("heap %d\n", m.HeapAlloc)
	runtime.KeepAlive(w)
}

// TestRuleSetHeap: the loaded default rule set keeps at most
// maxRuleSetHeap of live heap.
func TestRuleSetHeap(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestRuleSetHeapChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), heapChild+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var heap int64 = -1
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "heap "); ok {
			heap, err = strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("child printed %q", l)
			}
		}
	}
	if heap < 0 {
		t.Fatalf("child printed no heap:\n%s", out)
	}
	t.Logf("the default rule set keeps %.1f MiB of heap", float64(heap)/(1<<20))
	if heap > maxRuleSetHeap {
		t.Errorf("the default rule set keeps %.1f MiB of heap, want at most %d MiB", float64(heap)/(1<<20), maxRuleSetHeap>>20)
	}
}
