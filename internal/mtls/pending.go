package mtls

import (
	"net"
	"net/netip"
	"sync"

	"moat/internal/flow"
)

// Pending bounds the connections of a TLS listener that are in their
// handshake, per source (flow.SourceKey: an IPv4 address, an IPv6 /64)
// and in all. Anyone who reaches such a port may open connections and
// send nothing, each held until the handshake deadline: without a bound,
// a flood from one address holds a descriptor per connection until the
// process has none left, and then it can open nothing at all. A
// connection past a bound is to be closed at once. The zero value admits
// nothing; set both bounds.
//
// ByAddress counts each address as a source of its own, an IPv6 address
// too: for places held by peers that proved who they are (a mesh port's
// established tunnels), where a cloud subnet's one /64 holds a whole fleet.
type Pending struct {
	PerSource, Total int
	ByAddress        bool

	mu       sync.Mutex
	total    int
	bySource map[pendingKey]int
}

// pendingKey is a source: its address (or /64), and the identity it
// proved, when the caller counts identities apart (TakeAs).
type pendingKey struct {
	src netip.Prefix
	who string
}

// Take admits a connection from addr to its handshake, or reports false
// when a bound is reached. release, called when the handshake has ended
// (any number of times), gives its place back.
func (p *Pending) Take(addr net.Addr) (release func(), ok bool) {
	return p.TakeAs(addr, "")
}

// TakeAs is Take for a peer that proved who it is: the places of each
// identity from an address are counted apart, so that one workload's
// flood does not take the places of the node's other services.
func (p *Pending) TakeAs(addr net.Addr, who string) (release func(), ok bool) {
	key := pendingKey{who: who}
	if ap, err := netip.ParseAddrPort(addr.String()); err == nil {
		if a := ap.Addr().Unmap().WithZone(""); p.ByAddress {
			key.src = netip.PrefixFrom(a, a.BitLen())
		} else {
			key.src = flow.SourceKey(a)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.total >= p.Total || p.bySource[key] >= p.PerSource {
		return nil, false
	}
	if p.bySource == nil {
		p.bySource = map[pendingKey]int{}
	}
	p.total++
	p.bySource[key]++
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.total--
			if p.bySource[key]--; p.bySource[key] == 0 {
				delete(p.bySource, key)
			}
		})
	}, true
}
