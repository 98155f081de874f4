package flowstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"moat/internal/flow"
	"moat/internal/flow/flowtest"
	"moat/internal/testkit"
)

// ingestServer is a real HTTP server on loopback in front of a Store, which
// can be stopped and started again on the same address.
type ingestServer struct {
	t     *testing.T
	store *Store
	addr  string
	srv   *http.Server
	// loseReplies makes the next n requests store their batch and then
	// answer 500, as if the reply were lost: the client sends again.
	loseReplies atomic.Int32
	requests    atomic.Int64
}

func (s *ingestServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	var recs []flow.Record
	if err := json.NewDecoder(r.Body).Decode(&recs); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if _, err := s.store.Ingest(r.Context(), recs); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if s.loseReplies.Add(-1) >= 0 {
		http.Error(w, "reply lost", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *ingestServer) start() {
	s.t.Helper()
	if s.addr == "" {
		// A restart listens on the address senders already use: one from
		// 127.0.0.1:0 could be taken meanwhile by any other listener or
		// connection, one from ports cannot.
		port, err := ports.Run(1)
		if err != nil {
			s.t.Fatal(err)
		}
		s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatalf("listen %s: %v", s.addr, err)
	}
	s.srv = &http.Server{Handler: s}
	go s.srv.Serve(ln)
}

func (s *ingestServer) stop() { s.srv.Close() }

// send is a Shipper's Send over HTTP.
func (s *ingestServer) send(ctx context.Context, recs []flow.Record) error {
	body, err := json.Marshal(recs)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.addr+"/flows", bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("server answered %s", resp.Status)
	}
	return nil
}

var waitFor = testkit.WaitFor

// ports are below the kernel's ephemeral range and split between the
// packages that hand them out (testkit.Ports): this package takes
// 19100-19199.
var ports = testkit.NewPorts(19100, 19200)

type runningShipper struct {
	sh   *flow.Shipper
	stop context.CancelFunc
	done chan error
}

func startShipper(t *testing.T, cfg flow.ShipperConfig) *runningShipper {
	t.Helper()
	sh, err := flow.NewShipper(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rs := &runningShipper{sh: sh, stop: cancel, done: make(chan error, 1)}
	go func() { rs.done <- sh.Run(ctx) }()
	return rs
}

func (rs *runningShipper) halt(t *testing.T) {
	t.Helper()
	rs.stop()
	if err := <-rs.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestOutageEveryRecordArrivesExactlyOnce(t *testing.T) {
	store := openTestStore(t, StoreConfig{})
	srv := &ingestServer{t: t, store: store}
	srv.start()
	defer srv.stop()

	spoolDir := t.TempDir()
	spool, err := flow.OpenSpool(flow.SpoolConfig{Dir: spoolDir, SegmentBytes: 32 << 10})
	if err != nil {
		t.Fatal(err)
	}
	cfg := flow.ShipperConfig{
		Send: srv.send, Spool: spool, BatchSize: 50,
		FlushEvery: 5 * time.Millisecond, MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		SendTimeout: 5 * time.Second,
	}
	rs := startShipper(t, cfg)

	var produced []string
	produce := func(w flow.Writer, phase string, n int) {
		for i := range n {
			r := flowtest.NetRecord(fmt.Sprintf("%s-%05d", phase, i), "web", "db", flow.VerdictAllow, "web-to-db", 100, t0.Add(time.Duration(len(produced))*time.Millisecond))
			if err := w.Write(r); err != nil {
				t.Fatalf("Write: %v", err)
			}
			produced = append(produced, r.Metadata.UID)
			if i%100 == 99 {
				time.Sleep(time.Millisecond) // let the shipper run between bursts
			}
		}
	}

	t.Log("phase 1: server up")
	produce(rs.sh, "up", 1000)
	waitFor(t, "phase 1 delivered", func() bool { return store.Stats().Stored == 1000 })

	t.Log("phase 2: server stopped, the agent keeps producing")
	srv.stop()
	produce(rs.sh, "down", 1000)
	waitFor(t, "records spooled", func() bool { return spool.Stats().Records > 0 && rs.sh.Stats().SendErrors > 0 })

	t.Log("phase 3: the agent restarts during the outage")
	rs.halt(t)
	before := rs.sh.Stats()
	if err := spool.Close(); err != nil {
		t.Fatal(err)
	}
	spool, err = flow.OpenSpool(flow.SpoolConfig{Dir: spoolDir, SegmentBytes: 32 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer spool.Close()
	cfg.Spool = spool
	rs = startShipper(t, cfg)
	produce(rs.sh, "restart", 500)
	waitFor(t, "second shipper failing to send", func() bool { return rs.sh.Stats().SendErrors > 0 })

	t.Log("phase 4: server back; the first replies are lost so batches arrive twice")
	srv.loseReplies.Store(3)
	srv.start()
	produce(rs.sh, "back", 1000)
	waitFor(t, "every record stored", func() bool { return store.Stats().Stored >= uint64(len(produced)) })
	waitFor(t, "spool drained", func() bool { return spool.Stats().Records == 0 })
	rs.halt(t)
	after := rs.sh.Stats()

	got, err := store.Query(context.Background(), flow.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	gotIDs := flowtest.UIDs(got)
	sort.Strings(gotIDs)
	want := slices.Clone(produced)
	sort.Strings(want)
	if len(gotIDs) != len(want) || !slices.Equal(gotIDs, want) {
		t.Fatalf("stored %d records, produced %d; the ID sets differ", len(gotIDs), len(want))
	}
	st := store.Stats()
	t.Logf("stored %d, duplicates ignored %d; shipper before restart %+v, after %+v", st.Stored, st.Duplicates, before, after)
	if st.Stored != uint64(len(produced)) {
		t.Fatalf("stored %d, want %d", st.Stored, len(produced))
	}
	if st.Duplicates == 0 {
		t.Fatal("no duplicate reached the store: the lost replies were not exercised")
	}
	if before.Dropped != 0 || after.Dropped != 0 || spool.Dropped() != 0 {
		t.Fatalf("records dropped: %d, %d, spool %d", before.Dropped, after.Dropped, spool.Dropped())
	}
	if before.Spooled == 0 {
		t.Fatal("nothing was spooled during the outage")
	}
}

func TestShipperRejectsInvalidRecord(t *testing.T) {
	sh, err := flow.NewShipper(flow.ShipperConfig{Send: func(context.Context, []flow.Record) error { return nil }, Spool: flowtest.OpenSpool(t, flow.SpoolConfig{})})
	if err != nil {
		t.Fatal(err)
	}
	r := flowtest.NetRecord("", "web", "db", flow.VerdictAllow, "r", 1, t0)
	if err := sh.Write(r); err == nil || sh.Stats().Rejected != 1 {
		t.Fatalf("Write of a record without uid = %v, stats %+v", err, sh.Stats())
	}
	if _, err := flow.NewShipper(flow.ShipperConfig{Spool: flowtest.OpenSpool(t, flow.SpoolConfig{})}); err == nil {
		t.Fatal("NewShipper without Send succeeded")
	}
	if _, err := flow.NewShipper(flow.ShipperConfig{Send: func(context.Context, []flow.Record) error { return nil }}); err == nil {
		t.Fatal("NewShipper without Spool succeeded")
	}
}

// TestShipperWriteAheadSurvivesCrash writes from many goroutines while the
// server refuses every batch, then opens the spool directory again without
// closing anything, as an agent restarted after SIGKILL would: every
// record whose Write returned is there.
func TestShipperWriteAheadSurvivesCrash(t *testing.T) {
	dir := t.TempDir()
	spool, err := flow.OpenSpool(flow.SpoolConfig{Dir: dir, SegmentBytes: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	var attempts atomic.Int64
	rs := startShipper(t, flow.ShipperConfig{
		Spool: spool, BatchSize: 20, FlushEvery: time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond,
		Send: func(context.Context, []flow.Record) error { attempts.Add(1); return fmt.Errorf("server down") },
	})
	defer rs.halt(t)
	const writers, each = 8, 300
	var wg sync.WaitGroup
	var mu sync.Mutex
	var written []string
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, r := range flowtest.Records(fmt.Sprintf("w%d", w), each) {
				if err := rs.sh.Write(r); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				written = append(written, r.Metadata.UID)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	waitFor(t, "a failed send", func() bool { return attempts.Load() > 0 })

	t.Log("the process dies here: nothing is closed or flushed; a new spool opens the directory")
	again, err := flow.OpenSpool(flow.SpoolConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	got := flowtest.DrainAll(t, again)
	sort.Strings(got)
	sort.Strings(written)
	if !slices.Equal(got, written) {
		t.Fatalf("after the crash the spool holds %d records, %d were written", len(got), len(written))
	}
	if st := rs.sh.Stats(); st.Spooled != writers*each || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// BenchmarkShipperWrite is the cost write-ahead adds to each record: the
// sealed append to the spool file, with writers in parallel sharing
// writes.
func BenchmarkShipperWrite(b *testing.B) {
	for _, sealed := range []bool{false, true} {
		b.Run(fmt.Sprintf("sealed=%v", sealed), func(b *testing.B) {
			cfg := flow.SpoolConfig{Dir: b.TempDir(), MaxBytes: 1 << 40}
			if sealed {
				cfg.Sealer = flowtest.NewAEAD(b)
			}
			spool, err := flow.OpenSpool(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer spool.Close()
			sh, err := flow.NewShipper(flow.ShipperConfig{Spool: spool, Send: func(context.Context, []flow.Record) error { return nil }})
			if err != nil {
				b.Fatal(err)
			}
			r := flowtest.Records("bench", 1)[0]
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := sh.Write(r); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
