package mesh

import (
	"context"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"moat/internal/flow"
	"moat/internal/testkit"
)

// stuckApp is a loopback listener with no backlog that never accepts:
// past the one connection its queue holds, the kernel drops the SYNs of
// new ones, whose dials wait.
func stuckApp(t *testing.T) string {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*unix.SockaddrInet4).Port}).String()
}

// TestAppDialsBoundedPerCaller: an allowed caller opens stream after
// stream to a service whose app does not accept, each holding a
// descriptor while node-b's dial of the app waits. Past
// maxDialsPerSource of its dials waiting, its new streams are refused at
// once, "overloaded", and counted; another service calling from the same
// address is served meanwhile.
func TestAppDialsBoundedPerCaller(t *testing.T) {
	f := newFixture(t)
	stuck, app := stuckApp(t), startApp(t, echo)
	pol := func(c *Config) { c.Policy = mustPolicy(t, bufferPolicy) }
	b := f.newAgent(t, "node-b", []Service{
		{Name: "api", Port: 8080, AppAddr: stuck},
		{Name: "db", Port: 5432, AppAddr: app},
	}, pol, func(c *Config) { c.DialTimeout = time.Hour })
	a := f.newAgent(t, "node-a", []Service{
		{Name: "gateway", Port: 3001, AppAddr: app, Upstreams: []Upstream{{Service: "db", Port: 5432}}},
	}, pol)
	frontend := f.issue(t, "frontend", time.Hour)
	sess := dialTunnel(t, b.m.Addr().String(), frontend, "api")

	// In steps, so that node-b takes each stream before the next arrive
	// (yamux resets a stream that finds its accept backlog full).
	const step, extra = 64, 8
	var streams []net.Conn
	for len(streams) < maxDialsPerSource+extra {
		for range min(step, maxDialsPerSource+extra-len(streams)) {
			st, err := sess.Open(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			hdr, err := AppendRequest(nil, Request{Service: "api", Port: 8080, ConnID: flow.NewID()}, headerV2)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Write(hdr); err != nil {
				t.Fatal(err)
			}
			streams = append(streams, st)
		}
		testkit.WaitFor(t, "node-b taking the streams", func() bool {
			return b.m.Stats().StreamsIn >= int64(len(streams))
		})
	}
	// Only refused streams are answered, and those whose dial the app's
	// queue took; the others wait for their dial for the test's life.
	answers := make(chan Response, len(streams))
	for _, st := range streams {
		go func() {
			if resp, err := ReadResponse(st, headerV2); err == nil && !resp.Allowed() {
				answers <- resp
			}
		}()
	}
	select {
	case resp := <-answers:
		if resp.Code != flow.ReasonOverloaded {
			t.Errorf("a stream answered %d %q (%s), want a refusal %q", resp.Status, resp.Code, resp.Reason, flow.ReasonOverloaded)
		}
	case <-time.After(testkit.WaitLimit):
		t.Fatal("no stream past the bound refused")
	}
	if got := b.m.Stats().DialsShed; got < 1 || got > extra {
		t.Errorf("%d streams refused; %d are past the bound, less the one the app's queue took", got, extra)
	}
	if got, err := call(a.local(t, "gateway", "db"), "still served"); err != nil || got != "still served" {
		t.Fatalf("another service from the same address: %q, %v", got, err)
	}
	b.flows.waitFor(t, "the refusal's record", func(r flow.Record) bool {
		return r.Unmapped != nil && r.Unmapped.ReasonCode == flow.ReasonOverloaded && r.SrcEndpoint.SvcName == "frontend"
	})
}
