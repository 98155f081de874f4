package flow

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Filter selects records. Zero fields select everything.
type Filter struct {
	// From and To match the source and destination: a SPIFFE ID, a service
	// name, an endpoint name or an IP address.
	From, To string
	// Verdict is VerdictAllow, VerdictDeny or VerdictAudit.
	Verdict string
	// Rule is the deciding rule's name (or WAF rule ID, or analytic name).
	Rule string
	// Class is an OCSF class UID.
	Class int
	// Since is inclusive, Until exclusive.
	Since, Until time.Time
	// Limit caps how many records Query returns, keeping the newest; zero
	// means no cap.
	Limit int
}

// Match reports whether r passes f (Limit aside).
func (f *Filter) Match(r *Record) bool {
	c := ColumnsOf(r)
	switch {
	case !f.MatchColumns(r.ClassUID, &c):
		return false
	case !f.Since.IsZero() && r.Time < Millis(f.Since):
		return false
	case !f.Until.IsZero() && r.Time >= Millis(f.Until):
		return false
	}
	return true
}

// Validate checks f's fields.
func (f *Filter) Validate() error {
	switch f.Verdict {
	case "", VerdictAllow, VerdictDeny, VerdictAudit:
	default:
		return fmt.Errorf("flow: filter: unknown verdict %q (want %q, %q or %q)", f.Verdict, VerdictAllow, VerdictDeny, VerdictAudit)
	}
	if f.Limit < 0 {
		return fmt.Errorf("flow: filter: negative limit %d", f.Limit)
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return fmt.Errorf("flow: filter: since %s is not before until %s", f.Since.Format(time.RFC3339), f.Until.Format(time.RFC3339))
	}
	return nil
}

// span is f's time range in milliseconds, [lo, hi).
func (f *Filter) Span() (lo, hi int64) {
	lo, hi = 1, 1<<62
	if !f.Since.IsZero() {
		lo = Millis(f.Since)
	}
	if !f.Until.IsZero() {
		hi = Millis(f.Until)
	}
	return lo, hi
}

// matchRow reports whether a rollup entry passes f's non-time conditions,
// as where() selects rows in SQL.
func (f *Filter) MatchColumns(class int, c *Columns) bool {
	switch {
	case f.From != "" && f.From != c.Src && f.From != c.SrcName:
		return false
	case f.To != "" && f.To != c.Dst && f.To != c.DstName:
		return false
	case f.Verdict != "" && f.Verdict != c.Verdict:
		return false
	case f.Rule != "" && f.Rule != c.Rule:
		return false
	case f.Class != 0 && f.Class != class:
		return false
	}
	return true
}

// row is the query columns of a record, stored in plaintext beside its body.
type Columns struct {
	Src, SrcName, Dst, DstName, Verdict, Rule string
	Bytes                                     int64
}

// EndpointKey is the key a record's side is queried, summed and drawn
// under (ColumnsOf): its SPIFFE ID, else its service name, else its name,
// else its address; name is its service name. An identity a refused peer
// only claimed is no part of it (Moat.Claimed).
func EndpointKey(e *Endpoint) (key, name string) {
	if e == nil {
		return "", ""
	}
	switch {
	case e.UID != "":
		key = e.UID
	case e.SvcName != "":
		key = e.SvcName
	case e.Name != "":
		key = e.Name
	default:
		key = e.IP
	}
	return key, e.SvcName
}

// KeyService returns the service of trust domain td that a key
// (EndpointKey) is read as, where services are shown by name (the
// dashboard's graph): a service's SPIFFE ID in td gives its name, a key
// that is neither a SPIFFE ID nor an IP address is taken for a name; any
// other key (an address, another identity) gives "". The control plane
// refuses a node's record whose key so names a service of another node.
func KeyService(key string, td spiffeid.TrustDomain) string {
	if !strings.Contains(key, "://") {
		if _, err := netip.ParseAddr(key); err == nil {
			return ""
		}
		return key
	}
	id, err := spiffeid.FromString(key)
	if err != nil || !id.MemberOf(td) {
		return ""
	}
	name, ok := strings.CutPrefix(id.Path(), "/svc/")
	if !ok || strings.Contains(name, "/") {
		return ""
	}
	return name
}

