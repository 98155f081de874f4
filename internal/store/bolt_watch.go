package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Watch implements Store. Each watch reads the change log on its own, in
// batches, at its consumer's pace: a slow consumer never holds up a commit,
// and one that falls so far behind that its history is compacted away gets
// a final Event with ErrCompacted.
func (s *Bolt) Watch(ctx context.Context, prefix string, fromRev int64) (<-chan Event, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, fmt.Errorf("store: watch: %w", err)
	}
	if fromRev < 0 {
		return nil, fmt.Errorf("store: watch %q: negative revision %d: %w", prefix, fromRev, ErrInvalid)
	}
	ch := make(chan Event)
	err := s.view(ctx, func(tx *bolt.Tx) error {
		meta := tx.Bucket(bktMeta)
		cur, err := readMeta(meta, metaRev)
		if err != nil {
			return err
		}
		first, err := readMeta(meta, metaFirst)
		if err != nil {
			return err
		}
		next := fromRev + 1
		switch {
		case fromRev == 0:
			next = cur + 1
		case next < first:
			return fmt.Errorf("changes after revision %d: the oldest kept is %d: %w", fromRev, first, ErrCompacted)
		}
		// Registered under s.mu, so Close (which sets closed under the
		// write lock before waiting) never races this Add.
		s.watchers.Add(1)
		go s.watch(ctx, prefix, next, ch)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: watch %q: %w", prefix, err)
	}
	return ch, nil
}

// watch feeds ch with the changes under prefix from revision next on.
func (s *Bolt) watch(ctx context.Context, prefix string, next int64, ch chan<- Event) {
	defer s.watchers.Done()
	defer close(ch)
	for {
		// Take the wake-up channel before reading, so a commit landing
		// between the read and the wait is not missed.
		wake := s.wakeChan()
		evs, last, err := s.readLog(ctx, prefix, next)
		switch {
		case errors.Is(err, ErrClosed), ctx.Err() != nil:
			return
		case err != nil:
			s.log.Warn("store: watch ended", logKeyPrefix, prefix, logKeyFrom, next, logKeyErr, err)
			s.send(ctx, ch, Event{Err: fmt.Errorf("store: watch %q: %w", prefix, err)})
			return
		}
		for _, ev := range evs {
			if !s.send(ctx, ch, ev) {
				return
			}
		}
		if last >= next {
			next = last + 1
			continue
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return
		case <-s.done:
			return
		}
	}
}

// readLog returns the events under prefix in at most s.batch revisions
// from next on, and the last revision it read (next-1 if none).
func (s *Bolt) readLog(ctx context.Context, prefix string, next int64) ([]Event, int64, error) {
	var evs []Event
	last := next - 1
	err := s.view(ctx, func(tx *bolt.Tx) error {
		first, err := readMeta(tx.Bucket(bktMeta), metaFirst)
		if err != nil {
			return err
		}
		if next < first {
			return fmt.Errorf("changes from revision %d: the oldest kept is %d: %w", next, first, ErrCompacted)
		}
		c := tx.Bucket(bktLog).Cursor()
		n := 0
		for k, v := c.Seek(revKey(next)); k != nil && n < s.batch; k, v = c.Next() {
			rev, err := decodeRevKey(k)
			if err != nil {
				return err
			}
			if rev != last+1 {
				return fmt.Errorf("log revision %d follows %d: %w", rev, last, ErrCorrupt)
			}
			cs, err := decodeLogEntry(v)
			if err != nil {
				return fmt.Errorf("revision %d: %w", rev, err)
			}
			for _, ch := range cs {
				if !underPrefix(ch.key, prefix) {
					continue
				}
				ev := Event{Type: ch.kind, KV: KV{Key: ch.key, ModRevision: rev}}
				if ch.kind == EventPut {
					if ev.KV.Value, err = s.open(ch.key, ch.value); err != nil {
						return fmt.Errorf("revision %d: %w", rev, err)
					}
					ev.KV.CreateRevision = ch.create
				}
				evs = append(evs, ev)
			}
			last = rev
			n++
		}
		return nil
	})
	return evs, last, err
}

func (s *Bolt) send(ctx context.Context, ch chan<- Event, ev Event) bool {
	select {
	case ch <- ev:
		return true
	case <-ctx.Done():
		return false
	case <-s.done:
		return false
	}
}

func (s *Bolt) wakeChan() <-chan struct{} {
	s.nmu.Lock()
	defer s.nmu.Unlock()
	return s.notify
}

func (s *Bolt) wake() {
	s.nmu.Lock()
	defer s.nmu.Unlock()
	close(s.notify)
	s.notify = make(chan struct{})
}

func decodeRevKey(k []byte) (int64, error) {
	if len(k) != 8 {
		return 0, fmt.Errorf("log key of %d bytes, want 8: %w", len(k), ErrCorrupt)
	}
	v := binary.BigEndian.Uint64(k)
	if v > 1<<62 {
		return 0, fmt.Errorf("log key %d out of range: %w", v, ErrCorrupt)
	}
	return int64(v), nil
}
