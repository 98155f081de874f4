package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"moat/internal/store"
)

// The control plane's two patterns: redeem a single-use token with a
// conditional Txn, and follow a prefix by listing it and then watching from
// the list's revision, so no change is missed or seen twice.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := os.MkdirTemp("", "moat-store-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	s, err := store.OpenBolt(store.BoltConfig{Dir: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	tok, _ := s.Put(ctx, "token/abc", []byte("node/n1"))
	redeem := func() error {
		_, err := s.Txn(ctx,
			[]store.Cond{{Key: "token/abc", ModRevision: tok}},
			[]store.Op{store.Delete("token/abc"), store.Put("node/n1", []byte("joined"))})
		return err
	}
	fmt.Println("first redeem:", redeem())
	fmt.Println("second redeem is a conflict:", errors.Is(redeem(), store.ErrConflict))

	kvs, rev, _ := s.List(ctx, "node/")
	for _, kv := range kvs {
		fmt.Printf("listed %s=%s\n", kv.Key, kv.Value)
	}
	events, _ := s.Watch(ctx, "node/", rev)
	s.Put(ctx, "node/n2", []byte("joined"))
	ev := <-events
	fmt.Printf("watched %s %s=%s\n", ev.Type, ev.KV.Key, ev.KV.Value)
	// Output:
	// first redeem: <nil>
	// second redeem is a conflict: true
	// listed node/n1=joined
	// watched put node/n2=joined
}
