package testkit

import (
	"net"
	"strconv"
	"testing"
)

// TestPortsNeverRepeat: runs and single ports come from the range, are
// free when handed out, and are never handed out twice, even when a port
// of the range is taken by another listener. The range lies below the
// ephemeral range and below the ranges internal/cli and internal/faults use.
func TestPortsNeverRepeat(t *testing.T) {
	p := NewPorts(19000, 19040)
	held, err := net.Listen("tcp", "127.0.0.1:19020")
	if err == nil {
		defer held.Close()
	}
	seen := map[int]bool{}
	base, err := p.Run(8)
	if err != nil {
		t.Fatal(err)
	}
	for i := base; i < base+8; i++ {
		seen[i] = true
	}
	more, err := p.Distinct(20)
	if err != nil {
		t.Fatal(err)
	}
	for _, port := range more {
		if seen[port] {
			t.Fatalf("port %d handed out twice", port)
		}
		seen[port] = true
	}
	for port := range seen {
		if port < 19000 || port >= 19040 {
			t.Errorf("port %d outside the range", port)
		}
		if held != nil && port == 19020 {
			t.Errorf("port 19020 is held by a listener but was handed out")
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			t.Errorf("port %d handed out but not free: %v", port, err)
			continue
		}
		l.Close()
	}
	if _, err := p.Distinct(40); err == nil {
		t.Error("a range of 40 ports, 28 given and one held, handed out 40 more")
	}
}
