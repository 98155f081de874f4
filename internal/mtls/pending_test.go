package mtls

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
)

// TestPendingBounds: the bounds per source (an IPv6 /64 is one
// source) and in all, and a place given back once.
func TestPendingBounds(t *testing.T) {
	p := Pending{PerSource: 64, Total: 4096}
	addr := func(s string) net.Addr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
	var releases []func()
	for i := range p.PerSource {
		r, ok := p.Take(addr(fmt.Sprintf("[2001:db8::%x]:1000", i+1)))
		if !ok {
			t.Fatalf("connection %d of one /64 refused", i)
		}
		releases = append(releases, r)
	}
	if _, ok := p.Take(addr("[2001:db8::ffff]:1000")); ok {
		t.Fatal("a connection past the bound of one /64 was admitted")
	}
	if r, ok := p.Take(addr("[2001:db8:0:1::1]:1000")); !ok {
		t.Fatal("another /64 was refused")
	} else {
		r()
	}
	releases[0]()
	releases[0]()
	if _, ok := p.Take(addr("[2001:db8::ffff]:1000")); !ok {
		t.Fatal("a released place was not given back")
	}
	if _, ok := p.Take(addr("[2001:db8::fffe]:1000")); ok {
		t.Fatal("a place released twice was given back twice")
	}
	q := Pending{PerSource: 64, Total: 4096}
	for i := range q.Total {
		if _, ok := q.Take(addr(fmt.Sprintf("10.%d.%d.%d:1", i>>16&255, i>>8&255, i&255))); !ok {
			t.Fatalf("connection %d refused below the bound in all", i)
		}
	}
	if _, ok := q.Take(addr("192.0.2.1:1")); ok {
		t.Fatal("a connection past the bound in all was admitted")
	}
}

// TestPendingByAddress: places held by peers that proved who they are
// (established mesh tunnels) are counted per address, not per IPv6 /64: a
// cloud subnet is one /64 for all its machines (an AWS VPC subnet's IPv6
// range), and a fleet there would share one source's places.
func TestPendingByAddress(t *testing.T) {
	p := Pending{PerSource: 2, Total: 100, ByAddress: true}
	addr := func(s string) net.Addr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
	for i := range 10 {
		for j := range p.PerSource {
			if _, ok := p.Take(addr(fmt.Sprintf("[2001:db8::%x]:%d", i+1, 1000+j))); !ok {
				t.Fatalf("place %d of machine %d in one /64 refused", j+1, i+1)
			}
		}
	}
	if _, ok := p.Take(addr("[2001:db8::1]:2000")); ok {
		t.Fatal("a place past the bound of one address was admitted")
	}
	if _, ok := p.Take(addr("[::ffff:192.0.2.1]:1")); !ok {
		t.Fatal("an IPv4-mapped address was refused")
	}
	if _, ok := p.Take(addr("192.0.2.1:2")); !ok {
		t.Fatal("a second place of an IPv4 address was refused")
	}
	if _, ok := p.Take(addr("192.0.2.1:3")); ok {
		t.Fatal("an IPv4 address and its mapped form were counted apart")
	}
}

// TestPendingTakeAs: the places of each proven identity from one address
// are counted apart, and all of them count toward the bound in all.
func TestPendingTakeAs(t *testing.T) {
	p := Pending{PerSource: 2, Total: 5, ByAddress: true}
	a := net.TCPAddrFromAddrPort(netip.MustParseAddrPort("192.0.2.1:1"))
	for range p.PerSource {
		if _, ok := p.TakeAs(a, "spiffe://example.org/svc/frontend"); !ok {
			t.Fatal("a place of frontend refused below its bound")
		}
	}
	if _, ok := p.TakeAs(a, "spiffe://example.org/svc/frontend"); ok {
		t.Fatal("a place of frontend past its bound was admitted")
	}
	for range p.PerSource {
		if _, ok := p.TakeAs(a, "spiffe://example.org/svc/gateway"); !ok {
			t.Fatal("gateway, from frontend's address, was refused for frontend's places")
		}
	}
	if _, ok := p.Take(a); !ok {
		t.Fatal("the address alone was refused for its identities' places")
	}
	if _, ok := p.TakeAs(a, "spiffe://example.org/svc/batch"); ok {
		t.Fatal("a place past the bound in all was admitted")
	}
}
