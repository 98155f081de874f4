package flowstore

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"testing"
	"time"

	"moat/internal/flow"
	"moat/internal/flow/flowtest"
)

// connectionRecords makes n connections between a few pairs over the hour
// from start, each recorded as production records it: the destination's
// open, interim and close records (each with the bytes since the previous
// one) and the source's close record, which counts nothing.
func connectionRecords(n int, start time.Time) []flow.Record {
	pairs := [][2]string{{"web", "db"}, {"api", "db"}, {"web", "billing"}}
	var out []flow.Record
	for i := range n {
		p := pairs[i%len(pairs)]
		at := start.Add(time.Duration(i) * 3571 * time.Millisecond) // not minute-aligned
		conn := fmt.Sprintf("conn-%04d", i)
		verdict, rule := flow.VerdictAllow, p[0]+"-to-"+p[1]
		if p[1] == "billing" {
			verdict, rule = flow.VerdictDeny, "default-deny"
		}
		rec := func(kind string, dir, activity int, b int64, at time.Time) {
			r := flowtest.NetRecord(conn+"-"+kind, p[0], p[1], verdict, rule, 0, at)
			r.ActivityID, r.TypeUID = activity, flow.ClassNetworkActivity*100+activity
			r.ConnectionInfo = &flow.ConnectionInfo{UID: conn, DirectionID: dir}
			r.Traffic = &flow.Traffic{Bytes: b}
			out = append(out, r)
		}
		rec("open", flow.DirectionInbound, flow.ActivityOpen, 0, at)
		rec("interim", flow.DirectionInbound, flow.ActivityTraffic, int64(100+i), at.Add(61*time.Second))
		rec("close", flow.DirectionInbound, flow.ActivityClose, int64(7*i), at.Add(150*time.Second))
		rec("source", flow.DirectionOutbound, flow.ActivityClose, int64(100+8*i), at.Add(150*time.Second))
	}
	return out
}

func addTalker(acc map[[2]string]*flow.Talker, t flow.Talker) {
	k := [2]string{t.Src, t.Dst}
	if a := acc[k]; a != nil {
		a.Flows += t.Flows
		a.Bytes += t.Bytes
		a.Denied += t.Denied
		return
	}
	acc[k] = &t
}

// referenceTalkers is the one definition, applied to the records
// themselves: each record in the window weighed by talkerWeight.
func referenceTalkers(recs []flow.Record, lo, hi time.Time) []flow.Talker {
	acc := map[[2]string]*flow.Talker{}
	for i := range recs {
		r := &recs[i]
		if r.Time < flow.Millis(lo) || r.Time >= flow.Millis(hi) {
			continue
		}
		c := flow.ColumnsOf(r)
		flows, b := flow.TalkerWeight(r, c.Bytes)
		t := flow.Talker{Src: c.Src, Dst: c.Dst, Flows: flows, Bytes: b}
		if c.Verdict == flow.VerdictDeny {
			t.Denied = flows
		}
		addTalker(acc, t)
	}
	var out []flow.Talker
	for _, t := range acc {
		out = append(out, *t)
	}
	return flow.RankTalkers(out, 100)
}

// TestTalkersOneDefinitionWhateverTheWindow: top talkers count a
// connection once and only the destination's bytes whether a window is
// read from the hourly rollup, the minute rollup or the records, in plain
// and sealed stores alike.
func TestTalkersOneDefinitionWhateverTheWindow(t *testing.T) {
	for mode, cfg := range storeModes(t) {
		t.Run(mode, func(t *testing.T) {
			start := t0.Truncate(time.Hour) // 10:00
			cfg.Now = func() time.Time { return start.Add(3 * time.Hour) }
			s := openTestStore(t, cfg)
			recs := connectionRecords(1500, start) // ~90 minutes of connections
			if _, err := s.Ingest(context.Background(), recs); err != nil {
				t.Fatal(err)
			}
			windows := [][2]time.Time{
				{start, start.Add(3 * time.Hour)},                                         // whole hours
				{start.Add(17 * time.Minute), start.Add(83 * time.Minute)},                // whole minutes at both edges
				{start.Add(17*time.Minute + 13*time.Second), start.Add(59 * time.Minute)}, // partial minutes
				{start.Add(61*time.Minute + 1*time.Second), start.Add(61*time.Minute + 40*time.Second)},
				{start.Add(-time.Hour), start.Add(30*time.Minute + 500*time.Millisecond)},
			}
			for _, w := range windows {
				got, err := s.TopTalkers(context.Background(), flow.Filter{Since: w[0], Until: w[1]}, 100)
				if err != nil {
					t.Fatal(err)
				}
				if want := referenceTalkers(recs, w[0], w[1]); !slices.Equal(got, want) {
					t.Errorf("window %s–%s:\n got  %+v\n want %+v", w[0].Format("15:04:05.000"), w[1].Format("15:04:05.000"), got, want)
				}
			}
		})
	}
}

