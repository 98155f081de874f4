package store

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Writes go through one committer goroutine that does group commit: while
// one bbolt transaction is being fsynced, the writes that arrive queue up,
// and the next transaction applies them all, each at its own revision and
// each checked against its own conditions. A lone writer waits for nothing
// but its own commit; concurrent writers share fsyncs.

// maxGroup bounds how many writes share one transaction.
const maxGroup = 128

// writeReq is one Put, Delete or Txn waiting for the committer.
type writeReq struct {
	ctx    context.Context
	conds  []Cond
	ops    []Op
	values [][]byte // ops[i]'s stored (sealed) value, for puts
	done   chan writeRes
}

type writeRes struct {
	rev int64
	err error
}

// apply is every write: validate, seal, hand to the committer, and wait for
// the result. Once handed over, the write's fate is decided by the
// committer, which drops it only if its context has ended before its turn;
// so an error always means it was not applied.
func (s *Bolt) apply(ctx context.Context, conds []Cond, ops []Op) (int64, error) {
	if err := checkTxn(conds, ops); err != nil {
		return 0, err
	}
	// Seal before queueing: it is the slow part that needs no lock.
	values := make([][]byte, len(ops))
	for i, op := range ops {
		if op.Kind != OpPut {
			continue
		}
		v, err := s.seal(op.Key, op.Value)
		if err != nil {
			return 0, err
		}
		values[i] = v
	}
	req := &writeReq{ctx: ctx, conds: conds, ops: ops, values: values, done: make(chan writeRes, 1)}
	if err := s.submit(ctx, req); err != nil {
		return 0, err
	}
	res := <-req.done
	return res.rev, res.err
}

// submit hands req to the committer. It holds s.mu for reading, so Close
// (which takes it for writing before stopping the committer) never leaves a
// handed-over write unanswered.
func (s *Bolt) submit(ctx context.Context, req *writeReq) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	select {
	case s.writes <- req:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// commitLoop runs until Close.
func (s *Bolt) commitLoop() {
	defer close(s.committed)
	for {
		var group []*writeReq
		select {
		case r := <-s.writes:
			group = append(group, r)
		case <-s.done:
			return
		}
	fill:
		for len(group) < maxGroup {
			select {
			case r := <-s.writes:
				group = append(group, r)
			default:
				break fill
			}
		}
		s.commit(group)
	}
}

// commit applies group in one transaction, then wakes the watchers and
// answers every request.
func (s *Bolt) commit(group []*writeReq) {
	res := make([]writeRes, len(group))
	var changed bool
	err := s.db.Update(func(tx *bolt.Tx) error {
		changed = false
		for i, r := range group {
			if err := r.ctx.Err(); err != nil {
				res[i] = writeRes{err: err}
				continue
			}
			rev, ch, reqErr, txErr := s.applyOne(tx, r)
			if txErr != nil {
				return txErr
			}
			res[i] = writeRes{rev: rev, err: reqErr}
			changed = changed || ch
		}
		return nil
	})
	if err != nil {
		for i := range res {
			res[i] = writeRes{err: err}
		}
	} else if changed {
		s.wake()
	}
	for i, r := range group {
		r.done <- res[i]
	}
}

// applyOne checks r's conditions and applies its ops at the next revision,
// recording them in the change log and trimming the log to the history
// bound. Everything that can refuse the request is read before anything is
// written, so a refused request (reqErr) leaves tx as it found it; txErr is
// a failure of the transaction itself.
func (s *Bolt) applyOne(tx *bolt.Tx, r *writeReq) (rev int64, changed bool, reqErr, txErr error) {
	meta, kv := tx.Bucket(bktMeta), tx.Bucket(bktKV)
	cur, err := readMeta(meta, metaRev)
	if err != nil {
		return 0, false, err, nil
	}
	for _, c := range r.conds {
		var mod int64
		if v := kv.Get([]byte(c.Key)); v != nil {
			rec, err := decodeRecord(v)
			if err != nil {
				return 0, false, fmt.Errorf("key %q: %w", c.Key, err), nil
			}
			mod = rec.mod
		}
		if mod != c.ModRevision {
			return 0, false, fmt.Errorf("key %q is at revision %d, not %d: %w", c.Key, mod, c.ModRevision, ErrConflict), nil
		}
	}
	next := cur + 1
	// Plan: which ops change something, and the create revision of each put.
	var cs []change
	for i, op := range r.ops {
		old := kv.Get([]byte(op.Key))
		if op.Kind == OpDelete {
			if old != nil {
				cs = append(cs, change{kind: EventDelete, key: op.Key})
			}
			continue
		}
		create := next
		if old != nil {
			rec, err := decodeRecord(old)
			if err != nil {
				return 0, false, fmt.Errorf("key %q: %w", op.Key, err), nil
			}
			create = rec.create
		}
		cs = append(cs, change{kind: EventPut, key: op.Key, create: create, value: r.values[i]})
	}
	if len(cs) == 0 {
		return cur, false, nil, nil
	}
	tallied := make([]tallyChange, 0, len(cs))
	for _, c := range cs {
		tc := tallyChange{key: c.key}
		if old := kv.Get([]byte(c.key)); old != nil {
			rec, err := decodeRecord(old)
			if err != nil {
				return 0, false, fmt.Errorf("key %q: %w", c.key, err), nil
			}
			tc.old = &rec
		}
		var err error
		if c.kind == EventDelete {
			err = kv.Delete([]byte(c.key))
		} else {
			tc.next = &record{create: c.create, mod: next}
			err = kv.Put([]byte(c.key), encodeRecord(record{create: c.create, mod: next, value: c.value}))
		}
		if err != nil {
			return 0, false, nil, err
		}
		tallied = append(tallied, tc)
	}
	if err := updateTally(meta, tallied); err != nil {
		return 0, false, nil, err
	}
	if err := tx.Bucket(bktLog).Put(revKey(next), encodeLogEntry(cs)); err != nil {
		return 0, false, nil, err
	}
	if err := meta.Put(metaRev, revKey(next)); err != nil {
		return 0, false, nil, err
	}
	if next > s.history {
		if err := compactLog(tx, next-s.history); err != nil {
			return 0, false, nil, err
		}
	}
	return next, true, nil, nil
}
