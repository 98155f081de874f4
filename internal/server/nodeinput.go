package server

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxMeshAddr bounds a mesh address: a DNS name of 253 bytes and a port.
const maxMeshAddr = 253 + 1 + 5

// forbiddenMeshNets are addresses a node may not name as its mesh
// address: peers would dial them for every call to the node's services.
// Link-local covers the cloud metadata address 169.254.169.254; the rest
// are the other providers' metadata and wire servers.
var forbiddenMeshNets = []netip.Prefix{
	netip.MustParsePrefix("169.254.0.0/16"),     // link-local, EC2/GCE/Azure metadata
	netip.MustParsePrefix("fe80::/10"),          // link-local
	netip.MustParsePrefix("fd00:ec2::254/128"),  // EC2 metadata over IPv6
	netip.MustParsePrefix("100.100.100.200/32"), // Alibaba Cloud metadata
	netip.MustParsePrefix("168.63.129.16/32"),   // Azure wire server
	netip.MustParsePrefix("0.0.0.0/8"),          // "this network"
	netip.MustParsePrefix("224.0.0.0/4"),        // multicast
	netip.MustParsePrefix("ff00::/8"),           // multicast
	netip.MustParsePrefix("240.0.0.0/4"),        // reserved, and broadcast
}

// validateMeshAddr checks the address a node says peers reach it at: a
// host (an IP address that is not unspecified, link-local, multicast, a
// metadata service or reserved; or a DNS name) and a port 1-65535.
// Loopback is allowed, for fleets of one host (moat dev, tests).
func validateMeshAddr(addr string) error {
	bad := func(why string) error {
		return errorf(http.StatusBadRequest, "mesh_addr %q: %s", trimForError(addr), why)
	}
	if len(addr) > maxMeshAddr {
		return bad("longer than a host and port can be")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return bad("want host:port")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 || strconv.Itoa(p) != port {
		return bad("the port must be 1-65535")
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		if ip.Zone() != "" {
			return bad("a scoped address is not reachable from other nodes")
		}
		if ip.IsUnspecified() {
			return bad("an unspecified address is not reachable from other nodes")
		}
		for _, n := range forbiddenMeshNets {
			if n.Contains(ip) {
				return bad("link-local, multicast, reserved and cloud metadata addresses are refused")
			}
		}
		return nil
	}
	if !validHostname(host) {
		return bad("the host is neither an IP address nor a DNS name")
	}
	return nil
}

// validHostname reports whether h is a DNS name: dot-separated labels of
// 1-63 letters, digits and '-', not starting or ending with '-'.
func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(h, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// What a node may do how often.
type limitKind int

const (
	limitMeshAddr    limitKind = iota // mesh address changes
	limitReattest                     // re-attestations by the node key
	limitHealth                       // listener health reports
	limitFlowBatches                  // flow batches
	limitFlowRecords                  // flow records
)

// nodeLimits are per-node token buckets: a node that floods the control
// plane (a compromised agent, a bug) is slowed alone.
type nodeLimits struct {
	mu sync.Mutex // guards m
	m  map[nodeLimitKey]*rate.Limiter
}

type nodeLimitKey struct {
	node string
	kind limitKind
}

// nodeLimit returns node's limiter of kind. The map holds one per node
// and kind: nodes are authenticated, so it grows only with the fleet.
func (s *Server) nodeLimit(node string, kind limitKind) *rate.Limiter {
	l := &s.limits
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[nodeLimitKey]*rate.Limiter{}
	}
	k := nodeLimitKey{node, kind}
	lim := l.m[k]
	if lim == nil {
		switch kind {
		case limitMeshAddr, limitReattest:
			lim = rate.NewLimiter(rate.Every(time.Minute), 2)
		case limitHealth:
			// An agent reports when its listeners change, and every
			// five minutes.
			lim = rate.NewLimiter(rate.Every(10*time.Second), 10)
		case limitFlowBatches:
			lim = rate.NewLimiter(rate.Limit(s.cfg.FlowLimits.BatchesPerSecond), s.cfg.FlowLimits.BatchBurst)
		case limitFlowRecords:
			lim = rate.NewLimiter(rate.Limit(s.cfg.FlowLimits.RecordsPerSecond), s.cfg.FlowLimits.RecordBurst)
		}
		l.m[k] = lim
	}
	return lim
}
