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
