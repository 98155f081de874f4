package e2e

import (
	"sync"
	"time"
)

// fakeClock is a clock tests move by hand. After channels fire when
// Advance passes their deadline.
type fakeClock struct {
	mu     sync.Mutex // guards now and timers
	now    time.Time
	timers []fakeTimer
}

type fakeTimer struct {
	at time.Time
	d  time.Duration // as armed
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Now().Truncate(time.Second)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.timers = append(c.timers, fakeTimer{at: c.now.Add(d), d: d, ch: ch})
	return ch
}

// Advance moves the clock and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	keep := c.timers[:0]
	var fire []fakeTimer
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			fire = append(fire, t)
		} else {
			keep = append(keep, t)
		}
	}
	c.timers = keep
	now := c.now
	c.mu.Unlock()
	for _, t := range fire {
		t.ch <- now
	}
}

// fireWithin moves the clock to the earliest timer due within d of now,
// firing it (and any due with it), and reports whether there was one.
func (c *fakeClock) fireWithin(d time.Duration) bool {
	c.mu.Lock()
	var next time.Time
	for _, t := range c.timers {
		if !t.at.After(c.now.Add(d)) && (next.IsZero() || t.at.Before(next)) {
			next = t.at
		}
	}
	step := next.Sub(c.now)
	c.mu.Unlock()
	if next.IsZero() {
		return false
	}
	c.Advance(step)
	return true
}

// armed counts the timers waiting that were armed for exactly d: a
// periodic loop parked until its next round.
func (c *fakeClock) armed(d time.Duration) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if t.d == d {
			n++
		}
	}
	return n
}
