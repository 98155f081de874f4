package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/flow/flowstore"
	"moat/internal/store"
	"moat/internal/store/storetest"
	"moat/internal/testkit"
)

// TestRestoreEpoch: a store marked restored (MarkRestored, as moat backup
// restore does) has an epoch above the backup's and the restore's clock
// second; every frame of the watch stream carries it, a stream opened at
// the earlier epoch ends rather than go on at the new one, and the first
// server started on the store records the restore in the audit log, once.
func TestRestoreEpoch(t *testing.T) {
	url := storetest.StartEtcd(t)
	f := newAuthFixtureWith(t, authOptions{etcd: []string{url}})
	node := f.joinNode(t, "web-1")

	before := f.openWatch(t, node)
	if u := before.next(t); !u.Full || u.Epoch != 0 {
		t.Fatalf("first snapshot: full %v epoch %d, want a snapshot of epoch 0", u.Full, u.Epoch)
	}

	made := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := time.Unix(1_800_000_000, 0)
	epoch, err := MarkRestored(f.ctx, f.st, made, clock)
	if err != nil {
		t.Fatal(err)
	}
	if epoch != clock.Unix() {
		t.Fatalf("epoch %d, want the restore's second %d", epoch, clock.Unix())
	}
	t.Log("a stream of the earlier epoch ends")
	before.ends(t)

	t.Log("restored again on a clock behind: the epoch still grows")
	again, err := MarkRestored(f.ctx, f.st, made, clock.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if again != epoch+1 {
		t.Fatalf("epoch %d after %d on a clock behind, want %d", again, epoch, epoch+1)
	}

	w := f.openWatch(t, node)
	if u := w.next(t); !u.Full || u.Epoch != again {
		t.Fatalf("snapshot after the restore: full %v epoch %d, want a snapshot of epoch %d", u.Full, u.Epoch, again)
	}
	t.Log("the same epoch written again, as a re-encryption pass does, ends no stream")
	kv, err := f.st.Get(f.ctx, keyEpoch)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.Put(f.ctx, keyEpoch, kv.Value); err != nil {
		t.Fatal(err)
	}
	reg := api.Registration{Name: "api", Node: "web-1", Port: 8080}
	if code, e := f.call(t, f.accs["op"].session, "POST", api.PathServices, reg, nil); code != http.StatusOK {
		t.Fatalf("register api: %d %s", code, e.Error)
	}
	if u := w.next(t); u.Full || len(u.Services) != 1 || u.Epoch != again {
		t.Fatalf("change after the restore: %+v, want api's registration at epoch %d", u, again)
	}

	t.Log("servers started on the restored store record the restore once")
	f.serverOn(t, url, nil)
	f.serverOn(t, url, nil)
	var found []map[string]string
	es, err := f.log.Entries(0, f.log.Size())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Entry.Action == ActionRestored {
			found = append(found, e.Entry.Detail)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d restore entries, want 1", len(found))
	}
	d := found[0]
	if d["epoch"] != "1800000001" || d["from_epoch"] != "1800000000" || d["backup_made"] != "2026-01-02T03:04:05Z" || d["log_size"] == "" {
		t.Fatalf("restore entry: %v", d)
	}
}

// TestRestoreEpochBounded: a stored restore record that is not one
// (an epoch out of range, or not above the one it came from) fails the
// next restore and a server's start, naming the key, rather than wrap
// around.
func TestRestoreEpochBounded(t *testing.T) {
	ctx := context.Background()
	for _, rec := range []string{`{"epoch":9223372036854775807,"from_epoch":0}`, `{"epoch":0,"from_epoch":0}`, `{"epoch":5,"from_epoch":5}`, `{"epoch":5,"from_epoch":-1}`} {
		st, err := store.OpenBolt(store.BoltConfig{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Put(ctx, keyEpoch, []byte(rec)); err != nil {
			t.Fatal(err)
		}
		_, err = MarkRestored(ctx, st, time.Now(), time.Now())
		if err == nil || !strings.Contains(err.Error(), `stored "restore/epoch"`) {
			t.Errorf("%s: %v, want it refused, naming the key", rec, err)
		}
		st.Close()
	}
}

// watchStream is a node's watch stream, read frame by frame.
type watchStream struct {
	dec *json.Decoder
}

func (f *authFixture) openWatch(t *testing.T, node *tls.Certificate) *watchStream {
	t.Helper()
	tr := f.transport(node)
	t.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(f.ctx, testkit.WaitLimit)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", "https://"+f.srv.Addr()+api.PathWatch, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("watch: %d", resp.StatusCode)
	}
	return &watchStream{dec: json.NewDecoder(resp.Body)}
}

// next returns the stream's next frame that is not a heartbeat.
func (w *watchStream) next(t *testing.T) api.Update {
	t.Helper()
	for {
		var u api.Update
		if err := w.dec.Decode(&u); err != nil {
			t.Fatalf("watch frame: %v", err)
		}
		if !u.Heartbeat {
			return u
		}
	}
}

// ends waits for the server to end the stream, failing on a frame other
// than a heartbeat, or at the stream's deadline.
func (w *watchStream) ends(t *testing.T) {
	t.Helper()
	for {
		var u api.Update
		err := w.dec.Decode(&u)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatal("the stream did not end")
			}
			return
		}
		if !u.Heartbeat {
			t.Fatalf("frame after the store was restored: %+v", u)
		}
	}
}

