package flowstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"moat/internal/flow"
	"moat/internal/flow/flowtest"
)

var t0 = time.Date(2026, 11, 23, 10, 30, 0, 0, time.UTC)

// netRecord returns a Network Activity record from src to dst at t.
type fixedClock struct{ t time.Time }

func (c *fixedClock) now() time.Time { return c.t }

func openTestStore(t *testing.T, cfg StoreConfig) *Store {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return t0 }
	}
	s, err := OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestIngestExactlyOnce(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t, StoreConfig{})
	var batch []flow.Record
	for i := range 100 {
		batch = append(batch, flowtest.NetRecord(fmt.Sprintf("r%03d", i), "web", "db", flow.VerdictAllow, "web-to-db", 100, t0.Add(time.Duration(i)*time.Second)))
	}
	n, err := s.Ingest(ctx, batch)
	if err != nil || n != 100 {
		t.Fatalf("first ingest = %d, %v; want 100", n, err)
	}
	// The same batch again plus duplicates inside one batch and ten new.
	again := append(slices.Clone(batch[:50]), batch[10:20]...)
	for i := 100; i < 110; i++ {
		r := flowtest.NetRecord(fmt.Sprintf("r%03d", i), "web", "db", flow.VerdictAllow, "web-to-db", 100, t0.Add(time.Duration(i)*time.Second))
		again = append(again, r, r)
	}
	n, err = s.Ingest(ctx, again)
	if err != nil || n != 10 {
		t.Fatalf("second ingest = %d, %v; want 10", n, err)
	}
	st := s.Stats()
	if st.Stored != 110 || st.Duplicates != 70 {
		t.Fatalf("stats = %+v, want 110 stored, 70 duplicates", st)
	}
	got, err := s.Query(ctx, flow.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 110 {
		t.Fatalf("query returned %d records, want 110", len(got))
	}
	for i, r := range got {
		if want := fmt.Sprintf("r%03d", i); r.Metadata.UID != want {
			t.Fatalf("record %d has uid %q, want %q", i, r.Metadata.UID, want)
		}
	}
	// The rollup counted each record once.
	top, err := s.TopTalkers(ctx, flow.Filter{}, 5)
	if err != nil {
		t.Fatal(err)
	}
	if want := []flow.Talker{{Src: "spiffe://prod.example/svc/web", Dst: "spiffe://prod.example/svc/db", Flows: 110, Bytes: 11000}}; !slices.Equal(top, want) {
		t.Fatalf("top talkers = %+v, want %+v", top, want)
	}
}

func TestIngestRefusesInvalid(t *testing.T) {
	good := flowtest.NetRecord("ok", "web", "db", flow.VerdictAllow, "r", 1, t0)
	tests := []struct {
		name   string
		mutate func(r *flow.Record)
		want   string
	}{
		{"empty uid", func(r *flow.Record) { r.Metadata.UID = "" }, `flow: ingest: record 1 (uid ""): empty metadata.uid`},
		{"long uid", func(r *flow.Record) { r.Metadata.UID = string(make([]byte, 129)) }, "metadata.uid longer than 128 bytes"},
		{"no time", func(r *flow.Record) { r.Time = 0 }, `flow: ingest: record 1 (uid "bad"): time 0 is not a positive millisecond timestamp`},
		{"no class", func(r *flow.Record) { r.ClassUID = 0 }, `flow: ingest: record 1 (uid "bad"): class_uid is zero`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTestStore(t, StoreConfig{})
			bad := flowtest.NetRecord("bad", "web", "db", flow.VerdictAllow, "r", 1, t0)
			tt.mutate(&bad)
			n, err := s.Ingest(context.Background(), []flow.Record{good, bad})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Ingest error = %v, want %q", err, tt.want)
			}
			if n != 0 || s.Stats().Stored != 0 {
				t.Fatalf("stored %d records of a refused batch", n)
			}
		})
	}
}

