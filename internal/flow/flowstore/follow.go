package flowstore

import (
	"errors"
	"sync"
	"sync/atomic"

	"moat/internal/flow"
)

// Subscription receives the records Ingest stores that match its filter,
// in storage order, each with its position. A subscriber that falls behind
// loses records rather than slowing ingestion; the loss is counted in
// Dropped and in the store's stats.
type Subscription struct {
	// C carries the records; it is closed when the subscription ends.
	C <-chan Stored

	c       chan Stored
	s       *Store
	f       flow.Filter
	dropped atomic.Uint64
	once    sync.Once
}

// Follow subscribes to newly stored records matching f (Limit ignored),
// buffering up to buffer of them (at least 1).
func (s *Store) Follow(f flow.Filter, buffer int) (*Subscription, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if buffer < 1 {
		buffer = 1
	}
	c := make(chan Stored, buffer)
	sub := &Subscription{C: c, c: c, s: s, f: f}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("flow: store closed")
	}
	s.subs[sub] = struct{}{}
	return sub, nil
}

// Dropped counts the records this subscription missed by falling behind.
func (sub *Subscription) Dropped() uint64 { return sub.dropped.Load() }

// Close ends the subscription. It is idempotent.
func (sub *Subscription) Close() {
	sub.s.mu.Lock()
	delete(sub.s.subs, sub)
	sub.s.mu.Unlock()
	sub.end()
}

func (sub *Subscription) end() { sub.once.Do(func() { close(sub.c) }) }

// A Stored is a record Ingest stored, and where.
type Stored struct {
	flow.Record
	Pos Position
}

// fresh is a record of an Ingest batch that was stored: recs[i], at pos.
type fresh struct {
	i   int
	pos Position
}

// notify hands the stored records to the subscribers, in the order they
// were committed (Ingest calls it under s.wmu). Sending happens under s.mu
// so that Close cannot close a channel that is being sent on; sends never
// block.
func (s *Store) notify(recs []flow.Record, idx []fresh) {
	if len(idx) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	for sub := range s.subs {
		for _, fr := range idx {
			if !sub.f.Match(&recs[fr.i]) {
				continue
			}
			select {
			case sub.c <- Stored{recs[fr.i], fr.pos}:
			default:
				sub.dropped.Add(1)
				s.dropped.Add(1)
			}
		}
	}
}
