package flow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// ShipperConfig configures a Shipper.
type ShipperConfig struct {
	// Send delivers a batch to the server; nil error means the server stored
	// it. Required.
	Send func(ctx context.Context, recs []Record) error
	// Spool keeps what cannot be sent; the caller opens it and closes it
	// after Run returns. Nil means records that cannot be sent are dropped
	// and counted.
	Spool *Spool
	// BatchSize is the most records per Send; zero means 500.
	BatchSize int
	// FlushEvery sends a partial batch after this long; zero means 200ms,
	// so a connection's open record reaches the server (and `moat flows
	// --follow`) well within a second of its start.
	FlushEvery time.Duration
	// QueueSize bounds the in-memory queue between Write and Run; zero means
	// 10000. Writes that find it full go to the spool.
	QueueSize int
	// SendTimeout bounds one Send; zero means 10s.
	SendTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between attempts while the
	// server is unreachable; zero means 200ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives delivery problems; nil discards them.
	Logger *slog.Logger
}

// ShipperStats counts what a Shipper did.
type ShipperStats struct {
	Sent       uint64 // records the server accepted
	Spooled    uint64 // records written to the spool
	Dropped    uint64 // records lost: no spool, or the spool refused them
	Rejected   uint64 // invalid records refused by Write
	SendErrors uint64 // failed Send calls
}

// Shipper is a Writer that batches records and sends them to the server,
// spooling to disk what it cannot send and sending it later. Write never
// waits for the network: it queues in memory, and when that queue is full
// it writes to the spool. Delivery is at least once and in no particular
// order; the server's Ingest makes it exactly once.
type Shipper struct {
	cfg ShipperConfig
	log *slog.Logger
	q   chan Record

	mu      sync.RWMutex // guards stopped against Write's send on q
	stopped bool

	sent, spooled, dropped, rejected, sendErrs atomic.Uint64
}

// NewShipper returns a Shipper; start it with Run.
func NewShipper(cfg ShipperConfig) (*Shipper, error) {
	if cfg.Send == nil {
		return nil, errors.New("flow: shipper: nil Send")
	}
	if cfg.BatchSize < 0 || cfg.QueueSize < 0 || cfg.FlushEvery < 0 || cfg.SendTimeout < 0 || cfg.MinBackoff < 0 || cfg.MaxBackoff < 0 {
		return nil, errors.New("flow: shipper: negative size or duration")
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 500
	}
	if cfg.FlushEvery == 0 {
		cfg.FlushEvery = 200 * time.Millisecond
	}
	if cfg.QueueSize == 0 {
		cfg.QueueSize = 10000
	}
	if cfg.SendTimeout == 0 {
		cfg.SendTimeout = 10 * time.Second
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = 200 * time.Millisecond
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		return nil, fmt.Errorf("flow: shipper: max backoff %v below min backoff %v", cfg.MaxBackoff, cfg.MinBackoff)
	}
	s := &Shipper{cfg: cfg, log: cfg.Logger, q: make(chan Record, cfg.QueueSize)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// Write queues r for sending. It refuses an invalid record (see Validate)
// so that one bad record can never block a batch at the server.
func (s *Shipper) Write(r Record) error {
	if err := Validate(&r); err != nil {
		s.rejected.Add(1)
		return fmt.Errorf("flow: shipper: record uid %q: %w", r.Metadata.UID, err)
	}
	s.mu.RLock()
	if !s.stopped {
		select {
		case s.q <- r:
			s.mu.RUnlock()
			return nil
		default:
		}
	}
	s.mu.RUnlock()
	return s.spool([]Record{r})
}

// spool keeps recs on disk, or counts them lost.
func (s *Shipper) spool(recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	if s.cfg.Spool == nil {
		s.dropped.Add(uint64(len(recs)))
		return nil
	}
	n, err := s.cfg.Spool.Append(recs)
	s.spooled.Add(uint64(n))
	s.dropped.Add(uint64(len(recs) - n))
	if err != nil {
		s.log.Error("flow spool write failed", "err", err)
		return err
	}
	return nil
}

// Stats returns the delivery counters.
func (s *Shipper) Stats() ShipperStats {
	return ShipperStats{
		Sent:       s.sent.Load(),
		Spooled:    s.spooled.Load(),
		Dropped:    s.dropped.Load(),
		Rejected:   s.rejected.Load(),
		SendErrors: s.sendErrs.Load(),
	}
}

func (s *Shipper) send(ctx context.Context, recs []Record) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SendTimeout)
	defer cancel()
	if err := s.cfg.Send(ctx, recs); err != nil {
		s.sendErrs.Add(1)
		return err
	}
	s.sent.Add(uint64(len(recs)))
	return nil
}

