package detect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// Route sends alerts of at least MinSeverity to Sink.
type Route struct {
	Sink        Sink
	MinSeverity Severity // "" means every alert
}

// DispatcherConfig builds a Dispatcher.
type DispatcherConfig struct {
	Routes   []Route
	Delivery Delivery // zero fields take DefaultDelivery's values
	// Now stamps delivery metrics; nil means time.Now.
	Now func() time.Time
	// Sleep waits between attempts and returns early with ctx's error; nil
	// waits on a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter returns a duration in [0, d); nil draws uniformly (full jitter).
	Jitter  func(d time.Duration) time.Duration
	Logger  *slog.Logger
	Metrics *Metrics
}

// StandingSink is a Sink that wants every firing alert again while it
// holds (an Alertmanager, which ends an alert it has not heard of by the
// endsAt of the last post): the Dispatcher hands it what Resend gets.
type StandingSink interface {
	Sink
	Standing() bool
	// SendAll posts the firing alerts as once, without retries: the next
	// re-send is the retry.
	SendAll(ctx context.Context, as []Alert) error
}

// Dispatcher delivers alerts to sinks. Notify never blocks: each sink has
// its own bounded queue and worker, so a slow or dead receiver delays only
// itself, and a full queue drops (and counts) rather than waits.
type Dispatcher struct {
	cfg    DispatcherConfig
	queues []chan job
	// outages is each route's run of failed re-sends, for the log.
	outages []outage

	mu      sync.Mutex // guards running
	running bool
}

