package egress

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/policy"
	"moat/internal/testkit"
)

// TestEgressListenersHoldIPv6Loopback: the node's CONNECT and SNI
// listeners and a service's external upstream port were held on
// 127.0.0.1 alone, so any local user bound the same ports on ::1, where
// apps told "localhost" (HTTPS_PROXY=http://localhost:3128) connect
// first, and took their requests. They are held, and served, on ::1 too.
func TestEgressListenersHoldIPv6Loopback(t *testing.T) {
	pol, err := policy.Parse([]byte(intentions))
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewProxy(ProxyConfig{
		Node: "node", TrustDomain: spiffeid.RequireTrustDomainFromString("example.org"),
		ConnectAddr: "127.0.0.1:0", SNIAddr: "127.0.0.1:0", Policy: func() *policy.Table { return pol },
		PeerUID: func(net.Conn) (int, error) { return 1234, nil },
		Callers: apiCaller, DialTimeout: testkit.WaitLimit,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetExternal([]External{{Service: "api", Host: "api.example.test", Port: 443, LocalAddr: "127.0.0.1:0"}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	for what, addr := range map[string]net.Addr{"connect": p.Addr("connect"), "sni": p.Addr("sni"), "external upstream": p.ExternalAddr("api", "api.example.test")} {
		six := fmt.Sprintf("[::1]:%d", addr.(*net.TCPAddr).Port)
		if ln, err := net.Listen("tcp", six); err == nil {
			ln.Close()
			t.Errorf("the %s listener's port was free on %s", what, six)
		}
	}
	six := fmt.Sprintf("[::1]:%d", p.Addr("connect").(*net.TCPAddr).Port)
	c, err := net.Dial("tcp", six)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testkit.WaitLimit))
	fmt.Fprintf(c, "CONNECT evil.example.test:443 HTTP/1.1\r\nHost: evil.example.test:443\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("the CONNECT listener on %s: %v %v, want its refusal", six, resp, err)
	}
}
