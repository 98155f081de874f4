package mesh

import (
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"moat/internal/testkit"
)

// TestMeshPortSurvivesDescriptorExhaustion: a flood of connections to the
// mesh port that never start their handshake (anyone who reaches the port
// can send one) uses up the agent's file descriptors, so accepting fails
// with EMFILE. The agent rides it out: once the flood ends, a new tunnel
// is accepted. A mesh that gave up at the first failed accept would close
// every tunnel and stop serving for good.
func TestMeshPortSurvivesDescriptorExhaustion(t *testing.T) {
	p := newPair(t)
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	low := old
	low.Cur = uint64(len(fds) + 16)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer restore()

	var flood []net.Conn
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	for len(flood) < 64 {
		c, err := net.DialTimeout("tcp", p.b.m.Addr().String(), time.Second)
		if err != nil {
			break // this process is out of descriptors too
		}
		flood = append(flood, c)
	}
	testkit.WaitFor(t, "a failed accept at the mesh port", func() bool { return p.b.m.Stats().AcceptFailures > 0 })
	restore()
	for _, c := range flood {
		c.Close()
	}
	flood = nil

	t.Log("the flood is over: a new tunnel is accepted")
	if got, err := call(p.a.local(t, "frontend", "api"), "after the flood"); err != nil || got != "after the flood" {
		t.Fatalf("call after the flood: %q, %v", got, err)
	}
}