// NewDispatcher returns a Dispatcher over cfg.Routes.
func NewDispatcher(cfg DispatcherConfig) (*Dispatcher, error) {
	def := DefaultDelivery()
	if cfg.Delivery.Queue <= 0 {
		cfg.Delivery.Queue = def.Queue
	}
	if cfg.Delivery.Attempts <= 0 {
		cfg.Delivery.Attempts = def.Attempts
	}
	if cfg.Delivery.Backoff <= 0 {
		cfg.Delivery.Backoff = def.Backoff
	}
	if cfg.Delivery.MaxBackoff <= 0 {
		cfg.Delivery.MaxBackoff = max(def.MaxBackoff, cfg.Delivery.Backoff)
	}
	if cfg.Delivery.Timeout <= 0 {
		cfg.Delivery.Timeout = def.Timeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	if cfg.Jitter == nil {
		cfg.Jitter = func(d time.Duration) time.Duration {
			if d <= 0 {
				return 0
			}
			return rand.N(d)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	seen := map[string]bool{}
	d := &Dispatcher{cfg: cfg}
	for i, r := range cfg.Routes {
		if r.Sink == nil {
			return nil, fmt.Errorf("detect: route %d has no sink", i)
		}
		if seen[r.Sink.Name()] {
			return nil, fmt.Errorf("detect: sink %q routed twice", r.Sink.Name())
		}
		seen[r.Sink.Name()] = true
		d.queues = append(d.queues, make(chan job, cfg.Delivery.Queue))
	}
	d.outages = make([]outage, len(d.queues))
	return d, nil
}

// NewDispatcherFromSettings builds the sinks an alerts file names and a
// Dispatcher over them.
func NewDispatcherFromSettings(s *Settings, client *http.Client, cfg DispatcherConfig) (*Dispatcher, error) {
	cfg.Routes = nil
	for _, sc := range s.Sinks {
		sk, err := NewSink(sc, client)
		if err != nil {
			return nil, err
		}
		cfg.Routes = append(cfg.Routes, Route{Sink: sk, MinSeverity: sc.MinSeverity})
	}
	cfg.Delivery = s.Delivery
	return NewDispatcher(cfg)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

var severityRank = map[Severity]int{SeverityInfo: 0, SeverityLow: 1, SeverityMedium: 2, SeverityHigh: 3, SeverityCritical: 4}

// job is what a sink's queue holds: one alert to deliver, or the firing
// alerts to post again to a standing sink (all).
type job struct {
	alert Alert
	all   []Alert
}

// Notify queues a for every sink whose MinSeverity it meets. It never waits.
func (d *Dispatcher) Notify(a Alert) {
	for i, r := range d.cfg.Routes {
		if severityRank[a.Severity] < severityRank[r.MinSeverity] {
			continue
		}
		d.queue(i, job{alert: a}, a.Key)
	}
}

// Resend queues the firing alerts as, again, for every standing sink
// (StandingSink), those of them whose MinSeverity they meet, in one place
// of its queue: they are posted in the order of the sink's other alerts,
// so a resolve queued before is not overtaken by its firing alert. Other
// sinks get nothing: Slack would repeat itself, and PagerDuty and webhooks
// had the alert once. It never waits.
func (d *Dispatcher) Resend(as []Alert) {
	for i, r := range d.cfg.Routes {
		if ss, ok := r.Sink.(StandingSink); !ok || !ss.Standing() {
			continue
		}
		var mine []Alert
		for _, a := range as {
			if a.Status == StatusFiring && severityRank[a.Severity] >= severityRank[r.MinSeverity] {
				mine = append(mine, a)
			}
		}
		if len(mine) > 0 {
			d.queue(i, job{all: mine}, "")
		}
	}
}

// queue puts j in route i's queue, or drops and counts it when full.
func (d *Dispatcher) queue(i int, j job, key string) {
	name := d.cfg.Routes[i].Sink.Name()
	select {
	case d.queues[i] <- j:
		d.cfg.Metrics.depth(name, len(d.queues[i]))
	default:
		d.cfg.Metrics.delivery(name, ResultDropped)
		if j.all != nil {
			d.cfg.Logger.Warn("detect: alert queue full, re-send of the firing alerts dropped", logSink, name, logCount, len(j.all))
			return
		}
		d.cfg.Logger.Warn("detect: alert queue full, alert dropped", logSink, name, logKey, key)
	}
}

// resendAll posts the firing alerts as again to s, route i's sink, once,
// each post within Delivery.Timeout. A failure is counted; a run of them
// is logged at its first, then once per outageLog, and at its end.
func (d *Dispatcher) resendAll(ctx context.Context, i int, s StandingSink, as []Alert) {
	posts := (len(as) + amBatch - 1) / amBatch
	actx, cancel := context.WithTimeout(ctx, time.Duration(posts)*d.cfg.Delivery.Timeout)
	defer cancel()
	if err := s.SendAll(actx, as); err != nil {
		if ctx.Err() != nil {
			return // stopping, not failing
		}
		d.cfg.Metrics.failed(sinkKind(s))
		log, n, since := d.outages[i].fail(d.cfg.Now())
		if log {
			d.cfg.Logger.Warn("detect: re-send of the firing alerts failed; the next one tries again", logSink, s.Name(), logCount, len(as),
				logFailed, n, logSince, since.UTC().Format(time.RFC3339), logErr, err)
		}
		return
	}
	if n, since := d.outages[i].ok(); n > 0 {
		d.cfg.Logger.Info("detect: re-sends of the firing alerts go through again", logSink, s.Name(), logFailed, n, logSince, since.UTC().Format(time.RFC3339))
	}
	d.cfg.Metrics.success(s.Name(), float64(d.cfg.Now().UnixNano())/1e9)
}

// sinkKind is s's type (HTTPSink.Kind), kindOther for a sink of no type.
func sinkKind(s Sink) string {
	if k, ok := s.(interface{ Kind() string }); ok {
		return k.Kind()
	}
	return kindOther
}

// Run delivers queued alerts until ctx ends, then returns nil. Alerts still
// queued then are not sent. Run may be called once.
func (d *Dispatcher) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.running {
		d.mu.Unlock()
		return fmt.Errorf("detect: dispatcher already running")
	}
	d.running = true
	d.mu.Unlock()
	var wg sync.WaitGroup
	for i, r := range d.cfg.Routes {
		wg.Go(func() {
			q := d.queues[i]
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-q:
					d.cfg.Metrics.depth(r.Sink.Name(), len(q))
					if j.all != nil {
						d.resendAll(ctx, i, r.Sink.(StandingSink), j.all)
						continue
					}
					_ = d.Deliver(ctx, r.Sink, j.alert)
				}
			}
		})
	}
	wg.Wait()
	return nil
}

// Deliver sends a to s now, retrying retryable failures with exponential
// backoff and full jitter (or the receiver's Retry-After, when longer, up to
// MaxBackoff) up to Delivery.Attempts tries, and returns the
// last error. It counts the outcome in the metrics.
func (d *Dispatcher) Deliver(ctx context.Context, s Sink, a Alert) error {
	dl := d.cfg.Delivery
	var err error
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, dl.Timeout)
		err = s.Send(actx, a)
		cancel()
		if err == nil {
			d.cfg.Metrics.delivery(s.Name(), ResultDelivered)
			d.cfg.Metrics.success(s.Name(), float64(d.cfg.Now().UnixNano())/1e9)
			return nil
		}
		if !Retryable(err) || attempt >= dl.Attempts || ctx.Err() != nil {
			break
		}
		d.cfg.Metrics.retry(s.Name())
		d.cfg.Logger.Warn("detect: delivery failed, will retry", logSink, s.Name(), logKey, a.Key, logAttempt, attempt, logErr, err)
		wait := d.cfg.Jitter(d.backoff(attempt))
		var de *DeliveryError
		if errors.As(err, &de) && de.RetryAfter > wait {
			wait = min(de.RetryAfter, d.cfg.Delivery.MaxBackoff) // the receiver asked; MaxBackoff still bounds it
		}
		if serr := d.cfg.Sleep(ctx, wait); serr != nil {
			break
		}
	}
	d.cfg.Metrics.delivery(s.Name(), ResultFailed)
	d.cfg.Metrics.failed(sinkKind(s))
	d.cfg.Logger.Error("detect: delivery gave up", logSink, s.Name(), logKey, a.Key, logErr, err)
	return err
}

