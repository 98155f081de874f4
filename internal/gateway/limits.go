package gateway

import (
	"hash/maphash"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"moat/internal/flow"
)

// rateStore holds one token bucket per (route, client) (clientKey: an IPv4
// address or IPv6 /64), at most limits.max_rate_clients of them, in shards
// with a lock each so that requests of different clients seldom wait on
// each other. Every request does a fixed amount of work: there is no sweep.
//
// A full shard forgets its least recently seen bucket, as nginx's
// limit_req zone does: newcomers are always served, whatever a spray of
// source addresses did to the table, and a client that keeps sending
// keeps its bucket. A client forgotten after falling silent for the
// whole of its shard's churn (max_rate_clients other clients seen since, in
// expectation; the shard a key lands in is keyed by a random seed) comes
// back with at most a fresh burst, which it may have earned by then
// anyway.
type rateStore struct {
	seed   maphash.Seed
	shards [rateShards]rateShard
}

const (
	rateShards = 16
	// defaultRateClients is limits.max_rate_clients' default: about 27
	// MiB of buckets at most.
	defaultRateClients = 1 << 17
)

type rateShard struct {
	mu      sync.Mutex // guards buckets, head and the list through it
	buckets map[rateKey]*bucket
	head    bucket // sentinel of the list, most recently seen first
	max     int    // buckets this shard holds at most
}

type rateKey struct {
	route  string
	client netip.Prefix
}

// bucket is a token bucket: tokens as of at, at most the route's burst.
type bucket struct {
	key        rateKey
	tokens     float64
	at         time.Time
	prev, next *bucket
}

// newRateStore holds at most size buckets (rounded up to a multiple of
// rateShards).
func newRateStore(size int) *rateStore {
	s := &rateStore{seed: maphash.MakeSeed()}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.max = shardMax(size)
		sh.buckets = map[rateKey]*bucket{}
		sh.head.prev, sh.head.next = &sh.head, &sh.head
	}
	return s
}

// carry is the rate store of a reloaded configuration holding at most size
// buckets: s itself when its size is unchanged, or a new store with s's
// buckets, each shard's most recently seen first, as many as it has room
// for. Either way every client keeps its bucket across a reload (a reload
// must not hand an abuser a fresh burst), and a bucket is refilled and
// clamped by the limits of its route as they are now: a raised burst is
// earned at the route's rate, a lowered one caps what a client holds.
// Requests still running under the old configuration may take a token
// from the old store while the new one is built.
func (s *rateStore) carry(size int) *rateStore {
	if shardMax(size) == s.shards[0].max {
		return s
	}
	n := newRateStore(size)
	n.seed = s.seed // each key stays in its shard
	for i := range s.shards {
		from, to := &s.shards[i], &n.shards[i]
		from.mu.Lock()
		for b := from.head.next; b != &from.head && len(to.buckets) < to.max; b = b.next {
			c := &bucket{key: b.key, tokens: b.tokens, at: b.at}
			c.prev, c.next = to.head.prev, &to.head // at the tail: the order kept
			c.prev.next, c.next.prev = c, c
			to.buckets[c.key] = c
		}
		from.mu.Unlock()
	}
	return n
}

// shardMax is how many buckets each shard of a store of size holds.
func shardMax(size int) int {
	return max(1, (size+rateShards-1)/rateShards)
}

// allow takes a token for (route, ip). When none is left it returns false
// and how long until one is.
func (s *rateStore) allow(route string, ip netip.Addr, rps float64, burst int, now time.Time) (bool, time.Duration) {
	if rps == 0 && burst == 0 {
		return true, 0
	}
	k := rateKey{route, flow.SourceKey(ip)}
	sh := &s.shards[maphash.Comparable(s.seed, k)%rateShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	b := sh.buckets[k]
	if b == nil {
		if len(sh.buckets) >= sh.max {
			old := sh.head.prev
			old.unlink()
			delete(sh.buckets, old.key)
			b = old // reused: no allocation for a churning table
		} else {
			b = &bucket{}
		}
		*b = bucket{key: k, tokens: float64(burst), at: now}
		sh.buckets[k] = b
	} else {
		b.unlink()
	}
	b.prev, b.next = &sh.head, sh.head.next
	b.prev.next, b.next.prev = b, b
	return b.take(now, rps, burst)
}

func (b *bucket) unlink() {
	b.prev.next, b.next.prev = b.next, b.prev
}

func (b *bucket) take(now time.Time, rps float64, burst int) (bool, time.Duration) {
	if d := now.Sub(b.at); d > 0 {
		b.tokens += d.Seconds() * rps
		b.at = now
	}
	b.tokens = min(float64(burst), b.tokens) // also when a reload lowered the burst
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	if rps <= 0 {
		return false, time.Second
	}
	return false, time.Duration((1 - b.tokens) / rps * float64(time.Second))
}

// len is the number of buckets held.
func (s *rateStore) len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.buckets)
		sh.mu.Unlock()
	}
	return n
}

