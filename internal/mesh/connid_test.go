package mesh

import (
	"context"
	"net"
	"testing"
	"time"

	"moat/internal/flow"
	"moat/internal/testkit"
)

// TestConnIDCannotBeBorrowed: a caller writes its own tunnel header, and
// so the connection ID in it. Given the ID node-b recorded for another
// caller's live connection, or the one that caller sent, it cannot have
// its own connection recorded under that ID: node-b records the ID derived
// from what was sent and the caller's verified identity, on a version 2
// tunnel too, where the caller, not the destination, would otherwise
// decide. Both ends of an honest connection still share its ID.
func TestConnIDCannotBeBorrowed(t *testing.T) {
	p := newPair(t)
	// frontend's live connection, through node-a.
	c, err := dialLine(p.a.local(t, "frontend", "api"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.c.Close()
	if err := c.ping("hello"); err != nil {
		t.Fatal(err)
	}
	victim := p.b.flows.waitFor(t, "the victim's open record", func(r flow.Record) bool {
		return r.ActivityID == flow.ActivityOpen && r.SrcEndpoint.SvcName == "frontend"
	})
	uid := victim.ConnectionInfo.UID

	// gateway, also allowed to api, sends that ID, and then one it chose
	// that frontend's agent might send too.
	gateway, _ := p.a.ids.Certificate("gateway")
	sess, err := rawTunnel(t, p, gateway, "api")
	if err != nil {
		t.Fatal(err)
	}
	chosen := flow.NewID()
	for _, sent := range []string{uid, chosen} {
		st, err := sess.Open(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		hdr, err := AppendRequest(nil, Request{Service: "api", Port: 8080, ConnID: sent}, headerV2)
		if err != nil {
			t.Fatal(err)
		}
		_ = st.SetDeadline(time.Now().Add(testkit.WaitLimit))
		if _, err := st.Write(hdr); err != nil {
			t.Fatal(err)
		}
		if resp, err := ReadResponse(st, headerV2); err != nil || !resp.Allowed() {
			t.Fatalf("gateway's stream: %+v, %v", resp, err)
		}
		st.Close()
		rec := p.b.flows.waitFor(t, "gateway's open record", func(r flow.Record) bool {
			return r.ActivityID == flow.ActivityOpen && r.SrcEndpoint.SvcName == "gateway" && r.ConnectionInfo.UID != "" &&
				r.ConnectionInfo.UID == connIDOf(r.SrcEndpoint.UID, sent)
		})
		if got := rec.ConnectionInfo.UID; got == uid || got == sent {
			t.Errorf("gateway sent %s and node-b recorded its connection as %s (frontend's live connection: %s)", sent, got, uid)
		}
	}
	if connIDOf("spiffe://example.org/svc/frontend", chosen) == connIDOf("spiffe://example.org/svc/gateway", chosen) {
		t.Error("one ID sent by two identities is recorded alike")
	}

	// The honest connection's two ends share its ID.
	c.c.Close()
	out := p.a.flows.waitFor(t, "the source's record", isFlow(flow.DirectionOutbound, "frontend", "api"))
	if out.ConnectionInfo.UID != uid {
		t.Errorf("source recorded %s, destination %s", out.ConnectionInfo.UID, uid)
	}
}

// dialLine connects to an echo at addr.
func dialLine(addr string) (*lineConn, error) {
	c, err := (&net.Dialer{Timeout: testkit.WaitLimit}).Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &lineConn{c}, nil
}
