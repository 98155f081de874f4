package server

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/flow/flowstore"
	"moat/internal/seal"
	"moat/internal/store"
	"moat/internal/store/storetest"
	"moat/internal/testkit"
)

// TestServerWaitsOutStoreOutage: a server whose store stops answering
// just as it starts (an etcd member frozen, as in a rolling restart) does
// not exit: its health endpoint says it is not serving, it tries the store
// again with a growing wait and logs the outage once, and once the store
// answers it serves, its health endpoint says so, and the log says the
// outage ended. A store that stops (the member killed) while the server
// serves is noticed and waited out the same way.
func TestServerWaitsOutStoreOutage(t *testing.T) {
	m := storetest.StartEtcdCluster(t, 1)[0]
	f := newAuthFixtureWith(t, authOptions{etcd: []string{m.URL}})

	st, err := store.OpenEtcd(f.ctx, store.EtcdConfig{Endpoints: []string{m.URL}, Prefix: "/moat/",
		Sealer: NewStoreSealer(f.kr.AEAD()), RequestTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fs, err := flowstore.OpenStore(flowstore.StoreConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	logs := &testkit.Buffer{}
	ctx, cancel := context.WithCancel(f.ctx)
	srv, err := New(ctx, Config{Listen: "127.0.0.1:0", Name: "b", Store: st, Sealer: f.kr.AEAD(), Audit: f.log, AuditLog: f.log, Flows: fs,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		cancel()
		t.Fatal(err)
	}

	t.Log("the store stops answering as the server starts")
	m.Pause(t)
	paused := true
	t.Cleanup(func() {
		if paused {
			m.Continue(t)
		}
	})
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	running := func() {
		t.Helper()
		select {
		case err := <-done:
			done <- err
			t.Fatalf("the server exited while its store did not answer: %v\nlog:\n%s", err, logs)
		default:
		}
	}
	testkit.WaitFor(t, "the server trying its store a third time", func() bool {
		running()
		srv.store.mu.Lock()
		defer srv.store.mu.Unlock()
		return srv.store.tries >= 3
	})
	running()
	g := *f
	g.srv = srv
	if code, e := g.call(t, nil, "GET", api.PathHealth, nil, nil); code != http.StatusServiceUnavailable || !strings.Contains(e.Error, "has not answered yet") {
		t.Errorf("health while the store has never answered: %d %q, want 503 saying so", code, e.Error)
	}

	t.Log("the store answers again")
	m.Continue(t)
	paused = false
	testkit.WaitForDetail(t, "the server serving", func() (bool, string) {
		running()
		var h api.Health
		code, e := g.call(t, nil, "GET", api.PathHealth, nil, &h)
		return code == http.StatusOK && h.Status == "serving", e.Error
	})
	// It serves what needs the store: a node joins through it.
	g.joinNode(t, "web-9")

	t.Log("the store stops again while the server serves")
	m.Stop()
	testkit.WaitForDetail(t, "the server saying it cannot read its store", func() (bool, string) {
		running()
		code, e := g.call(t, nil, "GET", api.PathHealth, nil, nil)
		return code == http.StatusServiceUnavailable && e.Error == store.ErrUnavailable.Error(), e.Error
	})
	m.Restart(t)
	testkit.WaitFor(t, "the server serving again", func() bool {
		running()
		code, _ := g.call(t, nil, "GET", api.PathHealth, nil, nil)
		return code == http.StatusOK
	})

	out := logs.String()
	if n := strings.Count(out, `msg="control-plane store unavailable;`); n != 2 {
		t.Errorf("the two outages were logged as %d, want once each:\n%s", n, out)
	}
	if n := strings.Count(out, `msg="control-plane store answers again;`); n != 2 {
		t.Errorf("the ends of the two outages were logged as %d, want once each:\n%s", n, out)
	}
}

// TestNewRefusesWrongStore: what a store that answers says wrong is not
// waited out: New fails at once, naming it, for a store that holds no
// control plane.
func TestNewRefusesWrongStore(t *testing.T) {
	dir := t.TempDir()
	kek, err := seal.GenerateKeyFile(filepath.Join(dir, "kek"), nil)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := seal.Open(seal.Config{Dir: dir, KEK: kek})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenBolt(store.BoltConfig{Dir: dir, Sealer: NewStoreSealer(kr.AEAD())})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec := audit.RecorderFunc(func(context.Context, audit.Entry) error { return nil })
	_, err = New(context.Background(), Config{Store: st, Sealer: kr.AEAD(), Audit: rec, Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "holds no control plane") {
		t.Errorf("New on an empty store: %v, want an error saying it holds no control plane", err)
	}
}
