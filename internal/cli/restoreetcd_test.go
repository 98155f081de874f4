package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"moat/internal/server"
	"moat/internal/store"
	"moat/internal/store/storetest"
)

// failingTxns is a store whose transactions from the nth to the last
// (counted from 1) fail, as an etcd that stops answering part way through
// a load does, for a while or for good.
type failingTxns struct {
	store.Store
	n, last, calls atomic.Int64
}

func (f *failingTxns) Txn(ctx context.Context, conds []store.Cond, ops []store.Op) (int64, error) {
	if c := f.calls.Add(1); c >= f.n.Load() && c <= f.last.Load() {
		return 0, errors.New("etcdserver: request timed out")
	}
	return f.Store.Txn(ctx, conds, ops)
}

// TestLoadEtcdTakesOutWhatItLoaded: a load of a restored store into etcd
// that is cut short (a transaction failing part way through, the keyring
// not published) leaves nothing of the restore in the prefix, and says
// so; when taking it out fails too, the error says that part is left.
func TestLoadEtcdTakesOutWhatItLoaded(t *testing.T) {
	url := storetest.StartEtcd(t)
	ctx := context.Background()
	src, err := store.OpenBolt(store.BoltConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// More keys than one transaction holds, and the meta record.
	for i := range 3*store.MaxTxnOps + 5 {
		if _, err := src.Put(ctx, fmt.Sprintf("svc/app%03d", i), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := src.Put(ctx, server.MetaKey, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	published := func() error { return nil }
	for i, c := range []struct {
		name     string
		failFrom int64 // the first Txn that fails; 0: none
		failTo   int64 // the last
		publish  func() error
		want     string
		left     bool
	}{
		{name: "a transaction fails part way", failFrom: 3, failTo: 3, publish: published, want: "request timed out; what was loaded into etcd was taken out again"},
		{name: "the keyring is not published", publish: func() error { return errors.New("publishing the keyring: refused") }, want: "refused; what was loaded into etcd was taken out again"},
		{name: "taking out fails too", failFrom: 2, failTo: 1 << 20, publish: published, want: "taking out what was loaded failed too", left: true},
		{name: "whole", publish: published},
	} {
		t.Run(c.name, func(t *testing.T) {
			dst, err := store.OpenEtcd(ctx, store.EtcdConfig{Endpoints: []string{url}, Prefix: fmt.Sprintf("/load%d/", i)})
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Close()
			var into store.Store = dst
			if c.failFrom > 0 {
				f := &failingTxns{Store: dst}
				f.n.Store(c.failFrom)
				f.last.Store(c.failTo)
				into = f
			}
			err = loadEtcd(ctx, into, src, c.publish)
			kvs, _, lerr := dst.List(ctx, "")
			if lerr != nil {
				t.Fatal(lerr)
			}
			switch {
			case c.want == "" && (err != nil || len(kvs) != 3*store.MaxTxnOps+6):
				t.Fatalf("load: %v, %d keys in etcd", err, len(kvs))
			case c.want == "":
			case err == nil || !strings.Contains(err.Error(), c.want) || errors.Is(err, errLeftInEtcd) != c.left:
				t.Fatalf("load: %v, want %q (left in etcd: %v)", err, c.want, c.left)
			case !c.left && len(kvs) != 0:
				t.Fatalf("%d keys left in etcd after %v", len(kvs), err)
			case c.left && len(kvs) == 0:
				t.Fatalf("nothing in etcd, yet the load says part is left: %v", err)
			}
		})
	}
}
