package idle

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"moat/internal/testkit"
)

// A relay that moves bytes outlives the timeout; once quiet for it, the
// watch ends it, once.
func TestWatchFiresOnlyWhenQuiet(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	c := NewConn(a)
	go func() {
		buf := make([]byte, 1)
		for {
			if _, err := b.Read(buf); err != nil {
				return
			}
		}
	}()
	var fired atomic.Int32
	done := make(chan struct{})
	const timeout = time.Second
	w := Start(timeout, c.Quiet, func() {
		fired.Add(1)
		c.Close()
		close(done)
	})
	defer w.Stop()
	start := time.Now()
	for time.Since(start) < 5*timeout/2 {
		if _, err := c.Write([]byte{1}); err != nil {
			t.Fatalf("the watch ended a relay that moved a byte every %s: %v", timeout/20, err)
		}
		time.Sleep(timeout / 20)
	}
	select {
	case <-done:
	case <-time.After(testkit.WaitLimit):
		t.Fatalf("a relay quiet for %s was not ended", testkit.WaitLimit)
	}
	if q, _ := c.Quiet(); q < timeout {
		t.Errorf("ended after %s quiet, want at least %s", q, timeout)
	}
	if !w.Fired() || fired.Load() != 1 {
		t.Errorf("Fired %v, fire called %d times; want true, 1", w.Fired(), fired.Load())
	}
}

// Once stopped, a watch never fires, though its relay then goes quiet.
func TestWatchStopped(t *testing.T) {
	var quiet atomic.Bool
	since := func() (time.Duration, bool) {
		if quiet.Load() {
			return time.Hour, true
		}
		return 0, true
	}
	var fired atomic.Bool
	w := Start(time.Millisecond, since, func() { fired.Store(true) })
	w.Stop()
	quiet.Store(true)
	// A later watch on the same relay fires: by then the stopped one's
	// timer has come too.
	done := make(chan struct{})
	Start(20*time.Millisecond, since, func() { close(done) })
	select {
	case <-done:
	case <-time.After(testkit.WaitLimit):
		t.Fatal("the second watch did not fire")
	}
	if fired.Load() || w.Fired() {
		t.Error("a stopped watch fired")
	}
}
