package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Watch implements Store with an etcd watch from revision fromRev+1. Whether
// fromRev is still kept is checked first with a read at fromRev, so a
// compacted start is an error from Watch itself; a compaction that overtakes
// the watch later ends it with an ErrCompacted event.
func (s *Etcd) Watch(ctx context.Context, prefix string, fromRev int64) (<-chan Event, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, fmt.Errorf("store: watch: %w", err)
	}
	if fromRev < 0 {
		return nil, fmt.Errorf("store: watch %q: negative revision %d: %w", prefix, fromRev, ErrInvalid)
	}
	if err := s.begin(ctx); err != nil {
		return nil, fmt.Errorf("store: watch %q: %w", prefix, err)
	}
	if fromRev == 0 {
		// "From now" is pinned to a revision here, so a change made after
		// Watch returns is seen even if the server registers the watch later.
		rev, err := s.Rev(ctx)
		if err != nil {
			return nil, err
		}
		fromRev = rev
	} else {
		var answer error
		_, err := s.run(ctx, nil, func(cctx context.Context) error {
			_, answer = s.cli.Get(cctx, s.prefix, clientv3.WithRev(fromRev), clientv3.WithCountOnly())
			if errors.Is(answer, rpctypes.ErrCompacted) || errors.Is(answer, rpctypes.ErrFutureRev) {
				return nil
			}
			return answer
		})
		switch {
		case err != nil:
			return nil, fmt.Errorf("store: watch %q: %w", prefix, err)
		case errors.Is(answer, rpctypes.ErrCompacted):
			return nil, fmt.Errorf("store: watch %q: changes after revision %d: %w", prefix, fromRev, ErrCompacted)
		}
	}
	// Requiring a leader makes a member cut off from its cluster end the
	// watch with an error instead of leaving it silently stalled.
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	wch := s.cli.Watch(wctx, s.prefix+prefix, clientv3.WithPrefix(), clientv3.WithRev(fromRev+1))
	out := make(chan Event)
	go func() {
		defer close(out)
		defer cancel()
		s.pump(wctx, prefix, wch, out)
	}()
	return out, nil
}

// pump translates etcd watch responses into Events until the watch ends.
func (s *Etcd) pump(ctx context.Context, prefix string, wch clientv3.WatchChan, out chan<- Event) {
	send := func(ev Event) bool {
		select {
		case out <- ev:
			return true
		case <-ctx.Done():
			return false
		case <-s.done:
			return false
		}
	}
	fail := func(err error) {
		s.log.Warn("store: watch ended", logKeyPrefix, prefix, logKeyErr, err)
		send(Event{Err: fmt.Errorf("store: watch %q: %w", prefix, err)})
	}
	for resp := range wch {
		if resp.CompactRevision != 0 {
			fail(fmt.Errorf("history compacted up to revision %d: %w", resp.CompactRevision, ErrCompacted))
			return
		}
		if err := resp.Err(); err != nil {
			if ctx.Err() == nil && !s.closed.Load() {
				fail(err)
			}
			return
		}
		for _, e := range resp.Events {
			var ev Event
			if e.Type == mvccpb.DELETE {
				key := strings.TrimPrefix(string(e.Kv.Key), s.prefix)
				ev = Event{Type: EventDelete, KV: KV{Key: key, ModRevision: e.Kv.ModRevision}}
			} else {
				kv, err := s.kv(e.Kv)
				if err != nil {
					fail(err)
					return
				}
				ev = Event{Type: EventPut, KV: kv}
			}
			if !send(ev) {
				return
			}
		}
	}
	if ctx.Err() == nil && !s.closed.Load() {
		fail(errors.New("etcd watch stream ended"))
	}
}