// TestPartialHoursReadTheMinuteRollup: a window that cuts into hours on
// minute boundaries reads no record, and one that cuts into minutes reads
// only the records of those partial minutes.
func TestPartialHoursReadTheMinuteRollup(t *testing.T) {
	for mode, cfg := range storeModes(t) {
		t.Run(mode, func(t *testing.T) {
			start := t0.Truncate(time.Hour)
			cfg.Now = func() time.Time { return start.Add(3 * time.Hour) }
			s := openTestStore(t, cfg)
			recs := connectionRecords(1500, start)
			if _, err := s.Ingest(context.Background(), recs); err != nil {
				t.Fatal(err)
			}
			read := func(lo, hi time.Time) uint64 {
				before := s.tallied.Load()
				if _, err := s.TopTalkers(context.Background(), flow.Filter{Since: lo, Until: hi}, 10); err != nil {
					t.Fatal(err)
				}
				return s.tallied.Load() - before
			}
			if n := read(start.Add(17*time.Minute), start.Add(83*time.Minute)); n != 0 {
				t.Fatalf("a minute-aligned window read %d records, want none", n)
			}
			lo, hi := start.Add(17*time.Minute+13*time.Second), start.Add(83*time.Minute+5*time.Second)
			want := 0
			for _, r := range recs {
				if r.Time >= flow.Millis(lo) && r.Time < flow.Millis(lo.Truncate(time.Minute).Add(time.Minute)) ||
					r.Time >= flow.Millis(hi.Truncate(time.Minute)) && r.Time < flow.Millis(hi) {
					want++
				}
			}
			if n := read(lo, hi); n != uint64(want) {
				t.Fatalf("a window cutting two minutes read %d records, want the %d of those minutes", n, want)
			}
		})
	}
}

// TestNodeCellsAndWeights: a store lists the hours it holds of each node's
// records (runs of hours), and weighs the records of one node's hours as
// the talkers count them, in plain and sealed stores alike.
func TestNodeCellsAndWeights(t *testing.T) {
	for mode, cfg := range storeModes(t) {
		t.Run(mode, func(t *testing.T) {
			start := t0.Truncate(time.Hour)
			cfg.Now = func() time.Time { return start.Add(5 * time.Hour) }
			s := openTestStore(t, cfg)
			recs := connectionRecords(1500, start) // 10:00 to about 11:32, node-a
			other := flowtest.NetRecord("b1", "api", "db", flow.VerdictAllow, "api-to-db", 70, start.Add(3*time.Hour))
			other.Unmapped.Node = "node-b"
			if _, err := s.Ingest(context.Background(), append(recs, other)); err != nil {
				t.Fatal(err)
			}
			cells, err := s.NodeCells(context.Background(), flow.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			h := start.UnixMilli() / hourMillis
			want := []flow.NodeHours{{Node: "node-a", Hours: [][2]int64{{h, h + 2}}}, {Node: "node-b", Hours: [][2]int64{{h + 3, h + 4}}}}
			if fmt.Sprint(cells) != fmt.Sprint(want) {
				t.Fatalf("cells = %v, want %v", cells, want)
			}
			ws, err := s.TalkerWeights(context.Background(), flow.Filter{Until: start.Add(90 * time.Minute)}, flow.NodeHours{Node: "node-a", Hours: [][2]int64{{h + 1, h + 5}}})
			if err != nil {
				t.Fatal(err)
			}
			acc := map[[2]string]*flow.Talker{}
			for _, w := range ws {
				addTalker(acc, w.Talker())
			}
			var got []flow.Talker
			for _, t := range acc {
				got = append(got, *t)
			}
			if want := referenceTalkers(recs, start.Add(time.Hour), start.Add(90*time.Minute)); !slices.Equal(flow.RankTalkers(got, 100), want) {
				t.Fatalf("weights of node-a 11:00–11:30 sum to %+v, want %+v", flow.RankTalkers(got, 100), want)
			}
		})
	}
}

// TestAggADSQL checks that SQLite builds a keyed rollup row's associated
// data byte for byte as aggAD does, for hashes holding NUL bytes, the
// separator and bytes that are not UTF-8.
func TestAggADSQL(t *testing.T) {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(schema); err != nil {
		t.Fatal(err)
	}
	keys := []any{[]byte{0, 1, ':', 0xff}, []byte{}, []byte{0xc3, 0x28, 0}, []byte(":::"), []byte{0x80}, []byte{0, 0, 0}}
	args := append([]any{int64(1795435200000), 4001}, keys...)
	if _, err := db.Exec(`INSERT INTO talkers(hour, class, src, src_name, dst, dst_name, verdict, rule, flows, bytes, agg)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0, x'00')`, args...); err != nil {
		t.Fatal(err)
	}
	var got []byte
	if err := db.QueryRow("SELECT "+aggADSQL(hourly)+" FROM talkers", hourly.ad).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := aggAD(hourly, 1795435200000, 4001, keys); !bytes.Equal(got, want) {
		t.Errorf("SQL associated data %q, aggAD %q", got, want)
	}
}
