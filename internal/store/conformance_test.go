package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// opener returns a fresh, empty store for one subtest; sealer may be nil.
type opener func(t *testing.T, sealer Sealer) Store

// TestConformance runs the one contract against every implementation.
func TestConformance(t *testing.T) {
	t.Run("bolt", func(t *testing.T) {
		runConformance(t, func(t *testing.T, sealer Sealer) Store {
			return openBolt(t, BoltConfig{Dir: t.TempDir(), Sealer: sealer})
		})
	})
	t.Run("etcd", func(t *testing.T) {
		url := startEtcd(t)
		n := 0
		runConformance(t, func(t *testing.T, sealer Sealer) Store {
			n++ // subtests run one after another
			return openEtcdPrefix(t, url, fmt.Sprintf("/moat/conformance-%d/", n), sealer)
		})
	})
}

func runConformance(t *testing.T, open opener) {
	tests := []struct {
		name string
		run  func(t *testing.T, open opener)
	}{
		{"GetPutDelete", testGetPutDelete},
		{"List", testList},
		{"Txn", testTxn},
		{"TxnInvalid", testTxnInvalid},
		{"ConcurrentTxnOneWinner", testConcurrentOneWinner},
		{"ConcurrentTxnCounter", testConcurrentCounter},
		{"WatchOrder", testWatchOrder},
		{"WatchReplay", testWatchReplay},
		{"WatchFromNow", testWatchFromNow},
		{"Compaction", testCompaction},
		{"ContextCancel", testContextCancel},
		{"Close", testClose},
		{"Sealed", testSealed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open) })
	}
}

func mustPut(t *testing.T, s Store, key, value string) int64 {
	t.Helper()
	rev, err := s.Put(context.Background(), key, []byte(value))
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return rev
}

func mustRev(t *testing.T, s Store) int64 {
	t.Helper()
	rev, err := s.Rev(context.Background())
	if err != nil {
		t.Fatalf("Rev: %v", err)
	}
	return rev
}

func testGetPutDelete(t *testing.T, open opener) {
	ctx := context.Background()
	s := open(t, nil)
	rev0 := mustRev(t, s)
	if _, err := s.Get(ctx, "svc/api"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(absent) = %v, want ErrNotFound", err)
	}
	r1 := mustPut(t, s, "svc/api", "v1")
	if r1 <= rev0 {
		t.Fatalf("Put rev %d, want > %d", r1, rev0)
	}
	kv, err := s.Get(ctx, "svc/api")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if want := (KV{Key: "svc/api", Value: []byte("v1"), CreateRevision: r1, ModRevision: r1}); !kvEqual(kv, want) {
		t.Fatalf("Get = %+v, want %+v", kv, want)
	}
	r2 := mustPut(t, s, "svc/api", "v2")
	kv, _ = s.Get(ctx, "svc/api")
	if want := (KV{Key: "svc/api", Value: []byte("v2"), CreateRevision: r1, ModRevision: r2}); r2 <= r1 || !kvEqual(kv, want) {
		t.Fatalf("after second Put (rev %d): Get = %+v, want %+v", r2, kv, want)
	}
	r3, err := s.Delete(ctx, "svc/api")
	if err != nil || r3 <= r2 {
		t.Fatalf("Delete = %d, %v; want a revision > %d", r3, err, r2)
	}
	if _, err := s.Get(ctx, "svc/api"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
	}
	r4, err := s.Delete(ctx, "svc/api")
	if err != nil || r4 != r3 || mustRev(t, s) != r3 {
		t.Fatalf("Delete(absent) = %d, %v; want the unchanged revision %d", r4, err, r3)
	}
	r5 := mustPut(t, s, "svc/api", "")
	kv, err = s.Get(ctx, "svc/api")
	if err != nil || kv.CreateRevision != r5 || len(kv.Value) != 0 {
		t.Fatalf("recreated with empty value: Get = %+v, %v; want CreateRevision %d and no value", kv, err, r5)
	}
	if _, err := s.Get(ctx, ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Get(\"\") = %v, want ErrInvalid", err)
	}
}

