package mesh

import (
	"net"
	"net/netip"
	"sync"

	"moat/internal/flow"
)

// Connections to the mesh port in their handshake are bounded, per source
// and in all: anyone who reaches the port may open connections and send
// nothing, and each is held for the handshake deadline. Without a bound a
// flood from one address held a descriptor per connection until the
// agent had none left, and then no new tunnel, app connection or call to
// the control plane could be opened. A connection past a bound is closed
// at once and counted (Stats.HandshakesShed).
const (
	// maxPendingPerSource bounds one source's (an IPv4 address, an IPv6
	// /64) connections in their handshake: a peer agent opens one tunnel
	// per service pair it calls, a handful at once.
	maxPendingPerSource = 64
	// maxPendingHandshakes bounds them in all, far below the agent unit's
	// 65536 descriptors.
	maxPendingHandshakes = 4096
)

// pendingHandshakes counts the connections in their handshake.
type pendingHandshakes struct {
	mu       sync.Mutex
	total    int
	bySource map[netip.Prefix]int
}

// take admits a connection from addr to its handshake, or reports false
// when a bound is reached. release, called once when the handshake ends,
// gives its place back.
func (p *pendingHandshakes) take(addr net.Addr) (release func(), ok bool) {
	var key netip.Prefix
	if ap, err := netip.ParseAddrPort(addr.String()); err == nil {
		key = flow.SourceKey(ap.Addr())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.total >= maxPendingHandshakes || p.bySource[key] >= maxPendingPerSource {
		return nil, false
	}
	if p.bySource == nil {
		p.bySource = map[netip.Prefix]int{}
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
