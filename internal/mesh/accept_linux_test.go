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

	// Fill every free descriptor, then free them one at a time and dial the
	// mesh port through each: the kernel completes the handshake into the
	// listen backlog, and the agent's accept finds no descriptor left. (A
	// plain dial loop races the acceptor: when it keeps pace, the dialer
	// runs out first and nothing waits in the backlog.)
	var fillers []*os.File
	var flood []net.Conn
	defer func() {
		for _, f := range fillers {
			f.Close()
		}
		for _, c := range flood {
			c.Close()
		}
	}()
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			break
		}
		fillers = append(fillers, f)
	}
	if len(fillers) == 0 {
		t.Fatal("no descriptor could be opened under the lowered limit")
	}
	testkit.WaitFor(t, "a failed accept at the mesh port", func() bool {
		if p.b.m.Stats().AcceptFailures > 0 {
			return true
		}
		if len(fillers) > 0 {
			fillers[len(fillers)-1].Close()
			fillers = fillers[:len(fillers)-1]
		}
		if c, err := net.DialTimeout("tcp", p.b.m.Addr().String(), time.Second); err == nil {
			flood = append(flood, c)
		}
		return p.b.m.Stats().AcceptFailures > 0
	})
	restore()
	for _, f := range fillers {
		f.Close()
	}
	fillers = nil
	for _, c := range flood {
		c.Close()
	}
	flood = nil

	t.Log("the flood is over: a new tunnel is accepted")
	if got, err := call(p.a.local(t, "frontend", "api"), "after the flood"); err != nil || got != "after the flood" {
		t.Fatalf("call after the flood: %q, %v", got, err)
	}
}