func testList(t *testing.T, open opener) {
	ctx := context.Background()
	s := open(t, nil)
	for _, k := range []string{"svc/web", "node/n1", "svc/api", "svcx", "svc/db"} {
		mustPut(t, s, k, "val-"+k)
	}
	kvs, rev, err := s.List(ctx, "svc/")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if got, want := keys(kvs), "svc/api svc/db svc/web"; got != want {
		t.Fatalf("List(svc/) keys = %q, want %q", got, want)
	}
	for _, kv := range kvs {
		if string(kv.Value) != "val-"+kv.Key || kv.ModRevision == 0 || kv.CreateRevision == 0 {
			t.Fatalf("List entry %+v: wrong value or revisions", kv)
		}
	}
	if cur := mustRev(t, s); rev != cur {
		t.Fatalf("List rev %d, current %d", rev, cur)
	}
	all, _, err := s.List(ctx, "")
	if err != nil || keys(all) != "node/n1 svc/api svc/db svc/web svcx" {
		t.Fatalf("List(\"\") = %q, %v", keys(all), err)
	}
	none, _, err := s.List(ctx, "token/")
	if err != nil || len(none) != 0 {
		t.Fatalf("List(token/) = %v, %v; want nothing", none, err)
	}
}

func testTxn(t *testing.T, open opener) {
	ctx := context.Background()
	s := open(t, nil)
	base := mustPut(t, s, "policy/current", "p1")
	tests := []struct {
		name     string
		conds    []Cond
		ops      []Op
		conflict bool
	}{
		{"absent key absent", []Cond{{Key: "token/t1", ModRevision: 0}}, []Op{Put("token/t1", []byte("n1"))}, false},
		{"absent key now present", []Cond{{Key: "token/t1", ModRevision: 0}}, []Op{Put("token/t1", []byte("n2"))}, true},
		{"stale revision", []Cond{{Key: "policy/current", ModRevision: base - 1}}, []Op{Put("policy/current", []byte("p0"))}, true},
		{"present key said absent", []Cond{{Key: "policy/current", ModRevision: 0}}, []Op{Delete("policy/current")}, true},
		{"one of two conds fails", []Cond{{Key: "policy/current", ModRevision: base}, {Key: "token/none", ModRevision: 5}}, []Op{Put("policy/current", []byte("px"))}, true},
		{"current revision", []Cond{{Key: "policy/current", ModRevision: base}}, []Op{Put("policy/current", []byte("p2")), Delete("token/t1"), Put("svc/a", []byte("a"))}, false},
	}
	for _, tt := range tests {
		before, _, err := s.List(ctx, "")
		if err != nil {
			t.Fatalf("%s: List: %v", tt.name, err)
		}
		rev, err := s.Txn(ctx, tt.conds, tt.ops)
		after, afterRev, lerr := s.List(ctx, "")
		if lerr != nil {
			t.Fatalf("%s: List: %v", tt.name, lerr)
		}
		if tt.conflict {
			if !errors.Is(err, ErrConflict) {
				t.Fatalf("%s: Txn = %d, %v; want ErrConflict", tt.name, rev, err)
			}
			if dump(before) != dump(after) {
				t.Fatalf("%s: failed Txn changed the store:\nbefore %s\nafter  %s", tt.name, dump(before), dump(after))
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: Txn: %v", tt.name, err)
		}
		if rev != afterRev {
			t.Fatalf("%s: Txn rev %d, store at %d", tt.name, rev, afterRev)
		}
		for _, op := range tt.ops {
			kv, err := s.Get(ctx, op.Key)
			switch {
			case op.Kind == OpDelete && !errors.Is(err, ErrNotFound):
				t.Fatalf("%s: %q still present after delete (%v)", tt.name, op.Key, err)
			case op.Kind == OpPut && (err != nil || kv.ModRevision != rev || !bytes.Equal(kv.Value, op.Value)):
				t.Fatalf("%s: Get(%q) = %+v, %v; want value %q at revision %d", tt.name, op.Key, kv, err, op.Value, rev)
			}
		}
	}
	// A Txn that changes nothing does not make a revision.
	cur := mustRev(t, s)
	if rev, err := s.Txn(ctx, []Cond{{Key: "token/t1", ModRevision: 0}}, []Op{Delete("token/t1")}); err != nil || rev != cur {
		t.Fatalf("no-op Txn = %d, %v; want %d", rev, err, cur)
	}
}

func testTxnInvalid(t *testing.T, open opener) {
	ctx := context.Background()
	s := open(t, nil)
	tests := []struct {
		name  string
		conds []Cond
		ops   []Op
	}{
		{"empty op key", nil, []Op{Put("", []byte("x"))}},
		{"empty cond key", []Cond{{Key: "", ModRevision: 0}}, nil},
		{"negative revision", []Cond{{Key: "a", ModRevision: -1}}, nil},
		{"same key twice", nil, []Op{Put("a", nil), Delete("a")}},
		{"unknown op kind", nil, []Op{{Kind: 9, Key: "a"}}},
		{"invalid utf-8", nil, []Op{Put("svc/\xff", nil)}},
		{"key too long", nil, []Op{Put(strings.Repeat("k", MaxKeyLen+1), nil)}},
		{"value too long", nil, []Op{Put("a", make([]byte, MaxTxnBytes))}},
		{"values too long together", nil, []Op{Put("a", make([]byte, MaxTxnBytes/2)), Put("b", make([]byte, MaxTxnBytes/2))}},
		{"too many ops", nil, manyOps(MaxTxnOps + 1)},
	}
	for _, tt := range tests {
		if _, err := s.Txn(ctx, tt.conds, tt.ops); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Txn = %v, want ErrInvalid", tt.name, err)
		}
	}
	if kvs, _, _ := s.List(ctx, ""); len(kvs) != 0 {
		t.Errorf("invalid Txns left %s", dump(kvs))
	}
	// The limits themselves are accepted.
	if _, err := s.Txn(ctx, nil, manyOps(MaxTxnOps)); err != nil {
		t.Errorf("Txn of %d ops: %v", MaxTxnOps, err)
	}
	if _, err := s.Put(ctx, strings.Repeat("k", MaxKeyLen), make([]byte, MaxTxnBytes-MaxKeyLen)); err != nil {
		t.Errorf("Put of the longest key and value: %v", err)
	}
}

