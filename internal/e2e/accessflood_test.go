package e2e

import (
	"strings"
	"sync"
	"testing"
	"time"

	"moat/internal/agent"
	"moat/internal/api"
	"moat/internal/flow"
)

// accessRecords keeps every access record an agent writes, in order.
type accessRecords struct {
	mu   sync.Mutex // guards recs
	recs []flow.Record
}

func (r *accessRecords) Write(rec flow.Record) error {
	if rec.Unmapped == nil || rec.Unmapped.Kind != "access" {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec)
	return nil
}

// split returns the records written one by one and the summaries.
func (r *accessRecords) split() (full, summaries []flow.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.recs {
		if rec.Unmapped.Suppressed > 0 {
			summaries = append(summaries, rec)
		} else {
			full = append(full, rec)
		}
	}
	return full, summaries
}

// TestBreakGlassRefusalFlood: an administrator who holds a grant and
// relays connection after connection to its node, each presenting a
// certificate the agent refuses, does not have a security event written
// for each: as for the mesh's refused handshakes (flow.Gate), the first
// flow.GateClientBurst refusals of the source and reason are written in
// full, the rest counted, and the next flush writes one summary carrying
// the last refusal and how many it stands for. The records, which the
// node's spool and its flow quota at the control plane hold, stay bounded
// whatever the flood; detection still sees the spike in full.
func TestBreakGlassRefusalFlood(t *testing.T) {
	c := newCluster(t)
	const interval = 7 * time.Second // the flush of the summaries
	recs := &accessRecords{}
	n1 := c.startAgent("n1", func(cfg *agent.Config) { cfg.Flows, cfg.FlowInterval = recs, interval })
	alice := c.newGrantAccount("alice")
	g := c.shellGrant(alice, n1)
	enrolment, _, err := api.LoadCredentials(alice.dir)
	if err != nil {
		t.Fatal(err)
	}

	// The fake clock stands still while the flood runs, so the source's
	// bucket is not refilled: exactly the burst is written in full.
	const extra = 30
	flood := flow.GateClientBurst + extra
	t.Logf("alice relays %d connections under grant %s, each with her enrolment certificate", flood, g.ID)
	before := c.clk.Now()
	for i := range flood {
		if said, err := relayedShell(t, alice, g, enrolment, nil); err == nil {
			t.Fatalf("connection %d: the agent admitted an enrolment certificate: it said %q", i, said)
		}
	}
	if !c.clk.Now().Equal(before) {
		t.Fatalf("the clock moved during the flood")
	}
	const why = "an administrator must present the certificate of an access grant"
	full, summaries := recs.split()
	if len(full) != flow.GateClientBurst || len(summaries) != 0 {
		t.Fatalf("%d refusals gave %d records in full and %d summaries before any flush, want %d and none", flood, len(full), len(summaries), flow.GateClientBurst)
	}
	for _, r := range full {
		if r.Unmapped.ReasonCode != flow.ReasonOutsideGrant || !strings.Contains(r.Unmapped.Reason, why) || r.SrcEndpoint.UID != alice.id.String() {
			t.Fatalf("a refusal's record: %+v %+v", r.SrcEndpoint, r.Unmapped)
		}
	}

	t.Log("the flush writes one summary of the rest, the last refusal's record with their count")
	c.rounds("the summary of the refusals held back", interval, func() bool {
		_, summaries = recs.split()
		return len(summaries) > 0
	})
	full, summaries = recs.split()
	if len(full) != flow.GateClientBurst || len(summaries) != 1 {
		t.Fatalf("%d records in full and %d summaries, want %d and one", len(full), len(summaries), flow.GateClientBurst)
	}
	s := summaries[0]
	if m := s.Unmapped; m.Suppressed != extra || m.ReasonCode != flow.ReasonOutsideGrant || m.Verdict != flow.VerdictDeny ||
		!strings.Contains(m.Reason, why) || !strings.Contains(m.Reason, "30 such") || m.Account != alice.account {
		t.Errorf("the summary: %+v", m)
	}
	if s.SrcEndpoint == nil || s.SrcEndpoint.UID != alice.id.String() || s.DstEndpoint == nil || s.DstEndpoint.Name != "n1" || s.SeverityID != flow.SeverityHigh {
		t.Errorf("the summary names %+v to %+v, severity %d", s.SrcEndpoint, s.DstEndpoint, s.SeverityID)
	}
}
