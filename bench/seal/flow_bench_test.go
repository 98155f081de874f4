// Package sealbench measures what encryption at rest costs moat's writers.
// See README.md.
package sealbench

import (
	"bytes"
	"encoding/json"
	"slices"
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

// BenchmarkFlowIngest compares encoding a flow record as a JSON line with
// encoding it and sealing it under the keyring (the record ID as
// associated data), alternating the two in chunks within one run. It
// reports the median time per record of each and the median overhead
// (sealed/plain - 1; the target is <= 0.15). The baseline has no disk or
// database cost, so this overhead is an upper bound on what sealing adds
// to real ingestion.
func BenchmarkFlowIngest(b *testing.B) {
	rec := sampleFlow()
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
	plain := func() {
		sink.Reset()
		line, err := json.Marshal(rec)
		if err != nil {
			b.Fatal(err)
		}
		sink.Write(line)
		sink.WriteByte('\n')
	}
	sealed := func() {
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
	const chunk = 128
	var tp, ts []time.Duration
	run := func(f func()) time.Duration {
		t0 := time.Now()
		for range chunk {
			f()
		}
		return time.Since(t0)
	}
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			tp = append(tp, run(plain))
			ts = append(ts, run(sealed))
		} else {
			ts = append(ts, run(sealed))
			tp = append(tp, run(plain))
		}
	}
	over := make([]float64, len(tp))
	for i := range tp {
		over[i] = float64(ts[i])/float64(tp[i]) - 1
	}
	b.ReportMetric(median(perRecord(tp, chunk)), "plain-ns/rec")
	b.ReportMetric(median(perRecord(ts, chunk)), "sealed-ns/rec")
	b.ReportMetric(median(over), "overhead")
	b.ReportMetric(0, "ns/op")
}

func perRecord(ds []time.Duration, chunk int) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = float64(d.Nanoseconds()) / float64(chunk)
	}
	return out
}

func median(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}
