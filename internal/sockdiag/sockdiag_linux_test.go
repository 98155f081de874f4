package sockdiag

import (
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"moat/internal/testkit"
)

func TestPeerUID(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		addr := "127.0.0.1:0"
		if network == "tcp6" {
			addr = "[::1]:0"
		}
		ln, err := net.Listen(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		c, err := net.Dial(network, ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		uid, err := PeerUID(s)
		if err != nil || uid != os.Getuid() {
			t.Errorf("%s: PeerUID = %d, %v; want %d", network, uid, err, os.Getuid())
		}
		// Once both ends are closed, the peer's socket waits out its
		// TIME_WAIT, owned by nobody.
		c.Close()
		if _, err := s.Read(make([]byte, 1)); err == nil {
			t.Fatalf("%s: read after the peer closed", network)
		}
		s.Close()
		deadline := time.Now().Add(testkit.WaitLimit)
		for {
			uid, err := PeerUID(s)
			if err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: PeerUID of a closed peer = %d after %s, want an error", network, uid, testkit.WaitLimit)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

func TestOwner(t *testing.T) {
	u, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	from := u.LocalAddr().(*net.UDPAddr).AddrPort()
	if uid, ok := Owner("udp", from); !ok || uid != os.Getuid() {
		t.Errorf("Owner(udp %s) = %d, %v; want %d", from, uid, ok, os.Getuid())
	}
	// A socket bound to every address answers for each of them.
	w, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	wild := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), w.LocalAddr().(*net.UDPAddr).AddrPort().Port())
	if uid, ok := Owner("udp", wild); !ok || uid != os.Getuid() {
		t.Errorf("Owner(udp %s, bound to every address) = %d, %v; want %d", wild, uid, ok, os.Getuid())
	}

	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tfrom := c.LocalAddr().(*net.TCPAddr).AddrPort()
	if uid, ok := Owner("tcp", tfrom); !ok || uid != os.Getuid() {
		t.Errorf("Owner(tcp %s) = %d, %v; want %d", tfrom, uid, ok, os.Getuid())
	}
	// A listening socket is no client's.
	ln2, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	if uid, ok := Owner("tcp", ln2.Addr().(*net.TCPAddr).AddrPort()); ok {
		t.Errorf("Owner of a listener = %d, want none", uid)
	}
	// A port nothing holds has no owner.
	u2, _ := net.ListenPacket("udp4", "127.0.0.1:0")
	free := u2.LocalAddr().(*net.UDPAddr).AddrPort()
	u2.Close()
	if uid, ok := Owner("udp", free); ok {
		t.Errorf("Owner of a free port = %d, want none", uid)
	}
}
