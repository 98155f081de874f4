package dnsfilter

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"moat/internal/flow"
	"moat/internal/testkit"
)

// loopback runs a filter on 127.0.0.1:0 (UDP and TCP) in front of a
// resolver of the test's (UDP and TCP), answering with answer, and
// returns the filter's addresses.
func loopback(t *testing.T, cfg Config, answer dns.HandlerFunc) (udp, tcp string) {
	t.Helper()
	rpc, rln := resolverSockets(t)
	for _, srv := range []*dns.Server{{PacketConn: rpc, Handler: answer}, {Listener: rln, Handler: answer}} {
		go srv.ActivateAndServe()
		t.Cleanup(func() { srv.Shutdown() })
	}
	res := netip.MustParseAddrPort(rpc.LocalAddr().String())
	cfg.Resolvers = func() []netip.AddrPort { return []netip.AddrPort{res} }
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Serve(ctx, []net.PacketConn{pc}, []net.Listener{ln}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return pc.LocalAddr().String(), ln.Addr().String()
}

// resolverSockets are a resolver stand-in's UDP and TCP sockets on one
// port of 127.0.0.1, as a resolver's address serves both. The port is the
// UDP socket's, handed out by the kernel; another process may hold it for
// TCP (an outgoing connection's ephemeral port), and then another is
// tried.
func resolverSockets(t *testing.T) (net.PacketConn, net.Listener) {
	t.Helper()
	var last error
	for range 50 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		pc.Close()
		last = err
	}
	t.Fatalf("no port of 127.0.0.1 free for both UDP and TCP: %v", last)
	return nil, nil
}

func allowAll(string) (string, bool) { return "all", true }

// A resolver's datagram that answers another question (another ID, a
// spoofed or late answer, another name) is not passed on: the client is
// answered SERVFAIL, not with it.
func TestAnswerMustAnswerTheQuestion(t *testing.T) {
	udp, _ := loopback(t, Config{Allowed: allowAll, Timeout: time.Second}, func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		if strings.HasPrefix(q.Question[0].Name, "id.") {
			m.Id++
		} else {
			m.Question[0].Name = "other.example."
		}
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: m.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30}, A: net.IPv4(192, 0, 2, 9)})
		w.WriteMsg(m)
	})
	for _, name := range []string{"id.example.", "name.example."} {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		resp, _, err := (&dns.Client{Timeout: testkit.WaitLimit}).Exchange(m, udp)
		if err != nil || resp.Rcode != dns.RcodeServerFailure || len(resp.Answer) != 0 {
			t.Errorf("%s: %v %v, want SERVFAIL and no answer", name, resp, err)
		}
	}
}

// Over TCP a client that announces a message past MaxQuery is cut off
// and recorded, and the filter holds MaxConns connections: one past them
// is closed at once, while the ones held are still answered.
func TestTCPBounds(t *testing.T) {
	recs := &flow.Memory{}
	_, tcp := loopback(t, Config{Allowed: allowAll, Flows: recs, MaxConns: 1, IdleTimeout: 2 * testkit.WaitLimit}, func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		w.WriteMsg(m)
	})
	big, err := net.Dial("tcp", tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	big.SetDeadline(time.Now().Add(testkit.WaitLimit))
	big.Write(binary.BigEndian.AppendUint16(nil, MaxQuery+1))
	if _, err := big.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("a message announced past MaxQuery: read %v, want the connection closed", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitLimit)
	defer cancel()
	if _, err := recs.Wait(ctx, func(r flow.Record) bool {
		return r.Unmapped.ReasonCode == flow.ReasonDNSRefused && strings.Contains(r.Unmapped.Reason, errTooLarge.Error())
	}); err != nil {
		t.Error("no record of the oversized query")
	}

	held, err := dns.Dial("tcp", tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	held.SetDeadline(time.Now().Add(testkit.WaitLimit))
	q := new(dns.Msg)
	q.SetQuestion("www.example.com.", dns.TypeA)
	if err := held.WriteMsg(q); err != nil {
		t.Fatal(err)
	}
	if _, err := held.ReadMsg(); err != nil {
		t.Fatalf("the first connection: %v", err)
	}
	second, err := net.Dial("tcp", tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	second.SetDeadline(time.Now().Add(testkit.WaitLimit))
	if _, err := second.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("a connection past MaxConns: read %v, want it closed", err)
	}
	if err := held.WriteMsg(q); err != nil {
		t.Fatal(err)
	}
	if _, err := held.ReadMsg(); err != nil {
		t.Fatalf("the held connection after the refused one: %v", err)
	}
}
