package detect

import (
	"sync"
	"time"
)

// outageLog is how often, at most, the failed re-sends to one sink are
// logged while they go on: an Alertmanager that is down fails a re-send
// every resend interval, each counted (moat_alert_delivery_failures_total),
// and its log says so at the first, then once per outageLog with how many
// failed since, and once when a re-send goes through again.
const outageLog = 10 * time.Minute

// outage is one sink's run of failed re-sends.
type outage struct {
	mu     sync.Mutex // guards all below
	since  time.Time  // the first failure of the run; zero when there is none
	logged time.Time  // the last line logged of it
	failed int        // failures since that line
	total  int        // failures of the run
}

// fail notes a failure at now, and reports whether to log it, with the
// failures since the last line (this one included) and the run's start.
func (o *outage) fail(now time.Time) (log bool, n int, since time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.since.IsZero() {
		o.since = now
	}
	o.failed++
	o.total++
	if !o.logged.IsZero() && now.Sub(o.logged) < outageLog {
		return false, 0, o.since
	}
	n = o.failed
	o.logged, o.failed = now, 0
	return true, n, o.since
}

// ok ends a run of failures; it returns how many there were (0 for none)
// and when it began.
func (o *outage) ok() (n int, since time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n, since = o.total, o.since
	o.since, o.logged, o.failed, o.total = time.Time{}, time.Time{}, 0, 0
	return n, since
}
