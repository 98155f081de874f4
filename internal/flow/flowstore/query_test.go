package flowstore

import (
	"bytes"
	"context"
	"database/sql"
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

// queryFixture stores records over two days and returns the store.
func queryFixture(t *testing.T, cfg StoreConfig) *Store {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return t0.Add(48 * time.Hour) }
	}
	s := openTestStore(t, cfg)
	day2 := t0.Add(24 * time.Hour)
	recs := []flow.Record{
		flowtest.NetRecord("a1", "web", "db", flow.VerdictAllow, "web-to-db", 1000, t0),
		flowtest.NetRecord("a2", "web", "db", flow.VerdictAllow, "web-to-db", 3000, t0.Add(time.Minute)),
		flowtest.NetRecord("a3", "web", "billing", flow.VerdictDeny, "default-deny", 0, t0.Add(2*time.Minute)),
		flowtest.NetRecord("a4", "api", "db", flow.VerdictAudit, "audit-api", 500, t0.Add(90*time.Minute)),
		flowtest.NetRecord("b1", "api", "billing", flow.VerdictAllow, "api-to-billing", 7000, day2),
		flowtest.NetRecord("b2", "web", "billing", flow.VerdictDeny, "default-deny", 0, day2.Add(time.Minute)),
	}
	waf := flow.Header(flow.ClassDetectionFinding, 1, "moat-gateway", t0.Add(3*time.Minute))
	waf.Metadata.UID = "w1"
	waf.SrcEndpoint = &flow.Endpoint{IP: "198.51.100.9"}
	waf.DstEndpoint = &flow.Endpoint{SvcName: "web"}
	waf.Unmapped = &flow.Moat{Verdict: flow.VerdictDeny, Rules: []string{"942100"}, Kind: "waf"}
	recs = append(recs, waf)
	if _, err := s.Ingest(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	return s
}

// storeModes are the two partition formats queries must answer alike:
// plaintext query columns, and keyed ones with sealed counts.
func storeModes(t *testing.T) map[string]StoreConfig {
	return map[string]StoreConfig{"plain": {}, "sealed": {Sealer: flowtest.NewAEAD(t)}}
}

func TestQueryFilters(t *testing.T) {
	for mode, cfg := range storeModes(t) {
		t.Run(mode, func(t *testing.T) { testQueryFilters(t, cfg) })
	}
}

func testQueryFilters(t *testing.T, cfg StoreConfig) {
	cfg.Dir = t.TempDir()
	s := queryFixture(t, cfg)
	tests := []struct {
		name string
		f    flow.Filter
		want []string
	}{
		{"all, in time order", flow.Filter{}, []string{"a1", "a2", "a3", "w1", "a4", "b1", "b2"}},
		{"from by service name", flow.Filter{From: "web"}, []string{"a1", "a2", "a3", "b2"}},
		{"from by SPIFFE ID", flow.Filter{From: "spiffe://prod.example/svc/api"}, []string{"a4", "b1"}},
		{"from by IP", flow.Filter{From: "198.51.100.9"}, []string{"w1"}},
		{"to", flow.Filter{To: "billing"}, []string{"a3", "b1", "b2"}},
		{"verdict deny", flow.Filter{Verdict: flow.VerdictDeny}, []string{"a3", "w1", "b2"}},
		{"rule", flow.Filter{Rule: "default-deny"}, []string{"a3", "b2"}},
		{"WAF rule", flow.Filter{Rule: "942100"}, []string{"w1"}},
		{"class", flow.Filter{Class: flow.ClassDetectionFinding}, []string{"w1"}},
		{"since", flow.Filter{Since: t0.Add(24 * time.Hour)}, []string{"b1", "b2"}},
		{"until", flow.Filter{Until: t0.Add(time.Minute)}, []string{"a1"}},
		{"since and until across days", flow.Filter{Since: t0.Add(time.Minute), Until: t0.Add(24*time.Hour + time.Second)}, []string{"a2", "a3", "w1", "a4", "b1"}},
		{"limit keeps the newest", flow.Filter{Limit: 3}, []string{"a4", "b1", "b2"}},
		{"limit with a filter, across days and hours", flow.Filter{From: "web", Limit: 2}, []string{"a3", "b2"}},
		{"filter pruned to hours, rule", flow.Filter{Rule: "audit-api", Since: t0.Add(time.Minute)}, []string{"a4"}},
		{"limit within a day", flow.Filter{Limit: 2, Until: t0.Add(24 * time.Hour)}, []string{"w1", "a4"}},
		{"combined", flow.Filter{From: "web", To: "billing", Verdict: flow.VerdictDeny, Since: t0.Add(time.Hour)}, []string{"b2"}},
		{"nothing", flow.Filter{From: "nobody"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Query(context.Background(), tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(flowtest.UIDs(got), tt.want) {
				t.Fatalf("Query(%+v) = %v, want %v", tt.f, flowtest.UIDs(got), tt.want)
			}
			// Match agrees with the SQL.
			all, _ := s.Query(context.Background(), flow.Filter{})
			var m []string
			for _, r := range all {
				if tt.f.Match(&r) {
					m = append(m, r.Metadata.UID)
				}
			}
			if tt.f.Limit == 0 && !slices.Equal(m, tt.want) {
				t.Fatalf("Match selects %v, want %v", m, tt.want)
			}
		})
	}
}

func TestFilterErrors(t *testing.T) {
	s := queryFixture(t, StoreConfig{})
	tests := []struct {
		f    flow.Filter
		want string
	}{
		{flow.Filter{Verdict: "maybe"}, `flow: filter: unknown verdict "maybe"`},
		{flow.Filter{Limit: -1}, "flow: filter: negative limit -1"},
		{flow.Filter{Since: t0, Until: t0}, "is not before until"},
	}
	for _, tt := range tests {
		if _, err := s.Query(context.Background(), tt.f); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Query(%+v) error %v, want %q", tt.f, err, tt.want)
		}
	}
	if _, err := s.TopTalkers(context.Background(), flow.Filter{}, 0); err == nil {
		t.Error("TopTalkers with n=0 succeeded")
	}
}

