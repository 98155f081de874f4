package mesh

import (
	"testing"
	"time"

	"moat/internal/flow"
	"moat/internal/testkit"
)

// TestDeniedStreamFloodIsBounded: a workload with a valid SVID but no
// intention allowing it (batch → api) opens stream after stream on its
// tunnel. Each refusal was one record at the destination, so it filled the
// spool and the node's flow quota as fast as it could ask. Its refusals
// pass the refusal gate, keyed by its identity and address: the first are
// written in full, the rest summarised; and the records weigh the
// whole flood, as detection counts them (summaries by what they
// summarise), so deny_burst still fires on it.
func TestDeniedStreamFloodIsBounded(t *testing.T) {
	p := newPair(t)
	const flood = 250 // past deny_burst's default threshold of 200 a minute
	addr := p.a.local(t, "batch", "api")
	for i := range flood {
		if _, err := call(addr, "hello"); err == nil {
			t.Fatalf("call %d of batch → api was answered", i)
		}
	}
	denied := func(r flow.Record) bool {
		return r.ConnectionInfo.DirectionID == inboundDir && r.SrcEndpoint.SvcName == "batch" && r.Unmapped.ReasonCode == flow.ReasonPolicyDenied
	}
	count := func() (full, suppressed int) {
		p.b.flows.mu.Lock()
		defer p.b.flows.mu.Unlock()
		for _, r := range p.b.flows.all {
			switch {
			case !denied(r):
			case r.Unmapped.Suppressed > 0:
				suppressed += r.Unmapped.Suppressed
			default:
				full++
			}
		}
		return full, suppressed
	}
	// Every refusal is counted by the time the caller sees its stream
	// closed but the last few, which the destination may still be
	// recording: wait for them, then flush.
	deadline := time.Now().Add(testkit.WaitLimit)
	for {
		p.b.m.flushRefusals()
		full, suppressed := count()
		if full+suppressed == flood {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d refusals recorded in full and %d summarised, want %d in all", full, suppressed, flood)
		}
		time.Sleep(10 * time.Millisecond)
	}
	full, suppressed := count()
	if full < flow.GateClientBurst || suppressed == 0 {
		t.Errorf("%d of %d refusals recorded in full, %d summarised: want the first %d in full and the rest summarised",
			full, flood, suppressed, flow.GateClientBurst)
	}

	// What detection counts (flow.Record.Events; detect's
	// TestSummaryCounts raises deny_burst on such summaries): the records
	// as they leave the node must weigh the whole flood, past deny_burst's
	// default threshold, or the gate would hide the attack.
	events := 0
	p.b.flows.mu.Lock()
	for _, r := range p.b.flows.all {
		if denied(r) {
			events += r.Events()
		}
	}
	p.b.flows.mu.Unlock()
	if events != flood {
		t.Errorf("the denied streams' records weigh %d events (%d in full, %d summarised), want the %d refused", events, full, suppressed, flood)
	}
}
