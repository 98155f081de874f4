//go:build linux

package mesh

import (
	"bufio"
	"fmt"
	"moat/internal/flow"
	"moat/internal/testkit"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// dialAs connects to addr from a socket owned by uid, as a process of
// that uid would: the kernel takes a socket's owner from the creating
// thread's filesystem uid. Needs root.
func dialAs(t *testing.T, uid int, addr string) net.Conn {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev, err := unix.SetfsuidRetUid(uid)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", addr, testkit.WaitLimit)
	_, _ = unix.SetfsuidRetUid(prev)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

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
	if got, err := talk(dialAs(t, 4321, addr)); err == nil {
		t.Fatalf("uid 4321 called api as frontend: %q", got)
	}
	r := p.a.flows.waitFor(t, "uid refusal", isFlow(flow.DirectionOutbound, "frontend", "api"))
	if r.Unmapped.ReasonCode != flow.ReasonUIDMismatch || !strings.Contains(r.Unmapped.Reason, "uid 4321") {
		t.Fatalf("record %+v", r.Unmapped)
	}
	t.Log("root is no exception")
	if got, err := talk(dialAs(t, 0, addr)); err == nil {
		t.Fatalf("uid 0 called api as frontend: %q", got)
	}
	t.Log("uid 1234, frontend's own, gets through")
	if got, err := talk(dialAs(t, uid, addr)); err != nil || got != "who am i" {
		t.Fatalf("uid %d: %q %v", uid, got, err)
	}
	if st := p.a.m.Stats(); st.UIDRefused != 2 {
		t.Fatalf("uid refusals counted %d", st.UIDRefused)
	}
}