// TestRestoreAuditedOnceByTwo: two servers starting together on one
// restored etcd store write the restore's audit entry once between them.
// The first is held inside its write of the entry while the second
// starts: the second finds the writing claimed (and, before the claim,
// wrote it a second time).
func TestRestoreAuditedOnceByTwo(t *testing.T) {
	url := storetest.StartEtcd(t)
	f := newAuthFixtureWith(t, authOptions{etcd: []string{url}})
	if _, err := MarkRestored(f.ctx, f.st, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), time.Unix(1_800_000_000, 0)); err != nil {
		t.Fatal(err)
	}
	in, release := make(chan struct{}), make(chan struct{})
	var held atomic.Bool
	rec := audit.RecorderFunc(func(ctx context.Context, e audit.Entry) error {
		if e.Action == ActionRestored && held.CompareAndSwap(false, true) {
			close(in)
			<-release
		}
		return f.log.Record(ctx, e)
	})
	first := make(chan *Server, 1)
	go func() { first <- startOn(t, f, url, "a", rec, nil) }()
	select {
	case <-in:
	case s := <-first:
		t.Fatalf("server a started (%v) without writing the restore's entry", s != nil)
	}
	t.Log("a writes the restore's entry; b starts meanwhile")
	startOn(t, f, url, "b", rec, nil)
	close(release)
	if s := <-first; s == nil {
		t.Fatal("server a did not start")
	}
	es, err := f.log.Entries(0, f.log.Size())
	if err != nil {
		t.Fatal(err)
	}
	var by []string
	for _, e := range es {
		if e.Entry.Action == ActionRestored {
			by = append(by, e.Entry.Detail["server"])
		}
	}
	if len(by) != 1 || by[0] != "a" {
		t.Fatalf("restore entries written by %v, want one, by a", by)
	}
	r, _, err := readEpoch(f.ctx, f.st)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Audited || r.AuditedBy != "a" {
		t.Fatalf("restore record: audited %v by %q, want audited by a", r.Audited, r.AuditedBy)
	}
}

// startOn starts a server named name on the etcd store at url, sharing
// f's keyring and audit log through rec, on the clock now (nil: the
// system's), and returns it once ready (nil if it failed to start, which
// the test is then failed for).
func startOn(t *testing.T, f *authFixture, url, name string, rec audit.Recorder, now func() time.Time) *Server {
	st, err := store.OpenEtcd(f.ctx, store.EtcdConfig{Endpoints: []string{url}, Prefix: "/moat/",
		Sealer: NewStoreSealer(f.kr.AEAD()), RequestTimeout: 3 * time.Second})
	if err != nil {
		t.Error(err)
		return nil
	}
	t.Cleanup(func() { st.Close() })
	fs, err := flowstore.OpenStore(flowstore.StoreConfig{Dir: t.TempDir()})
	if err != nil {
		t.Error(err)
		return nil
	}
	t.Cleanup(func() { fs.Close() })
	ctx, cancel := context.WithCancel(f.ctx)
	srv, err := New(ctx, Config{Listen: "127.0.0.1:0", Name: name, Store: st, Sealer: f.kr.AEAD(), Audit: rec, AuditLog: f.log, Flows: fs,
		Heartbeat: 100 * time.Millisecond, Logger: slog.New(slog.DiscardHandler), Now: now})
	if err != nil {
		cancel()
		t.Error(err)
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-srv.Ready():
		return srv
	case <-time.After(30 * time.Second):
		t.Errorf("server %s not ready in 30s", name)
		return nil
	}
}
