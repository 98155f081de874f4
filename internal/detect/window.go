package detect

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"moat/internal/flow"
)

// window tracks one rule's subjects. Its memory is bounded: a subject keeps
// at most Threshold event times (or max(Threshold, 100) distinct items), and at most
// MaxSubjects subjects are tracked; when they are, a new subject takes the
// place of one made by the node holding the most (holders). It is not
// safe for concurrent use; the Engine's mutex guards it.
type window struct {
	rule     string
	cfg      RuleConfig
	distinct bool
	subjects map[string]*subject
	held     holders
	// dropped counts events for new subjects refused at MaxSubjects,
	// forgotten the subjects forgotten to make room for another node's.
	dropped, forgotten uint64
	// forgot, if set, is told the dedup key of a forgotten subject that
	// had fired, whose resolve will not come.
	forgot func(key string)
}

// maxDistinct is how many distinct items a subject keeps at least, so an
// alert can report how wide a scan was beyond its threshold.
const maxDistinct = 100

type subject struct {
	name string
	// times is a ring of the most recent event times (count rules).
	times []time.Time
	next  int
	// items maps a distinct item to when it was last seen (distinct rules).
	items map[string]time.Time
	last  time.Time
	facts map[string]string

	active    bool // the condition holds
	notified  bool // a firing alert was sent for the current activation
	firedAt   time.Time
	lastFired time.Time
	summary   string
	// heldBy is the node whose budget held back the firing alert of the
	// current activation, "" if none did; prevFired is lastFired before
	// that firing, which a held back alert does not move.
	heldBy    string
	prevFired time.Time
}

func newWindow(rule string, cfg RuleConfig, distinct bool) *window {
	return &window{rule: rule, cfg: cfg, distinct: distinct, subjects: map[string]*subject{}, held: newHolders()}
}

// observe records n events for subject (one item, for distinct rules),
// from a record node wrote ("" for an audit entry or a record no node
// wrote), and returns the firing alert when the events make the condition
// hold.
func (w *window) observe(now time.Time, node, name, item, summary string, facts map[string]string, n int) (Alert, bool) {
	s := w.subjects[name]
	if s == nil {
		if len(w.subjects) >= w.cfg.MaxSubjects {
			victim, ok := w.held.room(node)
			if !ok {
				w.dropped++
				return Alert{}, false
			}
			w.forget(victim)
		}
		s = &subject{name: name}
		w.held.add(node, name, now)
		if w.distinct {
			s.items = map[string]time.Time{}
		} else {
			s.times = make([]time.Time, 0, min(w.cfg.Threshold, 64))
		}
		w.subjects[name] = s
	}
	s.last = now
	w.held.seen(name, now)
	for k, v := range facts {
		if s.facts == nil {
			s.facts = map[string]string{}
		}
		s.facts[k] = v
	}
	if w.distinct {
		s.items[item] = now
		if len(s.items) > max(w.cfg.Threshold, maxDistinct) {
			oldest, ot := "", now
			for k, t := range s.items {
				if t.Before(ot) || (t.Equal(ot) && (oldest == "" || k < oldest)) {
					oldest, ot = k, t
				}
			}
			delete(s.items, oldest)
		}
	} else {
		// Past Threshold the ring holds no more: a summary of thousands
		// costs no more than Threshold events.
		for range min(max(n, 1), w.cfg.Threshold) {
			if len(s.times) < w.cfg.Threshold {
				s.times = append(s.times, now)
				continue
			}
			s.times[s.next] = now
			s.next = (s.next + 1) % len(s.times)
		}
	}
	if s.active {
		if s.heldBy == "" || s.heldBy == node {
			return Alert{}, false
		}
		// Its alert was held back by another node's budget: this node's
		// record raises it again, under this node's.
		s.heldBy = ""
		s.prevFired, s.lastFired = s.lastFired, now
		return w.alert(s, StatusFiring, now), true
	}
	if !w.holds(s, now) {
		return Alert{}, false
	}
	s.active = true
	s.summary = strings.ReplaceAll(summary, "{subject}", name)
	if !s.lastFired.IsZero() && now.Sub(s.lastFired) < w.cfg.Dedup {
		return Alert{}, false // within the dedup window of the last firing: stay quiet
	}
	s.notified = true
	s.prevFired = s.lastFired
	s.firedAt, s.lastFired = now, now
	return w.alert(s, StatusFiring, now), true
}

