package flowstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"moat/internal/flow"
	"moat/internal/flow/flowtest"
)

// TestCursorSavedBeforeFileIdentities: a cursor saved as {"YYYYMMDD": row}
// (before day files had identities) is taken up as a position in the
// day's current file, and saved again with the file's identity.
func TestCursorSavedBeforeFileIdentities(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t, StoreConfig{})
	var recs []flow.Record
	for i := 0; i < 5; i++ {
		recs = append(recs, flowtest.NetRecord(fmt.Sprintf("r%d", i), "web", "db", flow.VerdictAllow, "web-to-db", 1, t0.Add(time.Duration(i)*time.Second)))
	}
	if _, err := s.Ingest(ctx, recs); err != nil {
		t.Fatal(err)
	}
	var c Cursor
	legacy := fmt.Sprintf(`{%q: 3}`, t0.UTC().Format(cursorDay))
	if err := json.Unmarshal([]byte(legacy), &c); err != nil {
		t.Fatal(err)
	}
	var got []string
	if _, err := s.Next(ctx, &c, 10, func(r flow.Record) error { got = append(got, r.Metadata.UID); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := []string{"r3", "r4"}; !slices.Equal(got, want) {
		t.Fatalf("Next from %s = %v, want %v", legacy, got, want)
	}
	b, err := json.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	var saved map[string]cursorPos
	if err := json.Unmarshal(b, &saved); err != nil {
		t.Fatal(err)
	}
	pos := saved[t0.UTC().Format(cursorDay)]
	if pos.Row != 5 || pos.File == nil || *pos.File == 0 {
		t.Fatalf("saved again as %s, want row 5 and the file's identity", b)
	}
	for _, bad := range []string{`{"2026x": 1}`, `{"20261125": -1}`, `{"20261125": "x"}`, `[]`} {
		if err := json.Unmarshal([]byte(bad), &c); err == nil {
			t.Errorf("cursor %s accepted", bad)
		}
	}
}

// TestBetweenFollowedPositions: a subscriber moves a cursor by the
// positions its records come with; Between answers exactly what was
// stored after it (a late record for an earlier day included, nothing
// from before) up to a mark, the newest of them when bounded, counting the
// rest.
func TestBetweenFollowedPositions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTestStore(t, StoreConfig{Dir: dir})
	rec := func(uid string, at time.Time) flow.Record {
		return flowtest.NetRecord(uid, "web", "db", flow.VerdictAllow, "web-to-db", 1, at)
	}
	if _, err := s.Ingest(ctx, []flow.Record{rec("before", t0.Add(-24*time.Hour)), rec("a", t0)}); err != nil {
		t.Fatal(err)
	}
	start, err := s.Mark(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := s.Follow(flow.Filter{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if _, err := s.Ingest(ctx, []flow.Record{rec("b", t0.Add(time.Second))}); err != nil {
		t.Fatal(err)
	}
	c := start.Clone()
	if st := <-sub.C; st.Metadata.UID != "b" || !c.Take(st.Pos) || c.Take(st.Pos) {
		t.Fatalf("followed %s at %+v: want b, taken once", st.Metadata.UID, st.Pos)
	}
	// Stored after c: late records (the day before, and hours before b) and
	// a next day's.
	late := []flow.Record{rec("late-day", t0.Add(-23*time.Hour)), rec("late-hour", t0.Add(-time.Hour)), rec("next", t0.Add(24*time.Hour)), rec("c", t0.Add(2*time.Second))}
	if _, err := s.Ingest(ctx, late); err != nil {
		t.Fatal(err)
	}
	end, err := s.Mark(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The writer marks from what it stored; a reader of the files agrees.
	reader := openTestStore(t, StoreConfig{Dir: dir, ReadOnly: true})
	read, err := reader.Mark(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := marshal(t, end), marshal(t, read); a != b {
		t.Fatalf("writer's mark %s, reader's %s", a, b)
	}
	if _, err := s.Ingest(ctx, []flow.Record{rec("after-end", t0.Add(3*time.Second))}); err != nil {
		t.Fatal(err)
	}
	got, cut, err := s.Between(ctx, flow.Filter{}, c, end, 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"late-day", "late-hour", "c", "next"}; !slices.Equal(flowtest.UIDs(got), want) || cut != 0 {
		t.Fatalf("between = %v (cut %d), want %v", flowtest.UIDs(got), cut, want)
	}
	got, cut, err = s.Between(ctx, flow.Filter{}, c, end, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"c", "next"}; !slices.Equal(flowtest.UIDs(got), want) || cut != 2 {
		t.Fatalf("between, 2 = %v (cut %d), want %v and 2 cut", flowtest.UIDs(got), cut, want)
	}
	got, _, err = s.Between(ctx, flow.Filter{Since: t0.Add(-2 * time.Hour)}, start, end, 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"late-hour", "b", "c", "next"}; !slices.Equal(flowtest.UIDs(got), want) {
		t.Fatalf("between since = %v, want %v", flowtest.UIDs(got), want)
	}
	// Saved and taken up again, the cursor answers the same.
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var again Cursor
	if err := json.Unmarshal(b, &again); err != nil {
		t.Fatal(err)
	}
	if got, _, err = s.Between(ctx, flow.Filter{}, &again, end, 10); err != nil || len(got) != 4 {
		t.Fatalf("between from a saved cursor: %v, %v", flowtest.UIDs(got), err)
	}
}

func marshal(t *testing.T, c *Cursor) string {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
