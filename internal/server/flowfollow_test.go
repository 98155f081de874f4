package server

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/flow"
	"moat/internal/flow/flowstore"
	"moat/internal/store"
	"moat/internal/testkit"
)

// cutProxy forwards TCP connections to a server and can cut them all,
// refusing new ones, until it is mended: a network partition between a
// member and the servers that follow it.
type cutProxy struct {
	ln     net.Listener
	mu     sync.Mutex
	target string
	cut    bool
	conns  map[net.Conn]bool
}

func newCutProxy(t *testing.T) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.setCut(true) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return false
	}
	p.conns[c] = true
	return true
}

func (p *cutProxy) serve(c net.Conn) {
	p.mu.Lock()
	target := p.target
	p.mu.Unlock()
	if !p.track(c) {
		c.Close()
		return
	}
	up, err := net.Dial("tcp", target)
	if err != nil || !p.track(up) {
		c.Close()
		if up != nil {
			up.Close()
		}
		return
	}
	go func() { io.Copy(up, c); up.Close() }()
	io.Copy(c, up)
	c.Close()
}

// setCut cuts (closing every connection through the proxy) or mends it.
func (p *cutProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
		clear(p.conns)
	}
}

// followLog is what a follow stream delivered: each record's UID in
// order, and the last heartbeat.
type followLog struct {
	mu      sync.Mutex
	uids    []string
	count   map[string]int
	last    api.FlowFrame
	backlog int // records before the first heartbeat; -1 until it came
}

func (l *followLog) frame(fr api.FlowFrame) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case fr.Record != nil:
		l.uids = append(l.uids, fr.Record.Metadata.UID)
		l.count[fr.Record.Metadata.UID]++
	case fr.Heartbeat:
		if l.backlog < 0 {
			l.backlog = len(l.uids)
		}
		l.last = fr
	}
	return nil
}

// missing returns those of uids the stream did not deliver.
func (l *followLog) missing(uids []string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, u := range uids {
		if l.count[u] == 0 {
			out = append(out, u)
		}
	}
	return out
}