// backoff is the ceiling of the wait after the given failed attempt.
func (d *Dispatcher) backoff(attempt int) time.Duration {
	b := d.cfg.Delivery.Backoff
	for i := 1; i < attempt && b < d.cfg.Delivery.MaxBackoff; i++ {
		b *= 2
	}
	return min(b, d.cfg.Delivery.MaxBackoff)
}

// SinkResult is the outcome of one test delivery.
type SinkResult struct {
	Sink string
	Step Status
	Err  error
}

// Test sends a test alert, firing and then (when resolve is set) resolved,
// to every sink, with the usual retries, and reports each delivery.
func (d *Dispatcher) Test(ctx context.Context, resolve bool) []SinkResult {
	now := d.cfg.Now()
	var out []SinkResult
	for _, r := range d.cfg.Routes {
		a := Alert{
			Key:      DedupKey(RuleTest, r.Sink.Name()),
			Rule:     RuleTest,
			Severity: SeverityInfo,
			Status:   StatusFiring,
			Subject:  r.Sink.Name(),
			Summary:  "moat test alert: delivery to sink " + r.Sink.Name() + " works",
			Details:  map[string]string{"note": "sent by moat alerts test; no action needed"},
			StartsAt: now,
		}
		err := d.Deliver(ctx, r.Sink, a)
		out = append(out, SinkResult{Sink: r.Sink.Name(), Step: StatusFiring, Err: err})
		if resolve && err == nil {
			a.Status, a.EndsAt = StatusResolved, d.cfg.Now()
			out = append(out, SinkResult{Sink: r.Sink.Name(), Step: StatusResolved, Err: d.Deliver(ctx, r.Sink, a)})
		}
	}
	return out
}
