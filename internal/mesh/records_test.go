package mesh

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"moat/internal/flow"
	"moat/internal/flow/ocsfcheck"
	"moat/internal/identity"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestRecordGolden pins the OCSF shape of the mesh's records.
func TestRecordGolden(t *testing.T) {
	f := newFixture(t)
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	m, err := New(Config{
		Node: "node-b", TrustDomain: f.td, Trust: identity.NewTrust(identity.TrustConfig{TrustDomain: f.td}),
		Identities: &svids{m: nil}, Flows: flow.NewJSONLines(&buf), Now: func() time.Time { return at },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tcp := func(s string) net.Addr { a, _ := net.ResolveTCPAddr("tcp", s); return a }
	live := &record{
		start: at.Add(-1500 * time.Millisecond), dir: inboundDir, connID: "00112233445566778899aabbccddeeff",
		srcID: "spiffe://example.org/svc/frontend", srcSvc: "frontend", srcAddr: tcp("10.0.0.1:40000"),
		dstID: "spiffe://example.org/svc/api", dstSvc: "api", dstAddr: tcp("127.0.0.1:18080"), dstPort: 8080,
		verdict: flow.VerdictAllow, rule: "web-to-api", mode: "strict", tls: 0x0304,
	}
	m.emitOpen(live)
	live.in.Store(60)
	live.out.Store(1500)
	m.emitInterim(live)
	live.in.Store(100)
	live.out.Store(2000)
	m.emit(live)
	m.emit(live) // a second final record is never written
	m.emit(&record{
		start: at.Add(-1500 * time.Millisecond), dir: outboundDir, connID: "ffeeddccbbaa99887766554433221100",
		srcID: "spiffe://example.org/svc/batch", srcSvc: "batch", srcAddr: tcp("127.0.0.1:50000"),
		dstID: "spiffe://example.org/svc/api", dstSvc: "api", dstAddr: tcp("10.0.0.2:15443"), dstPort: 8080,
		verdict: flow.VerdictDeny, rule: "default-deny", reason: "batch → api:8080 denied by default-deny (policy 0123456789ab)", tls: 0x0304,
		code: flow.ReasonPolicyDenied,
	})
	m.emit(&record{
		start: at.Add(-200 * time.Millisecond), dir: inboundDir, connID: "0123456789abcdef0123456789abcdef", plaintext: true,
		srcAddr: tcp("10.1.2.3:40001"), dstID: "spiffe://example.org/svc/legacy", dstSvc: "legacy", dstAddr: tcp("127.0.0.1:19000"), dstPort: 9000,
		verdict: flow.VerdictAllow, rule: "old-clients", mode: "permissive",
	})
	m.handshakeRecord(at, inboundDir, tcp("10.0.0.3:41000"), tcp("10.0.0.2:15443"), "", "", "spiffe://example.org/svc/frontend", errors.New("mtls: client: identity: certificate expired"))

	var out bytes.Buffer
	for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		// Every record the mesh writes is a valid OCSF 1.3.0 record.
		if err := ocsfcheck.Check(line); err != nil {
			t.Errorf("%v\n%s", err, line)
		}
		var r flow.Record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatal(err)
		}
		if len(r.Metadata.UID) != 32 {
			t.Fatalf("uid %q", r.Metadata.UID)
		}
		r.Metadata.UID = "UID"
		b, _ := json.MarshalIndent(r, "", "  ")
		out.Write(append(b, '\n'))
	}
	golden := filepath.Join("testdata", "records.golden")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("records differ from %s (run with -update to accept):\n%s", golden, out.Bytes())
	}
}

// TestRefusedHandshakesAreBounded: every refused handshake was one record,
// so anyone reaching the mesh port, refused as fast as they can connect,
// filled the spool and the node's flow quota at the control plane with
// them, pushing out the records that follow. A peer's first
// flow.GateClientBurst refusals of one reason are written in full (a
// revoked identity, counted by detection, among them); the rest are
// counted and summarised, the last of them kept with its claim and its
// code; another reason, or another peer, has a share of its own.
func TestRefusedHandshakesAreBounded(t *testing.T) {
	f := newFixture(t)
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	m, err := New(Config{
		Node: "node-b", TrustDomain: f.td, Trust: identity.NewTrust(identity.TrustConfig{TrustDomain: f.td}),
		Identities: &svids{m: nil}, Flows: flow.NewJSONLines(&buf), Now: func() time.Time { return at },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tcp := func(s string) net.Addr { a, _ := net.ResolveTCPAddr("tcp", s); return a }
	const extra = 25
	revoked := fmt.Errorf("mtls: client: %w", identity.ErrRevoked)
	for i := range flow.GateClientBurst + extra {
		m.handshakeRecord(at, inboundDir, tcp(fmt.Sprintf("10.0.0.3:%d", 40000+i)), tcp("10.0.0.2:15443"), "", "", "spiffe://example.org/svc/client", revoked)
	}
	for range 3 {
		m.handshakeRecord(at, inboundDir, tcp("10.0.0.3:41000"), tcp("10.0.0.2:15443"), "", "", "", fmt.Errorf("mtls: client: %w", identity.ErrUnknownAuthority))
		m.handshakeRecord(at, inboundDir, tcp("10.0.0.4:41000"), tcp("10.0.0.2:15443"), "", "", "spiffe://example.org/svc/client", revoked)
	}
	recs := func() []flow.Record {
		var out []flow.Record
		for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
			if err := ocsfcheck.Check(line); err != nil {
				t.Errorf("%v\n%s", err, line)
			}
			var r flow.Record
			if err := json.Unmarshal(line, &r); err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
		buf.Reset()
		return out
	}
	count := func(rs []flow.Record, ip, code string) (n int) {
		for _, r := range rs {
			if r.SrcEndpoint.IP == ip && r.Unmapped.ReasonCode == code && r.Unmapped.Suppressed == 0 {
				n++
			}
		}
		return n
	}
	written := recs()
	if got := count(written, "10.0.0.3", flow.ReasonRevoked); got != flow.GateClientBurst {
		t.Errorf("%d revoked records from 10.0.0.3 for %d refusals, want %d", got, flow.GateClientBurst+extra, flow.GateClientBurst)
	}
	if got := count(written, "10.0.0.3", flow.ReasonUnknownAuthority); got != 3 {
		t.Errorf("%d unknown_authority records from 10.0.0.3, want 3 (a share of their own)", got)
	}
	if got := count(written, "10.0.0.4", flow.ReasonRevoked); got != 3 {
		t.Errorf("%d revoked records from 10.0.0.4, want 3 (a share of its own)", got)
	}

	m.flushRefusals()
	sums := recs()
	if len(sums) != 1 {
		t.Fatalf("%d summaries, want 1: %+v", len(sums), sums)
	}
	s := sums[0]
	if s.Unmapped.Suppressed != extra || s.Unmapped.ReasonCode != flow.ReasonRevoked || s.Unmapped.Kind != kindHandshake ||
		s.Unmapped.Claimed != "spiffe://example.org/svc/client" || s.SrcEndpoint.IP != "10.0.0.3" || s.SrcEndpoint.UID != "" ||
		s.ActivityID != flow.ActivityFail || !strings.Contains(s.Unmapped.Reason, fmt.Sprint(extra)) {
		t.Errorf("summary %+v %+v, want %d revoked handshakes from 10.0.0.3 claiming svc/client", s.SrcEndpoint, s.Unmapped, extra)
	}
	m.flushRefusals()
	if buf.Len() != 0 {
		t.Errorf("a second flush wrote %s", buf.String())
	}
}
