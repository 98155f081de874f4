package detect

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Bounds on what the engine remembers of the records its full queue
// dropped. Nodes come and go in a cluster, and a node's name would
// otherwise stay in the counts, and in the metric's series, for the
// server's life.
const (
	// MaxDropNodes is how many sources' drops are counted under their
	// own name (Stats.DroppedByNode, moat_detect_records_dropped_total's
	// node label): the first that lose records. Those of any other are
	// counted under OtherNodes.
	MaxDropNodes = 256
	// MaxDropAlerts is how many sources may have a records_dropped alert
	// firing at once; any other that loses records shares one, whose
	// subject is OtherNodes.
	MaxDropAlerts = 20
	// DropQuiet is how long a source must lose no record for its
	// records_dropped alert to resolve; it fires again, once, at its next
	// drop after that.
	DropQuiet = 10 * time.Minute
	// OtherNodes stands for the sources past MaxDropNodes in the drop
	// counts and past MaxDropAlerts in the alerts. No node is named so:
	// node names are DNS labels.
	OtherNodes = "_other"
	// serverSource is the subject of the alert for what no node wrote
	// (audit entries, the control plane's own records).
	serverSource = "_server"
)

// drops counts what the full queue dropped, by source, and keeps the
// records_dropped alert of each source that lost some.
type drops struct {
	pending atomic.Bool // an alert in alerts is yet to fire

	mu     sync.Mutex // guards everything below
	byNode map[string]uint64
	alerts map[string]*dropAlert // by subject
}

// dropAlert is one source's records_dropped alert.
type dropAlert struct {
	dropped uint64    // since the first drop it counts
	last    time.Time // the last drop
	firedAt time.Time // zero until it fires
}

// add counts one record of src dropped at now, and returns the label it
// is counted under.
func (d *drops) add(src string, now time.Time) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	label := src
	if _, ok := d.byNode[label]; !ok && len(d.byNode) >= MaxDropNodes {
		label = OtherNodes
	}
	d.byNode[label]++
	subj := src
	if subj == "" {
		subj = serverSource
	}
	a := d.alerts[subj]
	if a == nil && len(d.alerts) >= MaxDropAlerts {
		subj = OtherNodes
		a = d.alerts[subj]
	}
	if a == nil {
		a = &dropAlert{}
		d.alerts[subj] = a
		d.pending.Store(true)
	}
	a.dropped++
	a.last = now
	return label
}

func (d *drops) counts() map[string]uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]uint64, len(d.byNode))
	for k, v := range d.byNode {
		out[k] = v
	}
	return out
}

// fire returns the alerts of the sources that lost records since the last
// call and have none firing.
func (d *drops) fire(now time.Time, queue int) []Alert {
	if !d.pending.Swap(false) {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Alert
	for subj, a := range d.alerts {
		if a.firedAt.IsZero() {
			a.firedAt = now
			out = append(out, a.alert(subj, StatusFiring, queue, now))
		}
	}
	return out
}

// resolve returns the alerts of the sources that lost no record for
// DropQuiet, and forgets them.
func (d *drops) resolve(now time.Time, queue int) []Alert {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Alert
	for subj, a := range d.alerts {
		if a.firedAt.IsZero() || now.Sub(a.last) < DropQuiet {
			continue
		}
		out = append(out, a.alert(subj, StatusResolved, queue, now))
		delete(d.alerts, subj)
	}
	return out
}

// alert is the records_dropped alert of subj.
func (a *dropAlert) alert(subj string, st Status, queue int, now time.Time) Alert {
	whose := "node " + subj + "'s records"
	switch subj {
	case serverSource:
		whose = "audit entries and the control plane's records"
	case OtherNodes:
		whose = "records of nodes past the first " + strconv.Itoa(MaxDropAlerts) + " losing some"
	}
	al := Alert{
		Key:      DedupKey(RuleRecordsDropped, subj),
		Rule:     RuleRecordsDropped,
		Severity: SeverityHigh,
		Status:   st,
		Subject:  subj,
		Summary:  "detection dropped " + strconv.FormatUint(a.dropped, 10) + " of " + whose + " unevaluated: its queue was full",
		StartsAt: a.firedAt,
		Details: map[string]string{
			"dropped": strconv.FormatUint(a.dropped, 10),
			"queue":   strconv.Itoa(queue),
		},
	}
	if st == StatusResolved {
		al.EndsAt = now
	}
	return al
}