// heldBack notes that node's budget held back the firing alert of the
// subject name, just raised: a record of another node about it raises
// it again, and it starts no dedup period. A node cannot so keep a
// source it names from being alerted on when others see it.
func (w *window) heldBack(name, node string) {
	if s := w.subjects[name]; s != nil && s.active {
		s.heldBy = node
		s.lastFired = s.prevFired
	}
}

// forget drops the subject name to make room for another. A firing alert
// of it is not resolved (its condition may hold still); should it hold
// again, it fires again under the same dedup key.
func (w *window) forget(name string) {
	if s := w.subjects[name]; s != nil && s.active && s.notified && w.forgot != nil {
		w.forgot(DedupKey(w.rule, flow.PrintableText(name)))
	}
	delete(w.subjects, name)
	w.held.remove(name)
	w.forgotten++
}

// count returns the events (or distinct items) of s inside the window at now.
func (w *window) count(s *subject, now time.Time) int {
	n := 0
	if w.distinct {
		for _, t := range s.items {
			if now.Sub(t) < w.cfg.Window {
				n++
			}
		}
		return n
	}
	for _, t := range s.times {
		if now.Sub(t) < w.cfg.Window {
			n++
		}
	}
	return n
}

func (w *window) holds(s *subject, now time.Time) bool {
	if w.distinct {
		return w.count(s, now) >= w.cfg.Threshold
	}
	// The ring holds the last Threshold events; once full, times[next] is
	// the oldest, and the condition holds when it is inside the window.
	return len(s.times) == w.cfg.Threshold && now.Sub(s.times[s.next]) < w.cfg.Window
}

// sweep resolves subjects whose condition no longer holds at now and forgets
// subjects with nothing left to remember.
func (w *window) sweep(now time.Time) []Alert {
	var out []Alert
	for name, s := range w.subjects {
		if s.active && !w.holds(s, now) {
			s.active = false
			s.heldBy = ""
			if s.notified {
				s.notified = false
				out = append(out, w.alert(s, StatusResolved, now))
			}
		}
		if !s.active && now.Sub(s.last) >= w.cfg.Window && (s.lastFired.IsZero() || now.Sub(s.lastFired) >= w.cfg.Dedup) {
			delete(w.subjects, name)
			w.held.remove(name)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// alert is the alert of s. Its subject, summary and details come from
// records and entries others wrote (a node's records, a client's path),
// so they are made printable (flow.PrintableText): no alert, in any sink,
// carries a line break, a control or a direction override of theirs. The
// dedup key is built from the printable subject, within its bound.
func (w *window) alert(s *subject, st Status, now time.Time) Alert {
	name := flow.PrintableText(s.name)
	a := Alert{
		Key:      DedupKey(w.rule, name),
		Rule:     w.rule,
		Severity: w.cfg.Severity,
		Status:   st,
		Subject:  name,
		Summary:  flow.PrintableText(s.summary),
		StartsAt: s.firedAt,
		Details:  map[string]string{},
	}
	for k, v := range s.facts {
		a.Details[k] = flow.PrintableText(v)
	}
	a.Details["window"] = w.cfg.Window.String()
	a.Details["threshold"] = strconv.Itoa(w.cfg.Threshold)
	a.Details["count"] = strconv.Itoa(w.count(s, now))
	if w.distinct {
		a.Details["targets"] = flow.PrintableText(sample(s.items, now, w.cfg.Window, 10))
	}
	if st == StatusResolved {
		a.EndsAt = now
	}
	return a
}

// sample lists up to n of the items seen within win, sorted, with "…" when
// there are more.
func sample(items map[string]time.Time, now time.Time, win time.Duration, n int) string {
	var ks []string
	for k, t := range items {
		if now.Sub(t) < win {
			ks = append(ks, k)
		}
	}
	sort.Slice(ks, func(i, j int) bool { return naturalLess(ks[i], ks[j]) })
	more := ""
	if len(ks) > n {
		ks, more = ks[:n], fmt.Sprintf(" … (%d more)", len(ks)-n)
	}
	return strings.Join(ks, ", ") + more
}

// naturalLess orders "h:9" before "h:10".
func naturalLess(a, b string) bool {
	ah, ap, aok := cutPort(a)
	bh, bp, bok := cutPort(b)
	if aok && bok && ah == bh {
		return ap < bp
	}
	return a < b
}

func cutPort(s string) (string, int, bool) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return s, 0, false
	}
	p, err := strconv.Atoi(s[i+1:])
	return s[:i], p, err == nil
}
