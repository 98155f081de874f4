package store

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"moat/internal/store/storetest"
	"moat/internal/testkit"
)

// TestEtcdQuorumLost takes two members of a three-member etcd cluster
// away, under a store that knows all three: with two members down a
// read allowed to be stale answers from the survivor's copy and says so,
// while a quorum read and a write fail naming the members that are down;
// a member that takes connections and never answers does not stop the
// survivor's copy from answering, and a failed call names it, having asked
// it within the call's own deadline; later reads under a context whose
// first read was answered from a copy ask that member straight away.
// With every member down, see
// TestEtcdAllMembersDown.
func TestEtcdQuorumLost(t *testing.T) {
	ms := storetest.StartEtcdCluster(t, 3)
	m1, m2, m3 := ms[0], ms[1], ms[2]
	urls := []string{m1.URL, m2.URL, m3.URL}
	s, err := OpenEtcd(context.Background(), EtcdConfig{Endpoints: urls, Prefix: "/moat/quorum/", RequestTimeout: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A store that knows only m1: while the silent member listens, it is
	// reached only by this store's survey of the members (which m1's
	// member list leads to), so every connection it takes is one the
	// survey made.
	only, err := OpenEtcd(context.Background(), EtcdConfig{Endpoints: []string{m1.URL}, Prefix: "/moat/quorum/", RequestTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer only.Close()
	rev := mustPut(t, s, "svc/api", "before")
	// The write is committed once two members hold it; m1 may not have
	// applied it yet, and its copy is what the stale reads below answer
	// from. A quorum read served by m1 returns only once m1 has applied
	// everything committed before it.
	if kv, err := only.Get(context.Background(), "svc/api"); err != nil || kv.ModRevision != rev {
		t.Fatalf("quorum Get from m1 = @%d, %v; want @%d", kv.ModRevision, err, rev)
	}

	m2.Stop()
	m3.Stop()
	t.Run("SurvivorCopy", func(t *testing.T) {
		ctx, stale := AllowStale(context.Background())
		kv, err := s.Get(ctx, "svc/api")
		if err != nil || string(kv.Value) != "before" || kv.ModRevision != rev {
			t.Fatalf("stale Get = %q @%d, %v; want %q @%d from the survivor", kv.Value, kv.ModRevision, err, "before", rev)
		}
		why := stale.Reason()
		for _, want := range []string{"no etcd quorum (1 of 3 members reachable; ",
			m2.URL + " (connection refused)", m3.URL + " (connection refused)",
			"answered from the copy of member " + m1.URL + " at revision ", "which may be stale"} {
			if !strings.Contains(why, want) {
				t.Fatalf("stale reason %q does not say %q", why, want)
			}
		}
		if r, err := s.Rev(ctx); err != nil || r < rev {
			t.Fatalf("stale Rev = %d, %v; want at least %d from the survivor", r, err, rev)
		}
		ctx, stale = AllowStale(context.Background())
		kvs, _, err := s.List(ctx, "svc/")
		if err != nil || len(kvs) != 1 || string(kvs[0].Value) != "before" || stale.Reason() == "" {
			t.Fatalf("stale List = %s, %v (reason %q); want svc/api from the survivor, marked stale", dump(kvs), err, stale.Reason())
		}
	})
	t.Run("QuorumReadAndWriteFail", func(t *testing.T) {
		_, err := s.Get(context.Background(), "svc/api")
		wantCause(t, "quorum Get", err, "no etcd quorum (1 of 3 members reachable; ", m2.URL+" (connection refused)", m3.URL+" (connection refused)")
		_, err = s.Put(context.Background(), "svc/api", []byte("after"))
		wantCause(t, "Put", err, "no etcd quorum (1 of 3 members reachable; ", m2.URL+" (connection refused)", m3.URL+" (connection refused)")
	})

	t.Run("NoStaleReadsWithQuorum", func(t *testing.T) {
		ctx, stale := AllowStale(context.Background())
		_, err := s.Get(NoStale(ctx), "svc/api")
		wantCause(t, "Get under NoStale", err, "no etcd quorum (1 of 3 members reachable; ")
		if why := stale.Reason(); why != "" {
			t.Fatalf("a read under NoStale was answered from a copy: %q", why)
		}
	})

	// m2's client port now takes connections and never answers.
	silent := listenSilent(t, strings.TrimPrefix(m2.URL, "http://"))
	t.Run("SilentMember", func(t *testing.T) {
		ctx, stale := AllowStale(context.Background())
		kv, err := s.Get(ctx, "svc/api")
		if err != nil || string(kv.Value) != "before" {
			t.Fatalf("stale Get beside a silent member = %q, %v; want %q from the survivor", kv.Value, err, "before")
		}
		if why := stale.Reason(); !strings.Contains(why, "answered from the copy of member "+m1.URL+" ") {
			t.Fatalf("stale reason %q does not name the survivor %s", why, m1.URL)
		}
	})
	// s would reconnect to the silent member on its own.
	s.Close()
	t.Run("CauseWithinDeadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		silent.watch(ctx)
		done := make(chan error, 1)
		go func() {
			_, err := only.Put(ctx, "svc/api", []byte("after"))
			done <- err
		}()
		select {
		case err := <-done:
			wantCause(t, "Put under a deadline", err, "etcd did not answer in time (2 of 3 members reachable, 1 of them answer within ",
				m2.URL+" (took the connection, no answer in time)", m3.URL+" (connection refused)")
		case <-time.After(testkit.WaitLimit):
			t.Fatalf("Put under a 3s deadline had not returned after %v", testkit.WaitLimit)
		}
		// A survey begun only once the call had failed would dial the
		// silent member after the deadline. (A connection counted
		// after it is not an error: the accepting goroutine may run
		// late on a loaded machine.)
		if before, after := silent.counts(); before == 0 {
			t.Fatalf("the silent member took no connection within the call's deadline (%d after it); want the survey to run within", after)
		}
	})
	t.Run("LaterReadsAskTheSameMember", func(t *testing.T) {
		base, stale := AllowStale(context.Background())
		within := func(f func(context.Context) error) error {
			ctx, cancel := context.WithTimeout(base, 3*time.Second)
			defer cancel()
			return f(ctx)
		}
		silent.watch(base)
		err := within(func(ctx context.Context) error {
			_, err := only.Get(ctx, "svc/api")
			return err
		})
		if err != nil || !strings.Contains(stale.Reason(), "answered from the copy of member "+m1.URL+" ") {
			t.Fatalf("first stale Get = %v (reason %q); want an answer from %s", err, stale.Reason(), m1.URL)
		}
		// The survey dialled the silent member and opened a client
		// connection to it: both are taken once they are counted.
		testkit.WaitFor(t, "the survey's two connections to the silent member", func() bool {
			before, _ := silent.counts()
			return before >= 2
		})
		silent.watch(base)
		err = within(func(ctx context.Context) error {
			if _, _, err := only.List(ctx, "svc/"); err != nil {
				return err
			}
			_, err := only.Rev(ctx)
			return err
		})
		if err != nil {
			t.Fatalf("later stale reads: %v", err)
		}
		if before, after := silent.counts(); before+after != 0 {
			t.Fatalf("later reads under the same context surveyed the members again (%d connections to the silent one)", before+after)
		}
	})
}

// TestEtcdAllMembersDown: with every member of the cluster down, a read
// allowed to be stale fails naming each member and why it gave nothing,
// and so does a quorum read.
func TestEtcdAllMembersDown(t *testing.T) {
	ms := storetest.StartEtcdCluster(t, 3)
	var urls, each []string
	for _, m := range ms {
		urls = append(urls, m.URL)
		each = append(each, m.URL+" (connection refused)")
	}
	s, err := OpenEtcd(context.Background(), EtcdConfig{Endpoints: urls, Prefix: "/moat/down/", RequestTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustPut(t, s, "svc/api", "before")
	for _, m := range ms {
		m.Stop()
	}
	ctx, stale := AllowStale(context.Background())
	_, err = s.Get(ctx, "svc/api")
	wantCause(t, "stale Get", err, append([]string{"etcd out of reach (no member of ", "no member's own copy came either: "}, each...)...)
	if stale.Reason() != "" {
		t.Fatalf("a failed read is marked stale: %q", stale.Reason())
	}
	_, err = s.Get(context.Background(), "svc/api")
	wantCause(t, "quorum Get", err, append([]string{"etcd out of reach (no member of "}, each...)...)
}

// wantCause fails t unless err is ErrUnavailable and says every one of want.
func wantCause(t *testing.T, what string, err error, want ...string) {
	t.Helper()
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("%s = %v, want ErrUnavailable", what, err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("%s: %q does not say %q", what, err, w)
		}
	}
	t.Logf("%s: %v", what, err)
}

// silentListener takes connections and never answers on them, like a
// member too stalled to speak. It counts the connections it took while
// a watched context was live and after it ended.
type silentListener struct {
	l             net.Listener
	mu            sync.Mutex // guards what follows
	ctx           context.Context
	before, after int
	conns         []net.Conn
}

// listenSilent listens on addr (a stopped member's client address)
// until the test ends.
func listenSilent(t *testing.T, addr string) *silentListener {
	t.Helper()
	var l net.Listener
	testkit.WaitFor(t, "the stopped member's port to be free", func() bool {
		var err error
		l, err = net.Listen("tcp", addr)
		return err == nil
	})
	s := &silentListener{l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			if s.ctx != nil {
				if s.ctx.Err() == nil {
					s.before++
				} else {
					s.after++
				}
			}
			s.mu.Unlock()
		}
	}()
	t.Cleanup(s.Close)
	return s
}

// watch starts counting connections against ctx.
func (s *silentListener) watch(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctx, s.before, s.after = ctx, 0, 0
}

func (s *silentListener) counts() (before, after int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.before, s.after
}

// Close stops listening and drops every connection taken.
func (s *silentListener) Close() {
	s.l.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}