// retryAfter is d in whole seconds, at least 1, for Retry-After.
func retryAfter(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// connLimiter caps concurrent connections per peer (clientKey). The cap is read on
// every accept so a reload can change it.
type connLimiter struct {
	net.Listener
	limit  func() int
	refuse func(ip netip.Addr, local net.Addr)

	mu    sync.Mutex // guards count
	count map[netip.Prefix]int
}

func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := addrIP(c.RemoteAddr())
		key := flow.SourceKey(ip)
		l.mu.Lock()
		if l.count == nil {
			l.count = map[netip.Prefix]int{}
		}
		if n := l.limit(); n > 0 && l.count[key] >= n {
			l.mu.Unlock()
			c.Close()
			if l.refuse != nil {
				l.refuse(ip, l.Addr())
			}
			continue
		}
		l.count[key]++
		l.mu.Unlock()
		return &limitedConn{Conn: c, l: l, key: key}, nil
	}
}

type limitedConn struct {
	net.Conn
	l    *connLimiter
	key  netip.Prefix
	once sync.Once
	// unserved: bytes of a request were read that the handler has not
	// been given (unserved.go).
	unserved atomic.Bool
	// h1: the TLS connection negotiated no HTTP/2, known from its first
	// request on (unserved.go).
	h1 atomic.Bool
}

func (c *limitedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		if c.l.count[c.key]--; c.l.count[c.key] <= 0 {
			delete(c.l.count, c.key)
		}
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

func addrIP(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return plainIP(ap.Addr())
}

// addrPort is a's address and port, IPv4 unmapped, or the zero value when
// a is not an IP address.
func addrPort(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case nil:
		return ap
	case *net.TCPAddr:
		ap = a.AddrPort()
	default:
		var err error
		if ap, err = netip.ParseAddrPort(a.String()); err != nil {
			return netip.AddrPort{}
		}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// plainIP is a in the form IP lists, rate limits and records compare: an
// IPv4-mapped address as IPv4, without an IPv6 zone ("fe80::1%eth0" is
// fe80::1). netip.Prefix.Contains is false for any zoned address, so a
// zone would walk past every ip_deny entry.
func plainIP(a netip.Addr) netip.Addr {
	return a.Unmap().WithZone("")
}

// clientIP returns the client's address and the X-Forwarded-For chain to
// send on. The header is believed only when the direct peer is a trusted
// proxy; then the chain is walked from the right past trusted proxies, and
// the first untrusted hop is the client. A hop is an address, with a port
// or in brackets as some proxies write it ("203.0.113.9:51234",
// "[2001:db8::1]:443"). known is false when the walk meets a hop it cannot
// read before an untrusted one: the client is then not known, and the
// address returned is the last trusted hop, which the IP lists must not
// be asked about (see ServeHTTP).
func clientIP(r *http.Request, trusted *prefixSet) (client netip.Addr, chain string, known bool) {
	peer := netip.Addr{}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		peer = plainIP(ap.Addr())
	}
	xff := r.Header.Values("X-Forwarded-For")
	if !trusted.contains(peer) {
		return peer, peer.String(), true
	}
	if len(xff) == 0 {
		// A trusted proxy that names the client only in RFC 7239's
		// Forwarded, which the gateway does not read, has not said
		// who the client is; one that names nobody is the client.
		return peer, peer.String(), len(r.Header.Values("Forwarded")) == 0
	}
	var hops []string
	for _, v := range xff {
		for _, h := range strings.Split(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hops = append(hops, h)
			}
		}
	}
	client, known = peer, true
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			known = false
			break
		}
		client = a
		if !trusted.contains(client) {
			break
		}
	}
	return client, strings.Join(append(hops, peer.String()), ", "), known
}

// parseHop reads one X-Forwarded-For hop: an IP address, bare, with a
// port, or in brackets, in the form the IP lists compare (plainIP).
func parseHop(h string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(h); err == nil {
		return plainIP(a), true
	}
	if ap, err := netip.ParseAddrPort(h); err == nil {
		return plainIP(ap.Addr()), true
	}
	if len(h) > 2 && h[0] == '[' && h[len(h)-1] == ']' {
		if a, err := netip.ParseAddr(h[1 : len(h)-1]); err == nil {
			return plainIP(a), true
		}
	}
	return netip.Addr{}, false
}
