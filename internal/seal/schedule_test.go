package seal

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestScheduler(t *testing.T) {
	c := newClock()
	k := openTest(t, t.TempDir(), testKEK(t, 1), c)
	ticks := make(chan time.Time)
	events := make(chan Event, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := &Scheduler{
		Keyring: k, Every: 90 * 24 * time.Hour, Check: time.Hour,
		OnRotate: func(_ context.Context, ev Event) error { events <- ev; return nil },
		After:    func(time.Duration) <-chan time.Time { return ticks },
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	first := k.Primary()
	ticks <- c.Now() // first check done, nothing due; second check runs
	c.Advance(89 * 24 * time.Hour)
	ticks <- c.Now()
	c.Advance(24 * time.Hour) // primary is 90 days old at the next check
	ticks <- c.Now()
	ev := <-events
	if ev.Action != "keys.rotate" || k.Primary() == first {
		t.Fatalf("event %+v, primary %d (was %d)", ev, k.Primary(), first)
	}
	ticks <- c.Now()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		t.Fatalf("rotated again at once: %+v", ev)
	default:
	}

	// A rotation that cannot be recorded stops the scheduler.
	c.Advance(91 * 24 * time.Hour)
	s.OnRotate = func(context.Context, Event) error { return errors.New("audit log down") }
	err := s.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "audit log down") {
		t.Fatalf("err = %v", err)
	}
}

// TestSchedulersShareKeyring: two servers' schedules on one keyring (a
// cluster's, here a file both open) find the primary due together. One
// rotates; the other, whose write finds the keyring changed, loads it and
// neither rotates again nor fails.
func TestSchedulersShareKeyring(t *testing.T) {
	c := newClock()
	dir := t.TempDir()
	a := openTest(t, dir, testKEK(t, 1), c)
	b := openTest(t, dir, testKEK(t, 1), c)
	first := a.Primary()
	c.Advance(91 * 24 * time.Hour)
	events := make(chan Event, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	run := func(k *Keyring) chan error {
		s := &Scheduler{
			Keyring: k, Every: 90 * 24 * time.Hour,
			OnRotate: func(_ context.Context, ev Event) error { events <- ev; return nil },
			After:    func(time.Duration) <-chan time.Time { return nil },
		}
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		return done
	}
	doneA := run(a)
	ev := <-events
	if ev.Action != "keys.rotate" || a.Primary() == first {
		t.Fatalf("event %+v, primary %d (was %d)", ev, a.Primary(), first)
	}
	// b still holds the keyring as it was before a's rotation.
	if b.Primary() != first {
		t.Fatalf("b's primary %d before its check, want %d", b.Primary(), first)
	}
	// b's scheduled check, as its Scheduler makes it.
	if _, rotated, err := b.RotateIfDue(90 * 24 * time.Hour); err != nil || rotated {
		t.Fatalf("b's check: rotated %v, %v; want neither", rotated, err)
	}
	if b.Primary() != a.Primary() {
		t.Fatalf("b's primary %d, want a's %d", b.Primary(), a.Primary())
	}
	cancel()
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		t.Fatalf("a second rotation: %+v", ev)
	default:
	}
	if n := len(a.Status(nil).Keys); n != 2 {
		t.Fatalf("%d keys after the cluster's rotation, want 2", n)
	}
}

// TestSchedulerKeepsCount: what the processes of a data directory sealed
// under the primary is counted across their restarts. The scheduler saves
// the count at each check and as it stops; the next process opens the
// keyring with it, so a primary near the bound is rotated however often
// the process restarts. A saved count of another primary (the process
// rotated after its last save) counts nothing towards the new one.
func TestSchedulerKeepsCount(t *testing.T) {
	c := newClock()
	dir := t.TempDir()
	kek := testKEK(t, 1)
	run := func(k *Keyring, seal int) {
		t.Helper()
		for range seal {
			if _, err := k.AEAD().Encrypt([]byte("record"), []byte("ad")); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		s := &Scheduler{Keyring: k, After: func(time.Duration) <-chan time.Time { return nil }}
		go func() { done <- s.Run(ctx) }()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	open := func() *Keyring {
		t.Helper()
		k, err := Open(Config{Dir: dir, KEK: kek, Now: c.Now, MaxEncryptions: 10})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k := open()
	run(k, 4)
	k = open()
	if st := k.Status(nil); st.Encryptions != 4 {
		t.Fatalf("after a restart the count is %d, want the 4 sealed before it", st.Encryptions)
	}
	run(k, 3)
	k = open()
	if st := k.Status(nil); st.Encryptions != 7 {
		t.Fatalf("after a second restart the count is %d, want 7", st.Encryptions)
	}
	first := k.Primary()
	for range 3 {
		if _, err := k.AEAD().Encrypt([]byte("record"), []byte("ad")); err != nil {
			t.Fatal(err)
		}
	}
	if reason := k.Due(c.Now(), 0); reason != "encryptions" {
		t.Fatalf("10 records sealed over three processes: Due says %q, want encryptions", reason)
	}
	// Rotated by hand, not saved: the count saved is the old primary's.
	if _, err := k.Rotate(); err != nil {
		t.Fatal(err)
	}
	k = open()
	if st := k.Status(nil); k.Primary() == first || st.Encryptions != 0 {
		t.Fatalf("the new primary %d (was %d) starts at %d, want 0", k.Primary(), first, st.Encryptions)
	}
}