func manyOps(n int) []Op {
	ops := make([]Op, n)
	for i := range ops {
		ops[i] = Put(fmt.Sprintf("k%d", i), []byte("v"))
	}
	return ops
}

// testConcurrentOneWinner is the single-use token: many callers redeem the
// same token at once, exactly one succeeds.
func testConcurrentOneWinner(t *testing.T, open opener) {
	ctx := context.Background()
	s := open(t, nil)
	tokRev := mustPut(t, s, "token/abc", "node/n1")
	const n = 8
	var (
		wg              sync.WaitGroup
		mu              sync.Mutex // guards wins, conflicts, others
		wins, conflicts int
		others          []error
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Txn(ctx, []Cond{{Key: "token/abc", ModRevision: tokRev}}, []Op{Delete("token/abc"), Put("node/n1", []byte(strconv.Itoa(i)))})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, ErrConflict):
				conflicts++
			default:
				others = append(others, err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 || conflicts != n-1 || len(others) != 0 {
		t.Fatalf("%d wins, %d conflicts, other errors %v; want 1 and %d", wins, conflicts, others, n-1)
	}
}

// testConcurrentCounter increments one counter by compare-and-swap from
// several goroutines; no increment may be lost.
func testConcurrentCounter(t *testing.T, open opener) {
	ctx := context.Background()
	s := open(t, nil)
	const workers, each, maxTries = 4, 10, 1000
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if err := increment(ctx, s, "counter", maxTries); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	kv, err := s.Get(ctx, "counter")
	if err != nil || string(kv.Value) != strconv.Itoa(workers*each) {
		t.Fatalf("counter = %q, %v; want %d", kv.Value, err, workers*each)
	}
}

func increment(ctx context.Context, s Store, key string, maxTries int) error {
	for range maxTries {
		n, mod := 0, int64(0)
		kv, err := s.Get(ctx, key)
		switch {
		case err == nil:
			if n, err = strconv.Atoi(string(kv.Value)); err != nil {
				return err
			}
			mod = kv.ModRevision
		case !errors.Is(err, ErrNotFound):
			return err
		}
		_, err = s.Txn(ctx, []Cond{{Key: key, ModRevision: mod}}, []Op{Put(key, []byte(strconv.Itoa(n+1)))})
		if !errors.Is(err, ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("increment: %d conflicts in a row", maxTries)
}

func testWatchOrder(t *testing.T, open opener) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := open(t, nil)
	mustPut(t, s, "svc/old", "before")
	_, rev, err := s.List(ctx, "svc/")
	if err != nil {
		t.Fatal(err)
	}
	ch, err := s.Watch(ctx, "svc/", rev)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	r1 := mustPut(t, s, "svc/a", "1")
	mustPut(t, s, "node/n1", "not watched")
	r2 := mustPut(t, s, "svc/b", "2")
	r3, _ := s.Delete(ctx, "svc/a")
	r4, err := s.Txn(ctx, nil, []Op{Put("svc/c", []byte("3")), Put("svc/d", []byte("4")), Put("node/n2", nil)})
	if err != nil {
		t.Fatal(err)
	}
	r5 := mustPut(t, s, "svc/b", "2b")
	want := []string{
		fmt.Sprintf("put svc/a=1 @%d/%d", r1, r1),
		fmt.Sprintf("put svc/b=2 @%d/%d", r2, r2),
		fmt.Sprintf("delete svc/a @%d", r3),
		fmt.Sprintf("put svc/c=3 @%d/%d", r4, r4),
		fmt.Sprintf("put svc/d=4 @%d/%d", r4, r4),
		fmt.Sprintf("put svc/b=2b @%d/%d", r2, r5),
	}
	for i, w := range want {
		if got := evString(next(t, ch)); got != w {
			t.Fatalf("event %d = %q, want %q", i, got, w)
		}
	}
}

func testWatchReplay(t *testing.T, open opener) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := open(t, nil)
	r1 := mustPut(t, s, "node/n1", "a")
	r2 := mustPut(t, s, "node/n2", "b")
	r3 := mustPut(t, s, "node/n1", "c")
	ch, err := s.Watch(ctx, "node/", r1)
	if err != nil {
		t.Fatalf("Watch from the past: %v", err)
	}
	for i, w := range []string{
		fmt.Sprintf("put node/n2=b @%d/%d", r2, r2),
		fmt.Sprintf("put node/n1=c @%d/%d", r1, r3),
	} {
		if got := evString(next(t, ch)); got != w {
			t.Fatalf("replayed event %d = %q, want %q", i, got, w)
		}
	}
	// A watch from a revision not yet reached waits for it.
	future, err := s.Watch(ctx, "node/", r3+1)
	if err != nil {
		t.Fatalf("Watch from the future: %v", err)
	}
	r4 := mustPut(t, s, "node/n3", "skipped")
	if r4 != r3+1 {
		t.Fatalf("the next write made revision %d, want %d (nothing else writes here)", r4, r3+1)
	}
	r5 := mustPut(t, s, "node/n3", "seen")
	if got, w := evString(next(t, future)), fmt.Sprintf("put node/n3=seen @%d/%d", r4, r5); got != w {
		t.Fatalf("future watch got %q, want %q", got, w)
	}
}

func testWatchFromNow(t *testing.T, open opener) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := open(t, nil)
	r0 := mustPut(t, s, "svc/a", "old")
	ch, err := s.Watch(ctx, "", 0)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	r := mustPut(t, s, "svc/a", "new")
	if got, want := evString(next(t, ch)), fmt.Sprintf("put svc/a=new @%d/%d", r0, r); got != want {
		t.Fatalf("first event = %q, want %q (the earlier change is not news)", got, want)
	}
}