// ClaimedSide is the endpoint of r that Moat.Claimed is about, the peer
// of the side that wrote r: the source of an inbound record (or of one
// that says no direction), the destination of an outbound one.
func ClaimedSide(r *Record) *Endpoint {
	if r.ConnectionInfo != nil && r.ConnectionInfo.DirectionID == DirectionOutbound {
		return r.DstEndpoint
	}
	return r.SrcEndpoint
}

// ShownClaim is how side e of r is shown where a reader looks for who it
// was: "claimed: ID" when e is the side r's claim is about and has no
// SPIFFE ID, service name or name of its own (so it would otherwise be
// shown by its address), else "".
func ShownClaim(r *Record, e *Endpoint) string {
	if r.Unmapped == nil || r.Unmapped.Claimed == "" || e == nil || e != ClaimedSide(r) ||
		e.UID != "" || e.SvcName != "" || e.Name != "" {
		return ""
	}
	return "claimed: " + r.Unmapped.Claimed
}

// MoveClaim moves the claim of a refused mesh handshake that an older
// agent wrote as the peer's name (a SPIFFE ID alone, with no SPIFFE ID or
// service name beside it) to Moat.Claimed, where no key reads it.
func MoveClaim(r *Record) {
	e := ClaimedSide(r)
	if r.Unmapped == nil || r.Unmapped.Kind != "handshake" || r.Unmapped.Claimed != "" ||
		e == nil || e.UID != "" || e.SvcName != "" || e.Name == "" {
		return
	}
	if _, err := spiffeid.FromString(e.Name); err != nil {
		return
	}
	r.Unmapped.Claimed, e.Name = e.Name, ""
}

// columns extracts the query columns: each side's identity (SPIFFE ID,
// else service name, else name, else IP), the verdict, the deciding rule
// (firewall rule, else detection analytic, else first WAF rule) and bytes.
func ColumnsOf(r *Record) Columns {
	var c Columns
	c.Src, c.SrcName = EndpointKey(r.SrcEndpoint)
	c.Dst, c.DstName = EndpointKey(r.DstEndpoint)
	c.Verdict = r.Verdict()
	switch {
	case r.FirewallRule != nil && r.FirewallRule.Name != "":
		c.Rule = r.FirewallRule.Name
	case r.FirewallRule != nil && r.FirewallRule.UID != "":
		c.Rule = r.FirewallRule.UID
	case r.FindingInfo != nil && r.FindingInfo.Analytic != nil && r.FindingInfo.Analytic.Name != "":
		c.Rule = r.FindingInfo.Analytic.Name
	case r.Unmapped != nil && len(r.Unmapped.Rules) > 0:
		c.Rule = r.Unmapped.Rules[0]
	}
	c.Bytes = r.TrafficBytes()
	return c
}

// talkerWeight is what a record adds to the talkers rollup: how many
// connections it starts and how many bytes it carries. A mesh connection
// is recorded at both ends; the destination's records decide, so the
// source's (direction outbound) add nothing, and of the destination's only
// the first of a connection (Open, or a Refuse or Fail) counts it, while
// each one's bytes (those since the connection's previous record) add up
// to its total. A record without a connection ID (from a producer that
// writes one record per connection) counts as one connection.
func TalkerWeight(r *Record, bytes int64) (flows, b int64) {
	if r.ClassUID != ClassNetworkActivity || r.ConnectionInfo == nil || r.ConnectionInfo.UID == "" {
		return 1, bytes
	}
	if r.ConnectionInfo.DirectionID == DirectionOutbound {
		return 0, 0
	}
	switch r.ActivityID {
	case ActivityOpen, ActivityRefuse, ActivityFail:
		return 1, bytes
	}
	return 0, bytes
}

