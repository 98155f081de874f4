// Package sealbench measures what encryption at rest costs moat's writers.
// See README.md.
package sealbench

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"moat/internal/flow"
	"moat/internal/seal"
)

// sampleFlow is a typical network-activity record, as an agent emits one
// per connection.
func sampleFlow() flow.Record {
	r := flow.Header(flow.ClassNetworkActivity, 6, "moat-agent", time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
	r.SrcEndpoint = &flow.Endpoint{IP: "10.0.0.12", Port: 51234, UID: "spiffe://prod.example/svc/web", SvcName: "web"}
	r.DstEndpoint = &flow.Endpoint{IP: "10.0.0.31", Port: 5432, UID: "spiffe://prod.example/svc/db", SvcName: "db"}
	r.ConnectionInfo = &flow.ConnectionInfo{ProtocolName: "tcp", ProtocolNum: 6, DirectionID: flow.DirectionInbound, Direction: "Inbound"}
	r.Traffic = &flow.Traffic{BytesIn: 18234, BytesOut: 2211, Bytes: 20445}
	r.TLS = &flow.TLS{Version: "TLSv1.3", Cipher: "TLS_AES_128_GCM_SHA256"}
	r.FirewallRule = &flow.Rule{Name: "web-to-db", UID: "intention/7"}
	r.Unmapped = &flow.Moat{Verdict: flow.VerdictAllow, Mode: "strict", Node: "node-a"}
	return r
}

// BenchmarkFlowIngest compares writing a flow record as a JSON line with
// writing it sealed under the keyring (the record ID as associated data),
// into an in-memory sink. The baseline has no disk or database cost, so the
// ratio is an upper bound on what sealing adds to real ingestion.
func BenchmarkFlowIngest(b *testing.B) {
	rec := sampleFlow()
	b.Run("plain", func(b *testing.B) {
		var sink bytes.Buffer
		for b.Loop() {
			sink.Reset()
			line, err := json.Marshal(rec)
			if err != nil {
				b.Fatal(err)
			}
			sink.Write(line)
			sink.WriteByte('\n')
		}
	})
	b.Run("sealed", func(b *testing.B) {
		kek, err := seal.EnvKEK("K", func(string) (string, bool) { return seal.EncodeKEKKey(make([]byte, 32)), true })
		if err != nil {
			b.Fatal(err)
		}
		k, err := seal.Open(seal.Config{Dir: b.TempDir(), KEK: kek})
		if err != nil {
			b.Fatal(err)
		}
		a := k.AEAD()
		var sink bytes.Buffer
		for b.Loop() {
			sink.Reset()
			line, err := json.Marshal(rec)
			if err != nil {
				b.Fatal(err)
			}
			ct, err := a.Encrypt(line, []byte(rec.Metadata.UID))
			if err != nil {
				b.Fatal(err)
			}
			sink.Write(ct)
		}
	})
}
