package mesh

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"moat/internal/flow"
	"moat/internal/testkit"
)

// TestCallerToldWhyStreamRefused: a stream the destination refuses on a
// live tunnel for its peer's identity (here, an SVID node-b's clock finds
// expired, on a tunnel a held connection keeps open) was closed without an
// answer, so the caller recorded "unavailable" and its app learnt nothing.
// The destination now answers with the code, and the caller's record and
// Dial's error say it.
func TestCallerToldWhyStreamRefused(t *testing.T) {
	p := newPair(t)
	addr := p.a.local(t, "frontend", "api")
	held, err := net.DialTimeout("tcp", addr, testkit.WaitLimit)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	_ = held.SetDeadline(time.Now().Add(testkit.WaitLimit))
	if _, err := fmt.Fprintf(held, "hold\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(held).ReadString('\n'); err != nil {
		t.Fatalf("held connection: %v", err)
	}

	p.b.clock.Advance(2 * time.Hour) // past frontend's SVID, at node-b only
	if got, err := call(addr, "late"); err == nil {
		t.Fatalf("a stream of an expired SVID was answered: %q", got)
	}
	p.a.flows.waitFor(t, "the caller's record of the refused stream, code expired", func(r flow.Record) bool {
		return r.ConnectionInfo.DirectionID == outboundDir && r.SrcEndpoint.SvcName == "frontend" && r.Unmapped.ReasonCode == flow.ReasonExpired
	})
	ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitLimit)
	defer cancel()
	_, err = p.a.m.Dial(ctx, "frontend", "api", 8080)
	var refused *RefusedError
	if !errors.As(err, &refused) || refused.Response.Code != flow.ReasonExpired || !strings.Contains(err.Error(), "("+flow.ReasonExpired+")") {
		t.Fatalf("Dial of an expired SVID: %v, want a refusal saying %q", err, flow.ReasonExpired)
	}
}
