//go:build linux

package mesh

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"moat/internal/flow"
	"moat/internal/testkit"
)

// TestUpstreamAdmitsOnlyItsUID is the attack: frontend is registered for
// uid 1234; a process of uid 4321 on the same node called api as frontend
// through frontend's upstream listener.
func TestUpstreamAdmitsOnlyItsUID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("creating sockets owned by other uids needs root (CI runs as root)")
	}
	p := newPair(t)
	uid := 1234
	fe := Service{Name: "frontend", Port: 3000, AppAddr: "127.0.0.1:1", UID: &uid, Upstreams: []Upstream{{Service: "api", Port: 8080}}}
	if err := p.a.m.SetServices([]Service{fe}); err != nil {
		t.Fatal(err)
	}
	addr := p.a.local(t, "frontend", "api")
	talk := func(c net.Conn) (string, error) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(testkit.WaitLimit))
		fmt.Fprintf(c, "who am i\n")
		line, err := bufio.NewReader(c).ReadString('\n')
		return strings.TrimSuffix(line, "\n"), err
	}
	t.Log("uid 4321 uses frontend's upstream port: refused")
	if got, err := talk(testkit.DialAs(t, 4321, "tcp", addr)); err == nil {
		t.Fatalf("uid 4321 called api as frontend: %q", got)
	}
	r := p.a.flows.waitFor(t, "uid refusal", isFlow(flow.DirectionOutbound, "frontend", "api"))
	if r.Unmapped.ReasonCode != flow.ReasonUIDMismatch || !strings.Contains(r.Unmapped.Reason, "uid 4321") {
		t.Fatalf("record %+v", r.Unmapped)
	}
	t.Log("root is no exception")
	if got, err := talk(testkit.DialAs(t, 0, "tcp", addr)); err == nil {
		t.Fatalf("uid 0 called api as frontend: %q", got)
	}
	t.Log("uid 1234, frontend's own, gets through")
	if got, err := talk(testkit.DialAs(t, uid, "tcp", addr)); err != nil || got != "who am i" {
		t.Fatalf("uid %d: %q %v", uid, got, err)
	}
	if st := p.a.m.Stats(); st.UIDRefused != 2 {
		t.Fatalf("uid refusals counted %d", st.UIDRefused)
	}
}

// TestUpstreamHoldsIPv6Loopback is the attack: the agent held frontend's
// upstream port on 127.0.0.1 alone, so uid 4321 bound the same port on
// ::1, where an app told "localhost" connects first (getaddrinfo puts ::1
// ahead), and took frontend's calls to api: its requests, credentials
// and all, answered as api. The agent holds the port on ::1 too, serving
// it as on 127.0.0.1.
func TestUpstreamHoldsIPv6Loopback(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("creating sockets owned by other uids needs root (CI runs as root)")
	}
	p := newPair(t)
	uid := 1234
	fe := Service{Name: "frontend", Port: 3000, AppAddr: "127.0.0.1:1", UID: &uid, Upstreams: []Upstream{{Service: "api", Port: 8080}}}
	if err := p.a.m.SetServices([]Service{fe}); err != nil {
		t.Fatal(err)
	}
	addr := p.a.local(t, "frontend", "api")
	_, port, _ := net.SplitHostPort(addr)
	six := net.JoinHostPort("::1", port)
	runtime.LockOSThread()
	prev, err := unix.SetfsuidRetUid(4321)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", six)
	_, _ = unix.SetfsuidRetUid(prev)
	runtime.UnlockOSThread()
	if err == nil {
		ln.Close()
		t.Fatalf("uid 4321 bound %s, frontend's upstream port on IPv6 loopback", six)
	}
	c := testkit.DialAs(t, uid, "tcp", six)
	_ = c.SetDeadline(time.Now().Add(testkit.WaitLimit))
	fmt.Fprintf(c, "who am i\n")
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "who am i\n" {
		t.Fatalf("frontend through %s: %q %v", six, line, err)
	}
	if got, err := bufio.NewReader(testkit.DialAs(t, 4321, "tcp", six)).ReadString('\n'); err == nil {
		t.Fatalf("uid 4321 called api as frontend through %s: %q", six, got)
	}
}
