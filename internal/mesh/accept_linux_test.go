package mesh

import (
	"net"
	"os"
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
	restore := testkit.LimitOpenFiles(t, 16)

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

// TestMeshPortBoundsPendingHandshakes: one address opening more
// connections to the mesh port than a peer ever needs, each sending the
// first byte of a TLS record and nothing more, held a descriptor per
// connection for the handshake deadline, until the agent had none left
// and its accepts failed: for the flood's length no tunnel could be
// opened to the node. The agent now holds at most 64 pending handshakes
// per source and closes the rest at once, so under the same descriptor
// limit it never runs out, and a tunnel from another address is opened
// during the flood.
func TestMeshPortBoundsPendingHandshakes(t *testing.T) {
	p := newPair(t)
	const flood = maxPendingPerSource + 64
	// Room for the flood's own ends, the pending handshakes one source may
	// hold, and a tunnel and a call; not for the whole flood at the agent.
	testkit.LimitOpenFiles(t, flood+maxPendingPerSource+32)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: testkit.WaitLimit}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range flood {
		c, err := d.Dial("tcp", p.b.m.Addr().String())
		if err != nil {
			t.Fatalf("flood connection %d: %v", len(conns), err)
		}
		c.Write([]byte{0x16})
		conns = append(conns, c)
	}
	testkit.WaitFor(t, "the flood met at the mesh port", func() bool {
		st := p.b.m.Stats()
		return st.HandshakesShed > 0 || st.AcceptFailures > 0
	})
	t.Log("during the flood, a tunnel from another address")
	if got, err := call(p.a.local(t, "frontend", "api"), "during the flood"); err != nil || got != "during the flood" {
		t.Fatalf("call during the flood: %q, %v", got, err)
	}
	st := p.b.m.Stats()
	t.Logf("closed at once: %d; failed accepts: %d", st.HandshakesShed, st.AcceptFailures)
	if st.AcceptFailures != 0 {
		t.Fatalf("the agent ran out of descriptors: %d failed accepts", st.AcceptFailures)
	}
}