func TestRetentionDropsWholeDays(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clock := &fixedClock{t: t0}
	s := openTestStore(t, StoreConfig{Dir: dir, Retention: 48 * time.Hour, Now: clock.now})
	var batch []flow.Record
	for d := range 4 { // t0-3d .. t0
		at := t0.Add(-time.Duration(3-d) * 24 * time.Hour)
		batch = append(batch, flowtest.NetRecord(fmt.Sprintf("d%d", d), "web", "db", flow.VerdictAllow, "r", 1, at))
	}
	n, err := s.Ingest(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	// t0-3d is older than the retention and is not stored; t0-2d is inside
	// it; a record two days ahead of the clock is not stored either.
	batch = append(batch, flowtest.NetRecord("future", "web", "db", flow.VerdictAllow, "r", 1, t0.Add(48*time.Hour)))
	n, err = s.Ingest(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 || s.Stats().Expired != 2 || s.Stats().Future != 1 || s.Stats().Duplicates != 3 {
		t.Fatalf("second ingest stored %d, stats %+v", n, s.Stats())
	}
	if n := s.Stats().Stored; n != 3 {
		t.Fatalf("stored %d, want 3", n)
	}
	files := func() []string {
		m, _ := filepath.Glob(filepath.Join(dir, "flows-*.db"))
		for i := range m {
			m[i] = filepath.Base(m[i])
		}
		return m
	}
	if want := []string{"flows-20261121.db", "flows-20261122.db", "flows-20261123.db"}; !slices.Equal(files(), want) {
		t.Fatalf("partitions = %v, want %v", files(), want)
	}
	// Twelve hours later the 21st still holds records younger than 48h.
	clock.t = t0.Add(12 * time.Hour)
	dropped, err := s.Prune()
	if err != nil || dropped != 0 {
		t.Fatalf("Prune = %d, %v; want 0", dropped, err)
	}
	// At 23:00 on the 25th the 21st and 22nd have wholly passed out of it.
	clock.t = time.Date(2026, 11, 25, 23, 0, 0, 0, time.UTC)
	dropped, err = s.Prune()
	if err != nil || dropped != 2 {
		t.Fatalf("Prune = %d, %v; want 2", dropped, err)
	}
	if want := []string{"flows-20261123.db"}; !slices.Equal(files(), want) {
		t.Fatalf("partitions = %v, want %v", files(), want)
	}
	got, err := s.Query(ctx, flow.Filter{})
	if err != nil || !slices.Equal(flowtest.UIDs(got), []string{"d3"}) {
		t.Fatalf("query = %v, %v; want [d3]", flowtest.UIDs(got), err)
	}
	// Reopening applies the retention too.
	s.Close()
	clock.t = clock.t.Add(24 * time.Hour)
	s2 := openTestStore(t, StoreConfig{Dir: dir, Retention: 48 * time.Hour, Now: clock.now})
	if m := files(); len(m) != 0 {
		t.Fatalf("after reopen partitions = %v, want none", m)
	}
	_ = s2
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
}

// TestTalkersCountAConnectionOnce: one connection of N bytes, recorded at
// both ends (the destination with an open, an interim and a close record,
// each carrying the bytes since the previous one), is one flow of N bytes.
func TestTalkersCountAConnectionOnce(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t, StoreConfig{})
	conn := "00112233445566778899aabbccddeeff"
	rec := func(uid string, dir, activity int, in, out int64, at time.Time) flow.Record {
		r := flowtest.NetRecord(uid, "web", "db", flow.VerdictAllow, "web-to-db", 0, at)
		r.ActivityID, r.TypeUID = activity, flow.ClassNetworkActivity*100+activity
		r.ConnectionInfo = &flow.ConnectionInfo{UID: conn, DirectionID: dir}
		r.Traffic = &flow.Traffic{BytesIn: in, BytesOut: out, Bytes: in + out}
		return r
	}
	batch := []flow.Record{
		rec("open", flow.DirectionInbound, flow.ActivityOpen, 0, 0, t0),
		rec("interim", flow.DirectionInbound, flow.ActivityTraffic, 100, 141, t0.Add(time.Minute)),
		rec("close", flow.DirectionInbound, flow.ActivityClose, 0, 100, t0.Add(2*time.Minute)),
		rec("source", flow.DirectionOutbound, flow.ActivityClose, 241, 100, t0.Add(2*time.Minute)),
	}
	if _, err := s.Ingest(ctx, batch); err != nil {
		t.Fatal(err)
	}
	top, err := s.TopTalkers(ctx, flow.Filter{}, 5)
	if err != nil {
		t.Fatal(err)
	}
	if want := []flow.Talker{{Src: "spiffe://prod.example/svc/web", Dst: "spiffe://prod.example/svc/db", Flows: 1, Bytes: 341}}; !slices.Equal(top, want) {
		t.Fatalf("top talkers = %+v, want %+v", top, want)
	}
}
