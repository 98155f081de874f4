package egress

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/flow"
	"moat/internal/policy"
	"moat/internal/testkit"
)

// TestEgressConnectionsPerUID: the node's egress listeners take 1,024
// connections at once, shared by every caller, and a connection waiting
// for its CONNECT request or its ClientHello holds its slot for up to ten
// seconds, a relayed one for as long as it lasts. One service, one
// compromised process, could hold every slot and cut every other service
// of the node off from the outside. A uid now holds at most
// MaxConnsPerUID of them; past that its connection is closed and the
// refusal recorded, while other uids are served.
func TestEgressConnectionsPerUID(t *testing.T) {
	pol, err := policy.Parse([]byte(intentions))
	if err != nil {
		t.Fatal(err)
	}
	recs := &flow.Memory{}
	// The loopback address a test connection comes from stands for its
	// uid: 127.0.0.2 is uid 2.
	p, err := NewProxy(ProxyConfig{
		Node: "node", TrustDomain: spiffeid.RequireTrustDomainFromString("example.org"),
		ConnectAddr: "127.0.0.1:0", Policy: func() *policy.Table { return pol },
		PeerUID: func(c net.Conn) (int, error) {
			ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
			if err != nil {
				return 0, err
			}
			return int(ap.Addr().As4()[3]), nil
		},
		Callers:        func(uid int) []string { return []string{fmt.Sprintf("svc%d", uid)} },
		MaxConnsPerUID: 2, Flows: recs, DialTimeout: testkit.WaitLimit,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	dialAs := func(uid int) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(uid))}}
		c, err := d.Dial("tcp", p.Addr("connect").String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(testkit.WaitLimit))
		t.Cleanup(func() { c.Close() })
		return c
	}
	// served reports whether c gets an answer to a CONNECT (the empty
	// policy refuses it: 403), rather than being closed unanswered.
	served := func(c net.Conn) bool {
		t.Helper()
		fmt.Fprintf(c, "CONNECT blocked.example.test:443 HTTP/1.1\r\nHost: blocked.example.test:443\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("CONNECT answered %d, want 403", resp.StatusCode)
		}
		return true
	}

	t.Log("uid 2 holds two connections without a request")
	held := []net.Conn{dialAs(2), dialAs(2)}
	third := dialAs(2)
	if _, err := third.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("uid 2's third connection: read %v, want it closed", err)
	}
	r := wait(t, recs, "uid 2's refused third connection", func(r flow.Record) bool { return r.Unmapped.ReasonCode == flow.ReasonEgressBusy })
	if r.Unmapped.Reason == "" || r.SrcEndpoint == nil || r.SrcEndpoint.IP != "127.0.0.2" {
		t.Errorf("refusal record: %+v", r)
	}

	t.Log("uid 3 is served meanwhile")
	if !served(dialAs(3)) {
		t.Fatal("uid 3 was refused while uid 2 held its connections")
	}

	t.Log("once uid 2 lets one go, it is served again")
	held[0].Close()
	testkit.WaitFor(t, "uid 2 to be served again", func() bool { return served(dialAs(2)) })
	_ = held[1]
}