// Run sends queued records until ctx ends, then writes what is still
// queued to the spool (so a restart sends it) and returns nil. Records
// written after Run returns go straight to the spool.
func (s *Shipper) Run(ctx context.Context) error {
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     s.cfg.MinBackoff,
		RandomizationFactor: 0.2,
		Multiplier:          2,
		MaxInterval:         s.cfg.MaxBackoff,
	}
	bo.Reset()
	flush := time.NewTicker(s.cfg.FlushEvery)
	defer flush.Stop()
	retry := time.NewTimer(0) // a spool left from before is tried at once
	defer retry.Stop()

	batch := make([]Record, 0, s.cfg.BatchSize)
	down := s.cfg.Spool != nil // until the spool is known empty and the server up
	draining := false
	fail := func(err error) {
		if !down {
			s.log.Warn("flow server unreachable; spooling", "err", err)
		}
		down, draining = true, false
		retry.Reset(bo.NextBackOff())
	}
	ship := func() {
		if len(batch) == 0 {
			return
		}
		if !down {
			if err := s.send(ctx, batch); err == nil {
				batch = batch[:0]
				return
			} else if ctx.Err() == nil {
				fail(err)
			}
		}
		_ = s.spool(batch)
		batch = batch[:0]
	}
	// step sends one spooled batch. It reports whether the spool was empty
	// and whether all went well; on failure it has called fail.
	step := func() (empty, ok bool) {
		if s.cfg.Spool == nil {
			return true, true
		}
		b, err := s.cfg.Spool.Next(s.cfg.BatchSize)
		if err != nil {
			s.log.Error("flow spool read failed", "err", err)
			fail(err)
			return false, false
		}
		if b == nil {
			return true, true
		}
		if err := s.send(ctx, b.Records); err != nil {
			if ctx.Err() == nil {
				fail(err)
			}
			return false, false
		}
		if err := s.cfg.Spool.Ack(b); err != nil {
			s.log.Error("flow spool acknowledge failed", "err", err)
		}
		return false, true
	}
	add := func(r Record) {
		batch = append(batch, r)
		if len(batch) >= s.cfg.BatchSize {
			ship()
		}
	}
	for {
		if draining {
			select {
			case <-ctx.Done():
				return s.stop(batch)
			case r := <-s.q:
				add(r)
				continue
			default:
			}
			if empty, ok := step(); empty || !ok {
				draining = false
			}
			continue
		}
		select {
		case <-ctx.Done():
			return s.stop(batch)
		case r := <-s.q:
			add(r)
		case <-flush.C:
			ship()
			// Writes that overflowed the queue went to the spool while
			// the server was up: send them too.
			if !down && s.cfg.Spool != nil && s.cfg.Spool.Stats().Records > 0 {
				draining = true
			}
		case <-retry.C:
			if !down {
				continue
			}
			if empty, ok := step(); ok {
				if s.cfg.Spool != nil && !empty {
					s.log.Info("flow server reachable; sending spool")
				}
				down, draining = false, !empty
				bo.Reset()
			}
		}
	}
}

// stop ends Run: later writes go to the spool, and what is queued goes
// there now.
func (s *Shipper) stop(batch []Record) error {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	for {
		select {
		case r := <-s.q:
			batch = append(batch, r)
			continue
		default:
		}
		break
	}
	_ = s.spool(batch)
	return nil
}
