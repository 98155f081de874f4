package mesh

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
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
