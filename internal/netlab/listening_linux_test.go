package netlab

import (
	"net"
	"net/netip"
	"os"
	"slices"
	"testing"
)

// TestListening finds this process's own listeners, IPv4 and IPv6, and
// not a connected socket.
func TestListening(t *testing.T) {
	l4, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l4.Close()
	want := []netip.AddrPort{l4.Addr().(*net.TCPAddr).AddrPort()}
	if l6, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		defer l6.Close()
		want = append(want, l6.Addr().(*net.TCPAddr).AddrPort())
	}
	c, err := net.Dial("tcp", l4.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := Listening(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("Listening = %v, want %v among them", got, w)
		}
	}
	if local := c.LocalAddr().(*net.TCPAddr).AddrPort(); slices.Contains(got, local) {
		t.Errorf("Listening lists the connected socket %v", local)
	}
}
