package detect

import "time"

// roomSample is how many of the fullest node's keys room looks at to
// choose the one it forgets: the least recently seen of them.
const roomSample = 16

// holders is who made each key of a bounded table (a rule's subjects,
// the edges seen): the node whose record first named it, "" for audit
// entries and records no node wrote. A node sends records about its own
// services within its flow rates, truthfully or not, and a compromised
// one can name a new source in every record: in a table that refused
// what came once it was full, its names would take every place, and a
// source another node then saw (a real attacker's address, a revoked
// identity used against its service) would not be tracked at all. So a
// full table makes room as the engine's queue does: it forgets a key of
// the node holding the most, never one of a node that holds fewer than
// the newcomer's. Not safe for concurrent use; the Engine's mutex
// guards it.
type holders struct {
	by map[string]map[string]time.Time // node → its keys → when each was last seen
	of map[string]string               // key → node
}

func newHolders() holders {
	return holders{by: map[string]map[string]time.Time{}, of: map[string]string{}}
}

func (h *holders) len() int { return len(h.of) }

func (h *holders) has(key string) bool {
	_, ok := h.of[key]
	return ok
}

// add records key as node's, seen at now; seen updates an existing one.
func (h *holders) add(node, key string, now time.Time) {
	m := h.by[node]
	if m == nil {
		m = map[string]time.Time{}
		h.by[node] = m
	}
	m[key] = now
	h.of[key] = node
}

func (h *holders) seen(key string, now time.Time) {
	if node, ok := h.of[key]; ok {
		h.by[node][key] = now
	}
}

func (h *holders) remove(key string) {
	node, ok := h.of[key]
	if !ok {
		return
	}
	delete(h.of, key)
	delete(h.by[node], key)
	if len(h.by[node]) == 0 {
		delete(h.by, node)
	}
}

// room returns the key to forget so that node may add one to a full
// table: the least recently seen of a sample of the keys of the node
// holding the most. It is false when node holds as many as any: its new
// key is then refused, and it loses its own excess.
func (h *holders) room(node string) (string, bool) {
	top, n := "", 0
	for k, m := range h.by {
		if len(m) > n || len(m) == n && k < top {
			top, n = k, len(m)
		}
	}
	if n <= len(h.by[node]) {
		return "", false
	}
	victim, at, looked := "", time.Time{}, 0
	for k, t := range h.by[top] {
		if victim == "" || t.Before(at) {
			victim, at = k, t
		}
		if looked++; looked == roomSample {
			break
		}
	}
	return victim, true
}
