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
// its records without waiting behind the flood. However many nodes flood
// together, a quiet node's record is dropped only when every source holds
// one at most: when there are as many sources as the bound.
type fairQueue struct {
	ready chan struct{} // holds a token while something may be waiting

	mu sync.Mutex // guards everything below
	// slots hold the items; next and prev link each source's FIFO
	// through them (-1: none), free lists the empty ones. All are
	// allocated once, at the bound, as a channel's buffer would be.
	slots      []item
	next, prev []int32
	free       []int32
	// srcs is every source with something waiting, turn the same in
	// serving order, from turnAt.
	srcs   map[string]*srcQueue
	turn   []*srcQueue
	turnAt int
}

// srcQueue is one source's FIFO through fairQueue's slots.
type srcQueue struct {
	name       string
	head, tail int32 // -1 when empty
	n          int
}

func newFairQueue(bound int) *fairQueue {
	q := &fairQueue{
		ready: make(chan struct{}, 1),
		slots: make([]item, bound), next: make([]int32, bound), prev: make([]int32, bound), free: make([]int32, bound),
		srcs: map[string]*srcQueue{},
	}
	for i := range q.free {
		q.free[i] = int32(bound - 1 - i)
	}
	return q
}

// push queues it from src without waiting. It reports whether it was
// queued, and the source of the item dropped to keep the bound, if any
// (src itself when it is false).
func (q *fairQueue) push(src string, it item) (ok bool, droppedFrom string, dropped bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.srcs[src]
	if len(q.free) == 0 {
		// Full: the newest of the fullest source goes. Finding it looks
		// at every source with something waiting: the nodes of the
		// cluster at most, and only while the queue is full.
		var fullest *srcQueue
		for _, o := range q.turn[q.turnAt:] {
			if fullest == nil || o.n > fullest.n {
				fullest = o
			}
		}
		if fullest == nil || s != nil && s.n >= fullest.n {
			return false, src, true
		}
		q.dropTail(fullest)
		droppedFrom, dropped = fullest.name, true
	}
	if s == nil {
		s = &srcQueue{name: src, head: -1, tail: -1}
		q.srcs[src] = s
		q.turn = append(q.turn, s)
	}
	i := q.free[len(q.free)-1]
	q.free = q.free[:len(q.free)-1]
	q.slots[i] = it
	q.next[i], q.prev[i] = -1, s.tail
	if s.tail >= 0 {
		q.next[s.tail] = i
	} else {
		s.head = i
	}
	s.tail = i
	s.n++
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true, droppedFrom, dropped
}

// dropTail drops the newest item of s. Callers hold q.mu.
func (q *fairQueue) dropTail(s *srcQueue) {
	i := s.tail
	s.tail = q.prev[i]
	if s.tail >= 0 {
		q.next[s.tail] = -1
	} else {
		s.head = -1
	}
	q.slots[i] = item{}
	q.free = append(q.free, i)
	s.n--
	if s.n == 0 {
		delete(q.srcs, s.name)
		for j := q.turnAt; j < len(q.turn); j++ {
			if q.turn[j] == s {
				q.turn = append(q.turn[:j], q.turn[j+1:]...)
				break
			}
		}
	}
}

// pop takes the next item, in turn over the sources; ok is false when
// nothing waits.
func (q *fairQueue) pop() (it item, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.turnAt == len(q.turn) {
		return item{}, false
	}
	s := q.turn[q.turnAt]
	q.turn[q.turnAt] = nil
	q.turnAt++
	i := s.head
	it, q.slots[i] = q.slots[i], item{}
	s.head = q.next[i]
	if s.head >= 0 {
		q.prev[s.head] = -1
	} else {
		s.tail = -1
	}
	q.free = append(q.free, i)
	s.n--
	if s.n > 0 {
		q.turn = append(q.turn, s)
	} else {
		delete(q.srcs, s.name)
	}
	if q.turnAt > len(q.turn)/2 {
		q.turn = append(q.turn[:0], q.turn[q.turnAt:]...)
		q.turnAt = 0
	}
	if q.turnAt < len(q.turn) {
		select {
		case q.ready <- struct{}{}:
		default:
		}
	}
	return it, true
}
