package dnsfilter

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"moat/internal/flow"
	"moat/internal/testkit"
)

// TestLocalUserCannotTakeEveryQuery: a local user (uid 65534) sends the
// filter on 127.0.0.1 more queries than it answers at once, for names
// its resolver is slow to answer (a domain whose servers the user runs,
// below an allowed "*."). Past the user's share the queries are answered
// REFUSED at once and recorded; another user's query, from the same
// address, is still forwarded and answered. Over TCP, the user's
// connections past its share are closed, and the other user's served.
func TestLocalUserCannotTakeEveryQuery(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("creating sockets owned by other uids needs root (CI runs as root)")
	}
	release := make(chan struct{})
	var held atomic.Int32
	recs := &flow.Memory{}
	const slots, share, flood = 8, 2, 20
	udp, tcp := loopback(t, Config{Allowed: allowAll, Flows: recs, MaxInFlight: slots, MaxClientInFlight: share, MaxConns: slots, MaxClientConns: share,
		Timeout: 2 * testkit.WaitLimit, IdleTimeout: 2 * testkit.WaitLimit}, func(w dns.ResponseWriter, q *dns.Msg) {
		if strings.HasPrefix(q.Question[0].Name, "slow-") {
			held.Add(1)
			<-release
		}
		m := new(dns.Msg)
		m.SetReply(q)
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30}, A: net.IPv4(192, 0, 2, 7)})
		w.WriteMsg(m)
	})
	defer close(release)
	const user, other = 65534, 0

	t.Logf("uid %d sends %d queries, each from a socket of its own, none of them answered yet when the next goes", user, flood)
	for i := range flood {
		c := &dns.Conn{Conn: testkit.DialAs(t, user, "udp", udp)}
		q := new(dns.Msg)
		q.SetQuestion("slow-"+strconv.Itoa(i)+".user.example.", dns.TypeA)
		if err := c.WriteMsg(q); err != nil {
			t.Fatal(err)
		}
		if i < share {
			testkit.WaitFor(t, "the user's query at its resolver", func() bool { return held.Load() == int32(i+1) })
			continue
		}
		c.SetReadDeadline(time.Now().Add(testkit.WaitLimit))
		if m, err := c.ReadMsg(); err != nil || m.Rcode != dns.RcodeRefused {
			t.Fatalf("query %d, past the user's share of %d: %v, %v; want REFUSED", i, share, m, err)
		}
	}
	if n := held.Load(); n != share {
		t.Fatalf("%d of the user's queries reached its resolver, want its share of %d", n, share)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitLimit)
	defer cancel()
	if _, err := recs.Wait(ctx, func(r flow.Record) bool { return strings.Contains(r.Unmapped.Reason, errClientBusy.Error()) }); err != nil {
		t.Error("no record of a query refused past the user's share")
	}

	t.Logf("uid %d asks over UDP from the same address: answered", other)
	ask := func(c net.Conn) (*dns.Msg, error) {
		dc := &dns.Conn{Conn: c}
		q := new(dns.Msg)
		q.SetQuestion("www.example.com.", dns.TypeA)
		c.SetDeadline(time.Now().Add(testkit.WaitLimit))
		if err := dc.WriteMsg(q); err != nil {
			return nil, err
		}
		return dc.ReadMsg()
	}
	if m, err := ask(testkit.DialAs(t, other, "udp", udp)); err != nil || m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
		t.Fatalf("another user's query while the flood holds its share: %v, %v; want the resolver's answer", m, err)
	}

	t.Logf("over TCP, uid %d holds its share of connections; one more is closed, and uid %d's is served", user, other)
	for range share {
		// Answered, so held: REFUSED, as the user's share of queries
		// is its UDP ones' still.
		if m, err := ask(testkit.DialAs(t, user, "tcp", tcp)); err != nil || m.Rcode != dns.RcodeRefused {
			t.Fatalf("the user's TCP query, its queries' share spent over UDP: %v, %v; want REFUSED", m, err)
		}
	}
	extra := testkit.DialAs(t, user, "tcp", tcp)
	extra.SetDeadline(time.Now().Add(testkit.WaitLimit))
	if _, err := extra.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("a connection past the user's share: read %v, want it closed", err)
	}
	if m, err := ask(testkit.DialAs(t, other, "tcp", tcp)); err != nil || m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
		t.Fatalf("another user's TCP query: %v, %v; want the resolver's answer", m, err)
	}
}
