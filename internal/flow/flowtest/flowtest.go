// Package flowtest makes the flow records, spools and sealers that the
// tests of flow's users share. Only tests import it.
package flowtest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"

	"moat/internal/flow"
	"moat/internal/flow/ocsfcheck"
	"moat/internal/testkit"
)

// T0 is the time the records of Records carry.
var T0 = time.Date(2026, 11, 23, 10, 30, 0, 0, time.UTC)

// NetRecord is a mesh connection's close record from service src to dst
// with verdict, deciding rule and bytes, at t.
func NetRecord(uid, src, dst, verdict, rule string, bytes int64, t time.Time) flow.Record {
	r := flow.Header(flow.ClassNetworkActivity, flow.ActivityClose, "moat-agent", t)
	r.Metadata.UID = uid
	r.SrcEndpoint = &flow.Endpoint{IP: "10.0.0.1", Port: 40000, UID: "spiffe://prod.example/svc/" + src, SvcName: src}
	r.DstEndpoint = &flow.Endpoint{IP: "10.0.0.2", Port: 5432, UID: "spiffe://prod.example/svc/" + dst, SvcName: dst}
	r.ConnectionInfo = &flow.ConnectionInfo{ProtocolName: "tcp", ProtocolNum: 6, DirectionID: flow.DirectionInbound}
	r.Traffic = &flow.Traffic{BytesIn: bytes / 2, BytesOut: bytes - bytes/2, Bytes: bytes}
	r.StartTime, r.EndTime = r.Time-1000, r.Time
	r.FirewallRule = &flow.Rule{Name: rule}
	r.Unmapped = &flow.Moat{Verdict: verdict, Node: "node-a"}
	if verdict == flow.VerdictDeny {
		r.ActionID, r.Action = flow.ActionDenied, "Denied"
	} else {
		r.ActionID, r.Action = flow.ActionAllowed, "Allowed"
	}
	return r
}

// Records is n records from web to db, UIDs prefix-0000 on.
func Records(prefix string, n int) []flow.Record {
	out := make([]flow.Record, n)
	for i := range out {
		out[i] = NetRecord(fmt.Sprintf("%s-%04d", prefix, i), "web", "db", flow.VerdictAllow, "web-to-db", int64(i), T0)
	}
	return out
}

// OpenSpool opens a spool in a fresh directory (unless cfg names one),
// closed with the test.
func OpenSpool(t *testing.T, cfg flow.SpoolConfig) *flow.Spool {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	s, err := flow.OpenSpool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// UIDs is the records' UIDs in order.
func UIDs(rs []flow.Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Metadata.UID)
	}
	return out
}

// NewAEAD is a real tink AES-256-GCM AEAD with a fresh key.
func NewAEAD(t testing.TB) tink.AEAD {
	t.Helper()
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	a, err := aead.New(h)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// DrainAll drains s in batches of 7 and returns the UIDs it read, in order.
func DrainAll(t *testing.T, s *flow.Spool) []string {
	t.Helper()
	var got []string
	_, err := s.Drain(context.Background(), 7, func(_ context.Context, rs []flow.Record) error {
		got = append(got, UIDs(rs)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// Wait returns the first record of recs that match accepts, within
// testkit.WaitLimit, failing t when none comes; the record is held to
// OCSF as ocsfcheck.Check holds it (an error, not a stop).
func Wait(t testing.TB, recs *flow.Memory, what string, match func(flow.Record) bool) flow.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitLimit)
	defer cancel()
	r, err := recs.Wait(ctx, match)
	if err != nil {
		t.Fatalf("no record of %s", what)
	}
	if b, err := json.Marshal(r); err != nil {
		t.Fatal(err)
	} else if err := ocsfcheck.Check(b); err != nil {
		t.Errorf("the record of %s departs from OCSF: %v\n%s", what, err, b)
	}
	return r
}
