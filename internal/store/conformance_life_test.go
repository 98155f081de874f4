package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func testCompaction(t *testing.T, open opener) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := open(t, nil)
	r1 := mustPut(t, s, "svc/a", "1")
	r2 := mustPut(t, s, "svc/b", "2")
	r3 := mustPut(t, s, "svc/c", "3")
	if err := s.Compact(ctx, r2); err != nil {
		t.Fatalf("Compact(%d): %v", r2, err)
	}
	if _, err := s.Watch(ctx, "svc/", r1); !errors.Is(err, ErrCompacted) {
		t.Fatalf("Watch from compacted revision %d = %v, want ErrCompacted", r1, err)
	}
	ch, err := s.Watch(ctx, "svc/", r2)
	if err != nil {
		t.Fatalf("Watch from the compaction revision %d: %v", r2, err)
	}
	if got, want := evString(next(t, ch)), fmt.Sprintf("put svc/c=3 @%d/%d", r3, r3); got != want {
		t.Fatalf("after compaction: event %q, want %q", got, want)
	}
	for _, rev := range []int64{r1, 0} {
		if err := s.Compact(ctx, rev); err != nil {
			t.Fatalf("Compact(%d), below an earlier compaction = %v, want nil", rev, err)
		}
	}
	if err := s.Compact(ctx, r3+1000); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Compact beyond the current revision = %v, want ErrInvalid", err)
	}
	kvs, _, err := s.List(ctx, "svc/")
	if err != nil || keys(kvs) != "svc/a svc/b svc/c" {
		t.Fatalf("values after compaction: %q, %v", keys(kvs), err)
	}
}

func testContextCancel(t *testing.T, open opener) {
	s := open(t, nil)
	r1 := mustPut(t, s, "svc/a", "1")
	mustPut(t, s, "svc/a", "2")
	mustPut(t, s, "svc/a", "3")

	// A watch whose consumer reads nothing still ends when its context does.
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := s.Watch(ctx, "svc/", r1-1)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	cancel()
	for _, ev := range waitClosed(t, ch) {
		if ev.Err != nil {
			t.Fatalf("cancelled watch sent error %v", ev.Err)
		}
	}

	dead, cancel := context.WithCancel(context.Background())
	cancel()
	calls := map[string]func() error{
		"Get":     func() error { _, err := s.Get(dead, "svc/a"); return err },
		"List":    func() error { _, _, err := s.List(dead, "svc/"); return err },
		"Put":     func() error { _, err := s.Put(dead, "svc/a", nil); return err },
		"Delete":  func() error { _, err := s.Delete(dead, "svc/a"); return err },
		"Txn":     func() error { _, err := s.Txn(dead, nil, []Op{Put("svc/b", nil)}); return err },
		"Watch":   func() error { _, err := s.Watch(dead, "svc/", 0); return err },
		"Rev":     func() error { _, err := s.Rev(dead); return err },
		"Compact": func() error { return s.Compact(dead, r1) },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context = %v, want context.Canceled", name, err)
		}
	}
	kv, err := s.Get(context.Background(), "svc/a")
	if err != nil || string(kv.Value) != "3" {
		t.Fatalf("after cancelled calls: Get = %q, %v; want the value unchanged", kv.Value, err)
	}
	if _, err := s.Get(context.Background(), "svc/b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a cancelled Txn applied: Get(svc/b) = %v", err)
	}
}

func testClose(t *testing.T, open opener) {
	ctx := context.Background()
	s := open(t, nil)
	mustPut(t, s, "svc/a", "1")
	ch, err := s.Watch(ctx, "", 0)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if evs := waitClosed(t, ch); len(evs) != 0 {
		t.Fatalf("watch sent %v while closing", evs)
	}
	if _, err := s.Get(ctx, "svc/a"); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Put(ctx, "svc/a", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Put after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Watch(ctx, "", 0); !errors.Is(err, ErrClosed) {
		t.Errorf("Watch after Close = %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}

// testSealed checks that sealing is invisible to callers: values, lists and
// watch events come back as written.
func testSealed(t *testing.T, open opener) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := open(t, newSealer(t))
	ch, err := s.Watch(ctx, "svc/", 0)
	if err != nil {
		t.Fatal(err)
	}
	r1 := mustPut(t, s, "svc/api", "secret")
	r2, err := s.Txn(ctx, []Cond{{Key: "svc/api", ModRevision: r1}}, []Op{Put("svc/api", []byte("secret2")), Put("svc/db", nil)})
	if err != nil {
		t.Fatalf("Txn: %v", err)
	}
	r3, _ := s.Delete(ctx, "svc/db")
	kv, err := s.Get(ctx, "svc/api")
	if err != nil || string(kv.Value) != "secret2" {
		t.Fatalf("Get = %q, %v", kv.Value, err)
	}
	kvs, _, err := s.List(ctx, "svc/")
	if err != nil || dump(kvs) != fmt.Sprintf("svc/api=secret2@%d/%d", r1, r2) {
		t.Fatalf("List = %s, %v", dump(kvs), err)
	}
	for i, w := range []string{
		fmt.Sprintf("put svc/api=secret @%d/%d", r1, r1),
		fmt.Sprintf("put svc/api=secret2 @%d/%d", r1, r2),
		fmt.Sprintf("put svc/db= @%d/%d", r2, r2),
		fmt.Sprintf("delete svc/db @%d", r3),
	} {
		if got := evString(next(t, ch)); got != w {
			t.Fatalf("event %d = %q, want %q", i, got, w)
		}
	}
}

func kvEqual(a, b KV) bool {
	return a.Key == b.Key && bytes.Equal(a.Value, b.Value) && a.CreateRevision == b.CreateRevision && a.ModRevision == b.ModRevision
}

func keys(kvs []KV) string {
	ks := make([]string, len(kvs))
	for i, kv := range kvs {
		ks[i] = kv.Key
	}
	return strings.Join(ks, " ")
}

func dump(kvs []KV) string {
	parts := make([]string, len(kvs))
	for i, kv := range kvs {
		parts[i] = fmt.Sprintf("%s=%s@%d/%d", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision)
	}
	return strings.Join(parts, " ")
}

func evString(ev Event) string {
	switch {
	case ev.Err != nil:
		return "error: " + ev.Err.Error()
	case ev.Type == EventDelete:
		return fmt.Sprintf("delete %s @%d", ev.KV.Key, ev.KV.ModRevision)
	}
	return fmt.Sprintf("%s %s=%s @%d/%d", ev.Type, ev.KV.Key, ev.KV.Value, ev.KV.CreateRevision, ev.KV.ModRevision)
}
