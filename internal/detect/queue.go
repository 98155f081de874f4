package detect

import "sync"

// fairQueue holds the records and audit entries waiting for evaluation:
// one FIFO for each source (the node that wrote a record, "" for audit
// entries and records no node wrote), served round-robin, within one bound
// over all of them.
//
// A node sends records about its own services within its flow rates, and
// a compromised one may send as many as those rates allow: one shared FIFO
// would then hold its records alone, and other nodes' records, their real
// alerts with them, would be dropped before they were evaluated. Here,
// when the bound is reached, what is dropped is always the newest record
// of the source with the most waiting: an arrival from that source itself
// (or from one with as many), else the tail of that source's FIFO, to make
// room. So a flooding node loses its own excess, and a source with fewer
// waiting than the fullest is never refused; round-robin service evaluates
// its records without waiting behind the flood.
type fairQueue struct {
	bound int
	ready chan struct{} // holds a token while something may be waiting

	mu      sync.Mutex // guards everything below
	n       int        // items waiting, over all sources
	srcs    map[string]*srcQueue
	turn    []*srcQueue // sources with something waiting, in serving order, from turnAt
	turnAt  int
	dropped map[string]uint64 // by source
}

// srcQueue is one source's FIFO: items from head on.
type srcQueue struct {
	name  string
	items []item
	head  int
}

func (s *srcQueue) len() int { return len(s.items) - s.head }

func newFairQueue(bound int) *fairQueue {
	return &fairQueue{bound: bound, ready: make(chan struct{}, 1), srcs: map[string]*srcQueue{}, dropped: map[string]uint64{}}
}

// push queues it from src without waiting. It reports whether it was
// queued, and the source of the item dropped to keep the bound, if any
// (src itself when it is false).
func (q *fairQueue) push(src string, it item) (ok bool, droppedFrom string, dropped bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.srcs[src]
	if q.n >= q.bound {
		// Full: the newest of the fullest source goes. Finding it looks
		// at every source with something waiting: the nodes of the
		// cluster at most, and only while the queue is full.
		var fullest *srcQueue
		for _, o := range q.srcs {
			if fullest == nil || o.len() > fullest.len() {
				fullest = o
			}
		}
		if fullest == nil || s != nil && s.len() >= fullest.len() {
			q.dropped[src]++
			return false, src, true
		}
		last := len(fullest.items) - 1
		fullest.items[last] = item{}
		fullest.items = fullest.items[:last]
		q.n--
		q.dropped[fullest.name]++
		droppedFrom, dropped = fullest.name, true
		if fullest.len() == 0 {
			q.forget(fullest)
		}
	}
	if s == nil {
		s = &srcQueue{name: src}
		q.srcs[src] = s
		q.turn = append(q.turn, s)
	}
	s.items = append(s.items, it)
	q.n++
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true, droppedFrom, dropped
}

// pop takes the next item, in turn over the sources; ok is false when
// nothing waits.
func (q *fairQueue) pop() (it item, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return item{}, false
	}
	s := q.turn[q.turnAt]
	q.turn[q.turnAt] = nil
	q.turnAt++
	it = s.items[s.head]
	s.items[s.head] = item{}
	s.head++
	q.n--
	if s.len() == 0 {
		delete(q.srcs, s.name)
	} else {
		if s.head > len(s.items)/2 {
			s.items = append(s.items[:0], s.items[s.head:]...)
			s.head = 0
		}
		q.turn = append(q.turn, s)
	}
	if q.turnAt > len(q.turn)/2 {
		q.turn = append(q.turn[:0], q.turn[q.turnAt:]...)
		q.turnAt = 0
	}
	if q.n > 0 {
		select {
		case q.ready <- struct{}{}:
		default:
		}
	}
	return it, true
}

// forget removes s, now empty, from the sources and their turns. Callers
// hold q.mu.
func (q *fairQueue) forget(s *srcQueue) {
	delete(q.srcs, s.name)
	for i := q.turnAt; i < len(q.turn); i++ {
		if q.turn[i] == s {
			q.turn = append(q.turn[:i], q.turn[i+1:]...)
			return
		}
	}
}

// droppedBy returns how many items each source had dropped.
func (q *fairQueue) droppedBy() map[string]uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make(map[string]uint64, len(q.dropped))
	for k, v := range q.dropped {
		out[k] = v
	}
	return out
}