// Edge is the traffic from one source to one destination with one
// verdict: what a service graph draws as one line.
type Edge struct {
	Src     string `json:"src"`
	Dst     string `json:"dst"`
	Verdict string `json:"verdict"`
	Flows   int64  `json:"flows"`
	Bytes   int64  `json:"bytes"`
}

// RankEdges orders edges most bytes first (ties: more flows, then by
// source, destination and verdict) and keeps the first n (all when n is
// zero): the order of every edges answer, one server's or a cluster's.
func RankEdges(out []Edge, n int) []Edge {
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		switch {
		case a.Bytes != b.Bytes:
			return a.Bytes > b.Bytes
		case a.Flows != b.Flows:
			return a.Flows > b.Flows
		case a.Src != b.Src:
			return a.Src < b.Src
		case a.Dst != b.Dst:
			return a.Dst < b.Dst
		}
		return a.Verdict < b.Verdict
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

// EdgeOf is what r adds to its edge, weighed as the store's rollup weighs
// it: a mesh connection counts once, at its destination's first record,
// and each of the destination's records adds the bytes since the one
// before. A live view that adds records as they come (a follow stream)
// then agrees with Edges over the same records.
func EdgeOf(r *Record) Edge {
	c := ColumnsOf(r)
	flows, b := TalkerWeight(r, c.Bytes)
	return Edge{Src: c.Src, Dst: c.Dst, Verdict: c.Verdict, Flows: flows, Bytes: b}
}

// Talker is the traffic between one source and one destination.
type Talker struct {
	Src    string `json:"src"`
	Dst    string `json:"dst"`
	Flows  int64  `json:"flows"`
	Bytes  int64  `json:"bytes"`
	Denied int64  `json:"denied"` // flows with verdict deny
}

// RankTalkers orders talkers most bytes first (ties: more flows, then by
// name) and keeps the first n: the order of every top-talkers answer,
// one server's or a cluster's.
func RankTalkers(ts []Talker, n int) []Talker {
	sort.Slice(ts, func(i, j int) bool {
		a, b := ts[i], ts[j]
		if a.Bytes != b.Bytes {
			return a.Bytes > b.Bytes
		}
		if a.Flows != b.Flows {
			return a.Flows > b.Flows
		}
		if a.Src != b.Src {
			return a.Src < b.Src
		}
		return a.Dst < b.Dst
	})
	if len(ts) > n {
		ts = ts[:n]
	}
	return ts
}

// AnyNode stands for every node in a cell of a partition that does not
// know its nodes.
const AnyNode = "*"

// NodeHours is one node's hours in a store, as runs [from, to) of hour
// numbers (hours since the Unix epoch, UTC).
type NodeHours struct {
	Node  string     `json:"node"`
	Hours [][2]int64 `json:"hours"`
}

// TalkerRecord is one record's weight in the talkers (talkerWeight).
type TalkerRecord struct {
	UID string `json:"uid"`
	Edge
}

// Talker is the record's part of its pair's talker.
func (w TalkerRecord) Talker() Talker {
	t := Talker{Src: w.Src, Dst: w.Dst, Flows: w.Flows, Bytes: w.Bytes}
	if w.Verdict == VerdictDeny {
		t.Denied = w.Flows
	}
	return t
}

// SeenUIDs remembers the last n record UIDs added: what a reader merging
// several streams of records (a cluster's servers, a reconnection's
// overlap) uses to show each record once, in bounded memory.
type SeenUIDs struct {
	m    map[string]bool
	ring []string
	next int
}

// NewSeenUIDs remembers up to n UIDs (at least 1).
func NewSeenUIDs(n int) *SeenUIDs {
	return &SeenUIDs{m: make(map[string]bool, max(n, 1)), ring: make([]string, max(n, 1))}
}

// Add reports whether uid is new, remembering it and forgetting the
// oldest beyond n.
func (s *SeenUIDs) Add(uid string) bool {
	if s.m[uid] {
		return false
	}
	if old := s.ring[s.next]; old != "" {
		delete(s.m, old)
	}
	s.ring[s.next] = uid
	s.next = (s.next + 1) % len(s.ring)
	s.m[uid] = true
	return true
}
