package seal

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Scheduler rotates the keyring's primary data key when it is due
// (Keyring.Due: Every old, or MaxEncryptions sealed under it), checking
// every Check; each rotation's Event goes to OnRotate (which
// appends it to the audit log). At each check and as it stops it saves the
// count of encryptions (Keyring.SaveCount), so the next process of the
// directory goes on from it. Run it with the server's other parts.
type Scheduler struct {
	Keyring *Keyring
	// Every is the age at which the primary is replaced, e.g. 90 days; 0
	// means by the count of encryptions alone.
	Every time.Duration
	// Check is how often the age is looked at; 0 means one hour.
	Check time.Duration
	// OnRotate records a rotation. An error from it stops Run: a rotation
	// that cannot be audited must be noticed.
	OnRotate func(context.Context, Event) error
	// After is the timer; nil means time.After. Tests pass their own.
	After func(time.Duration) <-chan time.Time
}

// Run checks at once and then every Check until ctx ends; it returns nil
// when ctx is cancelled and an error if a rotation or its record fails.
func (s *Scheduler) Run(ctx context.Context) error {
	if s.Keyring == nil || s.Every < 0 {
		return errors.New("seal: scheduler: a Keyring is required, and Every may not be negative")
	}
	check := s.Check
	if check <= 0 {
		check = time.Hour
	}
	after := s.After
	if after == nil {
		after = time.After
	}
	for {
		ev, rotated, err := s.Keyring.RotateIfDue(s.Every)
		if err != nil {
			return fmt.Errorf("seal: scheduled rotation: %w", err)
		}
		if rotated && s.OnRotate != nil {
			if err := s.OnRotate(ctx, ev); err != nil {
				return fmt.Errorf("seal: recording scheduled rotation: %w", err)
			}
		}
		// A count that cannot be saved is logged; the keyring still
		// counts in memory.
		if err := s.Keyring.SaveCount(); err != nil {
			s.Keyring.log.Warn("seal: the count of encryptions was not saved", "err", err)
		}
		select {
		case <-ctx.Done():
			if err := s.Keyring.SaveCount(); err != nil {
				s.Keyring.log.Warn("seal: the count of encryptions was not saved", "err", err)
			}
			return nil
		case <-after(check):
		}
	}
}
