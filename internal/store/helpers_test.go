package store

import (
	"context"
	"testing"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"

	"moat/internal/store/storetest"
)

// waitLimit bounds every wait in these tests so a broken store fails the
// test instead of hanging it. It is a guard, not a speed requirement.
const waitLimit = storetest.WaitLimit

// newSealer returns a real tink AES-256-GCM AEAD with a fresh key.
func newSealer(tb testing.TB) Sealer {
	tb.Helper()
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		tb.Fatalf("tink keyset: %v", err)
	}
	a, err := aead.New(h)
	if err != nil {
		tb.Fatalf("tink aead: %v", err)
	}
	return a
}

// startEtcd and freePort are storetest's, under the names these tests use.
var (
	startEtcd = storetest.StartEtcd
	freePort  = storetest.FreePort
)

// openEtcdPrefix opens an Etcd store on url under prefix, closed with the test.
func openEtcdPrefix(tb testing.TB, url, prefix string, sealer Sealer) *Etcd {
	tb.Helper()
	s, err := OpenEtcd(context.Background(), EtcdConfig{Endpoints: []string{url}, Prefix: prefix, Sealer: sealer})
	if err != nil {
		tb.Fatalf("OpenEtcd: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// openBolt opens a Bolt store in dir, closed with the test.
func openBolt(tb testing.TB, cfg BoltConfig) *Bolt {
	tb.Helper()
	s, err := OpenBolt(cfg)
	if err != nil {
		tb.Fatalf("OpenBolt: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// next receives one event or fails the test.
func next(t *testing.T, ch <-chan Event) Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatalf("watch channel closed, want an event")
		}
		return ev
	case <-time.After(waitLimit):
		t.Fatalf("no watch event within %v", waitLimit)
	}
	return Event{}
}

// closed waits for ch to close, discarding what comes before, or fails.
func waitClosed(t *testing.T, ch <-chan Event) []Event {
	t.Helper()
	var got []Event
	timeout := time.After(waitLimit)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return got
			}
			got = append(got, ev)
		case <-timeout:
			t.Fatalf("watch channel still open after %v", waitLimit)
		}
	}
}
