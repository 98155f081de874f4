package flow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// ShipperConfig configures a Shipper.
type ShipperConfig struct {
	// Send delivers a batch to the server; nil error means the server stored
	// it. Required.
	Send func(ctx context.Context, recs []Record) error
	// Spool is the shipper's write-ahead log: every record goes there
	// before Write returns, and is sent from there. The caller opens it and
	// closes it after Run returns. Required.
	Spool *Spool
	// BatchSize is the most records per Send; zero means 500.
	BatchSize int
	// FlushEvery sends what the spool holds after this long; zero means
	// 200ms, so a connection's open record reaches the server (and `moat
	// flows --follow`) well within a second of its start.
	FlushEvery time.Duration
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
	Spooled    uint64 // records written to the spool (every record accepted)
	Dropped    uint64 // records lost: the spool was full or refused them
	Rejected   uint64 // invalid records refused by Write
	SendErrors uint64 // failed Send calls
}

// Shipper is a Writer that sends records to the server in batches. Write
// appends the record to the spool before it returns (write-ahead), and Run
// sends from the spool, removing records only once the server has them.
// So the loss window of a crashed process is empty: a record whose Write
// returned is in the spool file and is sent after a restart. Write does not
// wait for the network, only for the append, which concurrent writers share
// (see Spool.Append). Delivery is at least once and in order of writing;
// the server's Ingest makes it exactly once.
type Shipper struct {
	cfg   ShipperConfig
	log   *slog.Logger
	nudge chan struct{} // a full batch is waiting
	// unsent counts records written since Run last emptied the spool.
	unsent atomic.Int64

	sent, spooled, dropped, rejected, sendErrs atomic.Uint64
}

// NewShipper returns a Shipper; start it with Run.
func NewShipper(cfg ShipperConfig) (*Shipper, error) {
	if cfg.Send == nil {
		return nil, errors.New("flow: shipper: nil Send")
	}
	if cfg.Spool == nil {
		return nil, errors.New("flow: shipper: nil Spool")
	}
	if cfg.BatchSize < 0 || cfg.FlushEvery < 0 || cfg.SendTimeout < 0 || cfg.MinBackoff < 0 || cfg.MaxBackoff < 0 {
		return nil, errors.New("flow: shipper: negative size or duration")
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 500
	}
	if cfg.FlushEvery == 0 {
		cfg.FlushEvery = 200 * time.Millisecond
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
	s := &Shipper{cfg: cfg, log: cfg.Logger, nudge: make(chan struct{}, 1)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// Write appends r to the spool; when it returns nil, r survives a crash of
// the process. It refuses an invalid record (see Validate) so that one bad
// record can never block a batch at the server. A record the full spool
// cannot take is dropped and counted, not reported as an error.
func (s *Shipper) Write(r Record) error {
	if err := Validate(&r); err != nil {
		s.rejected.Add(1)
		return fmt.Errorf("flow: shipper: record uid %q: %w", r.Metadata.UID, err)
	}
	n, err := s.cfg.Spool.Append([]Record{r})
	s.spooled.Add(uint64(n))
	s.dropped.Add(uint64(1 - n))
	if err != nil {
		s.log.Error("flow spool write failed", "err", err)
		return err
	}
	if s.unsent.Add(int64(n)) >= int64(s.cfg.BatchSize) {
		select {
		case s.nudge <- struct{}{}:
		default:
		}
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

// Run sends what the spool holds every FlushEvery (at once when a full
// batch is waiting, and at start for what a previous run left), backing off
// while the server is unreachable, until ctx ends. It returns nil: what is
// not yet sent stays in the spool for the next run.
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
	retry := time.NewTimer(0)
	defer retry.Stop()
	down := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-flush.C:
			if down {
				continue
			}
		case <-s.nudge:
			if down {
				continue
			}
		case <-retry.C:
		}
		err := s.drain(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			if !down {
				s.log.Warn("flow server unreachable; records wait in the spool", "err", err)
				// They may wait long: put them on disk, not just in the
				// page cache.
				if err := s.cfg.Spool.Sync(); err != nil {
					s.log.Error("flow spool sync failed", "err", err)
				}
			}
			down = true
			retry.Reset(bo.NextBackOff())
		case down:
			s.log.Info("flow server reachable; spool sent")
			down = false
			bo.Reset()
		}
	}
}

// drain sends the spool's records in batches until it is empty or a send
// fails.
func (s *Shipper) drain(ctx context.Context) error {
	s.unsent.Store(0)
	for {
		b, err := s.cfg.Spool.Next(s.cfg.BatchSize)
		if err != nil {
			return fmt.Errorf("flow: spool read: %w", err)
		}
		if b == nil {
			return nil
		}
		if err := s.send(ctx, b.Records); err != nil {
			return err
		}
		if err := s.cfg.Spool.Ack(b); err != nil {
			s.log.Error("flow spool acknowledge failed", "err", err)
		}
	}
}