func (l *followLog) heartbeat() api.FlowFrame {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// TestClusterFollowNoGaps follows a two-server cluster through s1 while
// records are stored by s2 alone. The stream to s2 is cut and more
// records than the follow's Limit are stored by s2 meanwhile (some in the
// millisecond of the last one delivered before the cut, some minutes older
// than any delivered): once it mends, every one of them is delivered, once. A third server that joins later
// delivers every record it stored since the follow began, not only its
// newest Limit, and none from before.
func TestClusterFollowNoGaps(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	st, err := store.OpenBolt(store.BoltConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	adminDir := filepath.Join(dir, "admin")
	if err := Init(ctx, st, InitConfig{TrustDomain: "example.org", AdminDir: adminDir}); err != nil {
		t.Fatal(err)
	}
	servers := map[string]*Server{}
	flows := map[string]*flowstore.Store{}
	open := func(name string) {
		fs, err := flowstore.OpenStore(flowstore.StoreConfig{Dir: filepath.Join(dir, name, "flows")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { fs.Close() })
		flows[name] = fs
	}
	run := func(name, advertise string) *Server {
		srv, err := New(ctx, Config{Listen: "127.0.0.1:0", Advertise: advertise, Name: name, Store: st, Flows: flows[name],
			Heartbeat: 500 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
			Audit: audit.RecorderFunc(func(context.Context, audit.Entry) error { return nil })})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { srv.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		servers[name] = srv
		return srv
	}
	ingest := func(name string, recs ...flow.Record) []string {
		t.Helper()
		if _, err := flows[name].Ingest(ctx, recs); err != nil {
			t.Fatal(err)
		}
		var uids []string
		for _, r := range recs {
			uids = append(uids, r.Metadata.UID)
		}
		return uids
	}
	batch := func(prefix string, n int, at time.Time) []flow.Record {
		var out []flow.Record
		for i := range n {
			out = append(out, flowRecord(fmt.Sprintf("%s-%03d", prefix, i), "web", "db", 10, at.Add(time.Duration(i)*time.Millisecond)))
		}
		return out
	}

	open("s1")
	open("s2")
	old := time.Now().Add(-time.Hour)
	ingest("s1", batch("s1-old", 10, old)...)
	ingest("s2", batch("s2-old", 10, old.Add(time.Second))...)
	proxy := newCutProxy(t)
	run("s1", "")
	s2 := run("s2", proxy.addr())
	proxy.mu.Lock()
	proxy.target = s2.Addr()
	proxy.mu.Unlock()
	testkit.WaitFor(t, "both members listed", func() bool {
		ms, err := servers["s1"].Members(ctx)
		return err == nil && len(ms) == 2 && ms[0].Alive && ms[1].Alive
	})

	cert, _, err := api.LoadCredentials(adminDir)
	if err != nil {
		t.Fatal(err)
	}
	admin := api.NewClient(servers["s1"].Addr(), api.ClientTLS(func() (*tls.Certificate, error) { return cert, nil }, servers["s1"].trust))
	defer admin.Close()
	const limit = 5
	log := &followLog{count: map[string]int{}, backlog: -1}
	go admin.FollowFlows(ctx, api.FlowValues(flow.Filter{Limit: limit}, 0), log.frame)
	testkit.WaitFor(t, "the backlog and a heartbeat naming both servers", func() bool {
		hb := log.heartbeat()
		return slices.Equal(hb.Servers, []string{"s1", "s2"})
	})
	began := time.Now() // the follow began before
	log.mu.Lock()
	backlog := slices.Clone(log.uids[:log.backlog])
	log.mu.Unlock()
	if want := []string{"s2-old-005", "s2-old-006", "s2-old-007", "s2-old-008", "s2-old-009"}; !slices.Equal(backlog, want) {
		t.Fatalf("backlog %v, want the cluster's newest %d: %v", backlog, limit, want)
	}

	t.Log("records stored by s2 come through s1 as they are stored")
	at := time.Now().Truncate(time.Millisecond)
	before := ingest("s2", batch("s2-live", 3, at)...)
	testkit.WaitForDetail(t, "s2's live records followed", func() (bool, string) {
		m := log.missing(before)
		return len(m) == 0, fmt.Sprintf("missing %v", m)
	})

	t.Log("cut the stream to s2, and store more than the Limit there meanwhile")
	proxy.setCut(true)
	testkit.WaitForDetail(t, "s2 named missing", func() (bool, string) {
		hb := log.heartbeat()
		return len(hb.Missing) == 1 && strings.HasPrefix(hb.Missing[0], "s2 "), fmt.Sprintf("missing %v", hb.Missing)
	})
	// The first of them in the millisecond of the last record delivered;
	// then some an agent kept minutes while it was cut off from the
	// servers, older than any delivered.
	during := ingest("s2", batch("s2-cut", 4*limit, at.Add(2*time.Millisecond))...)
	during = append(during, ingest("s2", batch("s2-late", limit, at.Add(-5*time.Minute))...)...)
	proxy.setCut(false)
	testkit.WaitForDetail(t, "every record s2 stored during the cut followed", func() (bool, string) {
		m := log.missing(during)
		return len(m) == 0, fmt.Sprintf("%d of %d missing: %v; heartbeat %+v", len(m), len(during), m, log.heartbeat())
	})

	t.Log("s3 joins with records stored since the follow began, and older ones")
	open("s3")
	ingest("s3", batch("s3-old", 10, old.Add(2*time.Second))...)
	joined := ingest("s3", batch("s3-new", 4*limit, began.Add(time.Millisecond))...)
	run("s3", "")
	testkit.WaitForDetail(t, "every record s3 stored since the follow began followed", func() (bool, string) {
		m := log.missing(joined)
		return len(m) == 0, fmt.Sprintf("%d of %d missing: %v; heartbeat %+v", len(m), len(joined), m, log.heartbeat())
	})

	t.Log("a replay larger than a member sends: its newest are delivered, the rest counted in Dropped")
	followReplay := 2 * limit
	s2.followReplayTest.Store(int64(followReplay))
	proxy.setCut(true)
	testkit.WaitForDetail(t, "s2 named missing", func() (bool, string) {
		hb := log.heartbeat()
		return len(hb.Missing) == 1 && strings.HasPrefix(hb.Missing[0], "s2 "), fmt.Sprintf("missing %v", hb.Missing)
	})
	dropped := log.heartbeat().Dropped
	over := ingest("s2", batch("s2-over", 3*followReplay, time.Now().Add(time.Minute))...)
	proxy.setCut(false)
	testkit.WaitForDetail(t, "the newest records s2 stored during the second cut followed", func() (bool, string) {
		m := log.missing(over[len(over)-followReplay:])
		return len(m) == 0, fmt.Sprintf("%d of %d missing: %v; heartbeat %+v", len(m), followReplay, m, log.heartbeat())
	})
	testkit.WaitForDetail(t, "the records left out counted in Dropped", func() (bool, string) {
		hb := log.heartbeat()
		return hb.Dropped >= dropped+uint64(len(over)-followReplay), fmt.Sprintf("dropped %d, was %d", hb.Dropped, dropped)
	})
	if m := log.missing(over[:len(over)-followReplay]); len(m) != len(over)-followReplay {
		t.Errorf("%d of the oldest records past the replay's bound delivered, want none", len(over)-followReplay-len(m))
	}

	t.Log("a position that is not one is refused, naming the parameter")
	peer := servers["s1"].peerClient(s2.Addr())
	defer peer.Close()
	long := strings.Repeat("e30", api.MaxPeerResume/3+1)
	for _, bad := range []url.Values{
		{api.PeerAfter: {"!!"}},
		{api.PeerAfter: {""}},
		{api.PeerAfter: {long}},
		{api.PeerAfter: {base64.RawURLEncoding.EncodeToString([]byte("null"))}},
		{api.PeerAfter: {base64.RawURLEncoding.EncodeToString([]byte(`{"20261205": -1}`))}},
		{api.PeerAfter: {base64.RawURLEncoding.EncodeToString([]byte(`{"x": 1}`))}},
		{api.PeerAfter: {"e30", "e30"}},
		{api.PeerAfter: {"e30"}, api.PeerReplay: {time.Now().Format(time.RFC3339)}},
	} {
		err := peer.FollowPeer(ctx, bad, time.Minute, func(api.FlowFrame) error { return errors.New("a frame") })
		var se *api.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusBadRequest || !strings.Contains(se.Msg, `"after"`) {
			t.Errorf("peer follow %.80s: %v, want a 400 naming %q", bad.Encode(), err, api.PeerAfter)
		}
	}

	t.Log("a member of the version before positions is asked again by time")
	s2.peerBeforeAfter.Store(true)
	proxy.setCut(true)
	testkit.WaitForDetail(t, "s2 named missing", func() (bool, string) {
		hb := log.heartbeat()
		return len(hb.Missing) == 1 && strings.HasPrefix(hb.Missing[0], "s2 "), fmt.Sprintf("missing %v", hb.Missing)
	})
	if hb := log.heartbeat(); len(hb.Missing) == 1 && strings.Contains(hb.Missing[0], "after=ey") {
		t.Errorf("missing %q: the reason shows the position", hb.Missing[0])
	}
	older := ingest("s2", batch("s2-older-version", limit, time.Now().Add(2*time.Minute))...)
	proxy.setCut(false)
	testkit.WaitForDetail(t, "the records s2 stored during the third cut followed", func() (bool, string) {
		m := log.missing(older)
		return len(m) == 0, fmt.Sprintf("%d of %d missing: %v; heartbeat %+v", len(m), len(older), m, log.heartbeat())
	})

	log.mu.Lock()
	defer log.mu.Unlock()
	for uid, n := range log.count {
		if n != 1 {
			t.Errorf("record %s delivered %d times", uid, n)
		}
		if strings.HasPrefix(uid, "s3-old") {
			t.Errorf("record %s, stored by s3 before the follow began, delivered after the backlog", uid)
		}
	}
}
