package flowstore

import (
	"context"
	"encoding/json"
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

// fiveDays ingests one record per day for five days and closes the store.
func fiveDays(t *testing.T, cfg StoreConfig) {
	t.Helper()
	s := openTestStore(t, cfg)
	var recs []flow.Record
	for d := 0; d < 5; d++ {
		recs = append(recs, flowtest.NetRecord(string(rune('a'+d)), "web", "db", flow.VerdictAllow, "web-to-db", 100, t0.Add(time.Duration(d)*24*time.Hour)))
	}
	if _, err := s.Ingest(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestOpenPartitionsBounded: however many days a query spans, at most
// MaxOpen partitions are open at once.
func TestOpenPartitionsBounded(t *testing.T) {
	cfg := StoreConfig{Dir: t.TempDir(), MaxOpen: 2, Now: func() time.Time { return t0.Add(6 * 24 * time.Hour) }}
	fiveDays(t, cfg)
	s := openTestStore(t, cfg)
	if n := s.OpenPartitions(); n > 2 {
		t.Fatalf("%d partitions open after Open, want at most 2", n)
	}
	got, err := s.Query(context.Background(), flow.Filter{})
	if err != nil || !slices.Equal(flowtest.UIDs(got), []string{"a", "b", "c", "d", "e"}) {
		t.Fatalf("Query over five days = %v, %v", flowtest.UIDs(got), err)
	}
	top, err := s.TopTalkers(context.Background(), flow.Filter{}, 1)
	if err != nil || len(top) != 1 || top[0].Flows != 5 {
		t.Fatalf("TopTalkers over five days = %+v, %v", top, err)
	}
	if n := s.OpenPartitions(); n > 2 {
		t.Fatalf("%d partitions open after queries over five days, want at most 2", n)
	}
}

// corruptPage overwrites one page in the middle of a database file with
// garbage, as a bad disk block would.
func corruptPage(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	if st.Size() < 3*4096 {
		t.Fatalf("%s is only %d bytes", path, st.Size())
	}
	junk := []byte(strings.Repeat("\xa5\x5a", 2048))
	if _, err := f.WriteAt(junk, 2*4096); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedPartitionSetAside: a day whose file is damaged is found at
// open, set aside and reported; the other days are served, and the
// damaged day takes new records in a fresh file.
func TestDamagedPartitionSetAside(t *testing.T) {
	for mode, base := range storeModes(t) {
		t.Run(mode, func(t *testing.T) {
			cfg := base
			cfg.Dir = t.TempDir()
			cfg.Now = func() time.Time { return t0.Add(6 * 24 * time.Hour) }
			fiveDays(t, cfg)
			day3 := filepath.Join(cfg.Dir, partName(dayOf(flow.Millis(t0.Add(2*24*time.Hour)))))
			corruptPage(t, day3)

			t.Log("a reader skips the damaged day and says so")
			ro := cfg
			ro.ReadOnly = true
			r := openTestStore(t, ro)
			got, err := r.Query(context.Background(), flow.Filter{})
			if err != nil || !slices.Equal(flowtest.UIDs(got), []string{"a", "b", "d", "e"}) {
				t.Fatalf("reader's query = %v, %v; want the four good days", flowtest.UIDs(got), err)
			}
			if d := r.DamagedPartitions(); len(d) != 1 || d[0].Path != day3 || d[0].Moved != "" {
				t.Fatalf("reader's damaged list %+v", d)
			}
			if _, err := os.Stat(day3); err != nil {
				t.Fatalf("a reader moved the damaged file: %v", err)
			}

			t.Log("a writer sets it aside and takes the day's records in a fresh file")
			s := openTestStore(t, cfg)
			got, err = s.Query(context.Background(), flow.Filter{})
			if err != nil || !slices.Equal(flowtest.UIDs(got), []string{"a", "b", "d", "e"}) {
				t.Fatalf("writer's query = %v, %v", flowtest.UIDs(got), err)
			}
			d := s.DamagedPartitions()
			if len(d) != 1 || d[0].Path != day3 || !strings.HasPrefix(d[0].Moved, day3+".damaged-") {
				t.Fatalf("writer's damaged list %+v", d)
			}
			t.Logf("set aside: %s (%s)", d[0].Moved, d[0].Reason)
			if _, err := os.Stat(d[0].Moved); err != nil {
				t.Fatal(err)
			}
			late := flowtest.NetRecord("c2", "web", "db", flow.VerdictAllow, "web-to-db", 1, t0.Add(2*24*time.Hour+time.Minute))
			if n, err := s.Ingest(context.Background(), []flow.Record{late}); err != nil || n != 1 {
				t.Fatalf("ingest into the damaged day: %d, %v", n, err)
			}
			got, err = s.Query(context.Background(), flow.Filter{})
			if err != nil || !slices.Equal(flowtest.UIDs(got), []string{"a", "b", "c2", "d", "e"}) {
				t.Fatalf("after ingest = %v, %v", flowtest.UIDs(got), err)
			}
		})
	}
}

// TestCursorAfterDamagedPartition: a cursor that had read into a day's
// file, saved and taken up again after that file was set aside as damaged,
// reads the day's fresh file from its first row: rows numbered below the
// old position are new records, none is skipped. Tail follows the same
// rule.
func TestCursorAfterDamagedPartition(t *testing.T) {
	for mode, base := range storeModes(t) {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			cfg := base
			cfg.Dir = t.TempDir()
			cfg.Now = func() time.Time { return t0.Add(6 * 24 * time.Hour) }
			day := t0.Add(2 * 24 * time.Hour)
			at := func(i int) time.Time { return day.Add(time.Duration(i) * time.Minute) }
			s := openTestStore(t, cfg)
			var old []flow.Record
			for i := 0; i < 6; i++ {
				old = append(old, flowtest.NetRecord(fmt.Sprintf("old-%d", i), "web", "db", flow.VerdictAllow, "web-to-db", 100, at(i)))
			}
			if _, err := s.Ingest(ctx, old); err != nil {
				t.Fatal(err)
			}
			c, err := s.Mark(ctx)
			if err != nil {
				t.Fatal(err)
			}
			saved, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			corruptPage(t, filepath.Join(cfg.Dir, partName(dayOf(flow.Millis(day)))))

			s = openTestStore(t, cfg)
			var fresh []flow.Record
			for i := 0; i < 3; i++ {
				fresh = append(fresh, flowtest.NetRecord(fmt.Sprintf("new-%d", i), "web", "db", flow.VerdictAllow, "web-to-db", 100, at(10+i)))
			}
			if _, err := s.Ingest(ctx, fresh); err != nil {
				t.Fatal(err)
			}
			if d := s.DamagedPartitions(); len(d) != 1 {
				t.Fatalf("damaged partitions %+v, want the day set aside", d)
			}
			var taken Cursor
			if err := json.Unmarshal(saved, &taken); err != nil {
				t.Fatal(err)
			}
			var got []string
			if _, err := s.Next(ctx, &taken, 100, func(r flow.Record) error { got = append(got, r.Metadata.UID); return nil }); err != nil {
				t.Fatal(err)
			}
			if want := []string{"new-0", "new-1", "new-2"}; !slices.Equal(got, want) {
				t.Fatalf("Next after the day's file was replaced = %v, want %v (cursor %s)", got, want, saved)
			}
			// Taken up again, the cursor is at the fresh file's end.
			got = nil
			if _, err := s.Next(ctx, &taken, 100, func(r flow.Record) error { got = append(got, r.Metadata.UID); return nil }); err != nil || len(got) != 0 {
				t.Fatalf("Next at the end = %v, %v", got, err)
			}
		})
	}
}

// TestExporterAfterDamagedPartition: an export that had written a day's
// records, restarted after that day's file was set aside as damaged,
// exports the records the day's fresh file takes, none skipped.
func TestExporterAfterDamagedPartition(t *testing.T) {
	ctx := context.Background()
	// The start of the hour before this one: the records, seconds apart,
	// all fall on its day, whenever the test runs (an hour ago plus a few
	// seconds could cross midnight into the next day's partition).
	day := time.Now().UTC().Add(-time.Hour).Truncate(time.Hour)
	cfg := StoreConfig{Dir: t.TempDir(), Now: time.Now}
	dir := t.TempDir()
	export := func(s *Store) {
		t.Helper()
		e, err := NewExporter(ExporterConfig{Store: s, File: FileConfig{Path: filepath.Join(dir, "flows.jsonl")}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.step(ctx); err != nil {
			t.Fatal(err)
		}
		if err := e.close(); err != nil {
			t.Fatal(err)
		}
	}
	ingest := func(s *Store, prefix string, n int) {
		t.Helper()
		var recs []flow.Record
		for i := 0; i < n; i++ {
			recs = append(recs, flowtest.NetRecord(fmt.Sprintf("%s-%d", prefix, i), "web", "db", flow.VerdictAllow, "web-to-db", 100, day.Add(time.Duration(i)*time.Second)))
		}
		if _, err := s.Ingest(ctx, recs); err != nil {
			t.Fatal(err)
		}
	}
	s := openTestStore(t, cfg)
	export(s) // a new export starts after what is stored: nothing yet
	ingest(s, "old", 6)
	export(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	corruptPage(t, filepath.Join(cfg.Dir, partName(dayOf(flow.Millis(day)))))

	s = openTestStore(t, cfg)
	ingest(s, "new", 3)
	export(s)
	var got []string
	for _, l := range readLines(t, filepath.Join(dir, "flows.jsonl")) {
		var r flow.Record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		got = append(got, r.Metadata.UID)
	}
	want := []string{"old-0", "old-1", "old-2", "old-3", "old-4", "old-5", "new-0", "new-1", "new-2"}
	if !slices.Equal(got, want) {
		t.Fatalf("exported %v, want %v", got, want)
	}
}