func TestTopTalkers(t *testing.T) {
	for mode, cfg := range storeModes(t) {
		t.Run(mode, func(t *testing.T) { testTopTalkers(t, cfg) })
	}
}

func testTopTalkers(t *testing.T, cfg StoreConfig) {
	cfg.Dir = t.TempDir()
	s := queryFixture(t, cfg)
	web, api := "spiffe://prod.example/svc/web", "spiffe://prod.example/svc/api"
	db, billing := "spiffe://prod.example/svc/db", "spiffe://prod.example/svc/billing"
	tests := []struct {
		name string
		f    flow.Filter
		n    int
		want []flow.Talker
	}{
		{"all", flow.Filter{}, 10, []flow.Talker{
			{Src: api, Dst: billing, Flows: 1, Bytes: 7000},
			{Src: web, Dst: db, Flows: 2, Bytes: 4000},
			{Src: api, Dst: db, Flows: 1, Bytes: 500},
			{Src: web, Dst: billing, Flows: 2, Bytes: 0, Denied: 2},
			{Src: "198.51.100.9", Dst: "web", Flows: 1, Bytes: 0, Denied: 1},
		}},
		{"top 2", flow.Filter{}, 2, []flow.Talker{
			{Src: api, Dst: billing, Flows: 1, Bytes: 7000},
			{Src: web, Dst: db, Flows: 2, Bytes: 4000},
		}},
		{"from web", flow.Filter{From: "web"}, 10, []flow.Talker{
			{Src: web, Dst: db, Flows: 2, Bytes: 4000},
			{Src: web, Dst: billing, Flows: 2, Denied: 2},
		}},
		{"deny", flow.Filter{Verdict: flow.VerdictDeny, Class: flow.ClassNetworkActivity}, 10, []flow.Talker{
			{Src: web, Dst: billing, Flows: 2, Denied: 2},
		}},
		// Since falls inside an hour: the partial hour comes from the
		// records, the whole hours after it from the rollup.
		{"since mid-hour", flow.Filter{Since: t0.Add(time.Minute)}, 10, []flow.Talker{
			{Src: api, Dst: billing, Flows: 1, Bytes: 7000},
			{Src: web, Dst: db, Flows: 1, Bytes: 3000},
			{Src: api, Dst: db, Flows: 1, Bytes: 500},
			{Src: web, Dst: billing, Flows: 2, Denied: 2},
			{Src: "198.51.100.9", Dst: "web", Flows: 1, Denied: 1},
		}},
		{"window within one hour", flow.Filter{Since: t0.Add(30 * time.Second), Until: t0.Add(150 * time.Second)}, 10, []flow.Talker{
			{Src: web, Dst: db, Flows: 1, Bytes: 3000},
			{Src: web, Dst: billing, Flows: 1, Denied: 1},
		}},
		{"until mid-hour of day 2", flow.Filter{Since: t0.Add(time.Hour), Until: t0.Add(24*time.Hour + 30*time.Second)}, 10, []flow.Talker{
			{Src: api, Dst: billing, Flows: 1, Bytes: 7000},
			{Src: api, Dst: db, Flows: 1, Bytes: 500},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.TopTalkers(context.Background(), tt.f, tt.n)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("TopTalkers = %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestSealedStoreKeepsBodiesSecret(t *testing.T) {
	dir := t.TempDir()
	a := flowtest.NewAEAD(t)
	s := queryFixture(t, StoreConfig{Dir: dir, Sealer: a})
	got, err := s.Query(context.Background(), flow.Filter{From: "web", Verdict: flow.VerdictDeny})
	if err != nil || !slices.Equal(flowtest.UIDs(got), []string{"a3", "b2"}) {
		t.Fatalf("sealed query = %v, %v", flowtest.UIDs(got), err)
	}
	if got[0].SrcEndpoint.IP != "10.0.0.1" {
		t.Fatalf("decrypted record lost its body: %+v", got[0].SrcEndpoint)
	}
	s.Close()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, partName(dayOf(flow.Millis(t0))))+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM flows WHERE CAST(data AS TEXT) LIKE '%10.0.0.1%' OR CAST(data AS TEXT) LIKE '%class_uid%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d stored bodies hold plaintext", n)
	}
	t.Log("a body moved to another record's row fails to open: the UID is bound")
	if _, err := db.Exec(`UPDATE flows SET data = (SELECT data FROM flows WHERE uid = 'a1') WHERE uid = 'a2'`); err == nil {
		t.Fatal("read-only database accepted a write")
	}
	rw, err := sql.Open("sqlite", "file:"+filepath.Join(dir, partName(dayOf(flow.Millis(t0)))))
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	if _, err := rw.Exec(`UPDATE flows SET data = (SELECT data FROM flows WHERE uid = 'a1') WHERE uid = 'a2'`); err != nil {
		t.Fatal(err)
	}
	rw.Close()
	s2 := openTestStore(t, StoreConfig{Dir: dir, Sealer: a})
	if _, err := s2.Query(context.Background(), flow.Filter{From: "web", Limit: 10}); err == nil || !strings.Contains(err.Error(), `uid "a2"`) {
		t.Fatalf("query over a swapped body: %v, want an error naming a2", err)
	}
	t.Log("without the key the files name no service, verdict, rule, address or byte count")
	for _, suffix := range []string{"", "-wal"} {
		raw, err := os.ReadFile(filepath.Join(dir, partName(dayOf(flow.Millis(t0)))) + suffix)
		if err != nil {
			continue
		}
		for _, secret := range []string{"svc/web", "billing", "default-deny", "web-to-db", "198.51.100.9", "10.0.0.1"} {
			if bytes.Contains(raw, []byte(secret)) {
				t.Errorf("%q is in the partition file%s in the clear", secret, suffix)
			}
		}
	}
	var plainBytes int
	if err := db.QueryRow(`SELECT (SELECT COUNT(*) FROM flows WHERE bytes != 0) + (SELECT COUNT(*) FROM talkers WHERE flows != 0 OR bytes != 0)`).Scan(&plainBytes); err != nil || plainBytes != 0 {
		t.Fatalf("%d rows keep counts in the clear (%v)", plainBytes, err)
	}
	s3 := openTestStore(t, StoreConfig{Dir: dir, ReadOnly: true})
	if _, err := s3.TopTalkers(context.Background(), flow.Filter{Verdict: flow.VerdictDeny}, 1); err == nil || !strings.Contains(err.Error(), "open the store with its key") {
		t.Fatalf("top talkers without the key: %v, want a refusal naming the key", err)
	}
}

func TestFollowAndTail(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	s := openTestStore(t, StoreConfig{Dir: dir})
	if _, err := s.Ingest(ctx, flowtest.Records("old", 3)); err != nil {
		t.Fatal(err)
	}
	sub, err := s.Follow(flow.Filter{Verdict: flow.VerdictDeny}, 2)
	if err != nil {
		t.Fatal(err)
	}
	reader := openTestStore(t, StoreConfig{Dir: dir, ReadOnly: true})
	tailed := make(chan string, 100)
	tailDone := make(chan error, 1)
	mark, err := reader.Mark(ctx)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		tailDone <- reader.Tail(ctx, mark, flow.Filter{Verdict: flow.VerdictDeny}, 5*time.Millisecond, func(r flow.Record) error {
			tailed <- r.Metadata.UID
			return nil
		})
	}()

	var batch []flow.Record
	for i := range 5 {
		v := flow.VerdictAllow
		if i%2 == 0 {
			v = flow.VerdictDeny
		}
		batch = append(batch, flowtest.NetRecord(fmt.Sprintf("new%d", i), "web", "db", v, "r", 1, t0.Add(time.Duration(i)*time.Second)))
	}
	// A record on the next day lands in a partition the tail has not seen.
	batch = append(batch, flowtest.NetRecord("next-day", "web", "db", flow.VerdictDeny, "r", 1, t0.Add(24*time.Hour)))
	batch = append(batch, batch[0]) // a duplicate is not followed twice
	if _, err := s.Ingest(ctx, batch); err != nil {
		t.Fatal(err)
	}
	// Buffer 2: two denied records arrive, the other two are dropped and counted.
	var got []string
	for range 2 {
		got = append(got, (<-sub.C).Metadata.UID)
	}
	if !slices.Equal(got, []string{"new0", "new2"}) || sub.Dropped() != 2 || s.Stats().Dropped != 2 {
		t.Fatalf("subscription got %v, dropped %d (store %d)", got, sub.Dropped(), s.Stats().Dropped)
	}
	sub.Close()
	if _, ok := <-sub.C; ok {
		t.Fatal("channel open after Close")
	}
	var tail []string
	for len(tail) < 4 {
		select {
		case u := <-tailed:
			tail = append(tail, u)
		case <-time.After(30 * time.Second):
			t.Fatalf("tail got only %v (tail ended: %v)", tail, func() error { cancel(); return <-tailDone }())
		}
	}
	slices.Sort(tail)
	if want := []string{"new0", "new2", "new4", "next-day"}; !slices.Equal(tail, want) {
		t.Fatalf("tail got %v, want %v", tail, want)
	}
	cancel()
	if err := <-tailDone; err != nil {
		t.Fatal(err)
	}
}

// TestCountBefore: the records before a key in Query's (time, UID) order,
// across days and within a millisecond, with the filter applied: what a
// Query with a Limit left out.
func TestCountBefore(t *testing.T) {
	for mode, cfg := range storeModes(t) {
		t.Run(mode, func(t *testing.T) {
			cfg.Dir = t.TempDir()
			s := queryFixture(t, cfg)
			ctx := context.Background()
			same := flowtest.NetRecord("a2b", "web", "db", flow.VerdictAllow, "web-to-db", 10, t0.Add(time.Minute))
			if _, err := s.Ingest(ctx, []flow.Record{same}); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				f    flow.Filter
				key  Key
				want uint64
			}{
				{flow.Filter{}, Key{Time: flow.Millis(t0)}, 0},
				{flow.Filter{}, Key{Time: flow.Millis(t0), UID: "a1~"}, 1},
				{flow.Filter{}, KeyOf(&same), 2}, // a1, a2 (a2 < a2b in its millisecond)
				{flow.Filter{}, Key{Time: flow.Millis(t0.Add(48 * time.Hour))}, 8},
				{flow.Filter{To: "db"}, Key{Time: flow.Millis(t0.Add(48 * time.Hour))}, 4},
				{flow.Filter{Since: t0.Add(time.Minute)}, Key{Time: flow.Millis(t0.Add(24 * time.Hour)), UID: "b1"}, 5},
			} {
				got, err := s.CountBefore(ctx, c.f, c.key)
				if err != nil || got != c.want {
					t.Errorf("CountBefore(%+v, %+v) = %d, %v; want %d", c.f, c.key, got, err, c.want)
				}
			}
			// What a Query with a Limit left out, counted.
			recs, err := s.Query(ctx, flow.Filter{Limit: 3})
			if err != nil || len(recs) != 3 {
				t.Fatalf("query: %d records, %v", len(recs), err)
			}
			if n, err := s.CountBefore(ctx, flow.Filter{}, KeyOf(&recs[0])); err != nil || n != 5 {
				t.Fatalf("left out by limit 3 of 8: %d, %v; want 5", n, err)
			}
		})
	}
}
