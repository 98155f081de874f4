package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"moat/internal/flow"
)

// TestDefaultBodyLimit: a route that does not say it takes uploads takes
// 1 MiB; one that does takes what it says.
func TestDefaultBodyLimit(t *testing.T) {
	yaml := strings.Replace(baseYAML, "    path: /api/\n", "    path: /api/\n  - name: upload\n    service: api\n    port: 9090\n    path: /upload/\n    max_body_bytes: 4194304\n", 1)
	for _, wafOn := range []bool{false, true} {
		y := yaml + noWAF
		if wafOn {
			// The WAF refuses a single value over 256 KiB by default
			// (waf.max_arg_length); raised here, so that what is tested
			// is the route's body limit.
			y = yaml + "rate_limit:\n  off: true\nwaf:\n  max_arg_length: 2097152\n  budget: 10m\n"
		}
		f := newFixture(t, y)
		big := "a=" + strings.Repeat("b", 2<<20)
		post := func(path string, body io.Reader) int {
			r := f.req("POST", path, body)
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			code, _, _ := f.do(r)
			return code
		}
		if code := post("/", strings.NewReader(big)); code != http.StatusRequestEntityTooLarge {
			t.Errorf("waf %v: 2 MiB to a route without max_body_bytes: %d, want 413", wafOn, code)
		}
		// Without a length the limit bites while the body is read.
		if code := post("/", io.MultiReader(strings.NewReader(big))); code != http.StatusRequestEntityTooLarge {
			t.Errorf("waf %v: 2 MiB of unknown length: %d, want 413", wafOn, code)
		}
		if code := post("/", strings.NewReader("a="+strings.Repeat("b", 1<<20-2))); code != 200 {
			t.Errorf("waf %v: exactly 1 MiB: %d", wafOn, code)
		}
		if !wafOn {
			// The WAF's evaluation of 2 MiB is what the next test is about.
			if code := post("/upload/", strings.NewReader(big)); code != 200 {
				t.Errorf("2 MiB to the upload route: %d", code)
			}
			if _, body := f.backends["api"].lastRequest(); len(body) != len(big) {
				t.Errorf("upload route forwarded %d bytes of %d", len(body), len(big))
			}
		}
	}
}

// bodyInspectionYAML has an upload route taking 4 MiB and an inspection
// gate with room for one 2 MiB body and a client share of 2 MiB. The WAF's
// per-request argument limits and budget are raised so that a 2 MiB value
// is evaluated (slowly) rather than refused at once.
const bodyInspectionYAML = plainYAML + `limits:
  write_timeout: 10m
waf:
  max_arg_length: 4194304
  max_total_arg_length: 4194304
  budget: 10m
  body_inspection:
    max_bytes: 3145728
    max_bytes_per_client: 2097152
    queue_timeout: 100ms
services: [frontend, api]
routes:
  - service: frontend
    port: 8080
  - name: upload
    service: api
    port: 9090
    path: /upload/
    max_body_bytes: 4194304
    csrf_off: true
`

// TestWAFBodyInspectionBounded: while one client posts 2 MiB bodies (each
// seconds of CRS evaluation), its posts beyond its share are refused at
// once, another attacker finding no room is refused after the queue
// timeout, and a third client's GET and small POST are answered while the
// first attacker's admitted post is still being evaluated. The admitted
// post is held at the gate, its bytes taken, until the normal client has
// been answered: how long CRS takes over 2 MiB on this machine decides
// nothing.
func TestWAFBodyInspectionBounded(t *testing.T) {
	f := newFixture(t, bodyInspectionYAML)
	gate := f.gw.state.Load().gate
	attackerKey := flow.SourceKey(netip.MustParseAddr("127.0.0.2"))
	letEvaluate := holdAdmitted(t, gate, attackerKey)
	attacker, other, normal := f.clientFrom("127.0.0.2"), f.clientFrom("127.0.0.4"), f.clientFrom("127.0.0.3")
	big := "a=" + strings.Repeat("x", 2<<20)
	post := func(c *http.Client, body string, out chan<- int) {
		r := f.req("POST", "/upload/", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := c.Do(r)
		if err != nil {
			t.Errorf("post: %v", err)
			out <- 0
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		out <- resp.StatusCode
	}

	const posts = 4
	t.Logf("the attacker sends %d posts of 2 MiB at once", posts)
	results := make(chan int, posts)
	for range posts {
		go post(attacker, big, results)
	}
	waitFor(t, "the attacker's first body admitted", func() bool {
		return gate.held(attackerKey) > 0
	})
	var refused []int
	for range posts - 1 {
		select {
		case code := <-results:
			refused = append(refused, code)
		case <-time.After(2 * time.Minute):
			t.Fatalf("the attacker's posts beyond its share were not answered; answered so far %v", refused)
		}
	}
	if !slices.Equal(refused, []int{429, 429, 429}) {
		t.Errorf("the attacker's posts beyond its share: %v, want three 429s", refused)
	}

	t.Log("a second attacker's 2 MiB finds no room and is refused after the queue timeout")
	otherDone := make(chan int, 1)
	post(other, big, otherDone)
	if code := <-otherDone; code != http.StatusServiceUnavailable {
		t.Errorf("second attacker: %d, want 503", code)
	}

	t.Log("a normal client is served meanwhile")
	resp, err := normal.Do(f.req("GET", "/page", nil))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(page) != "ok GET /page" {
		t.Errorf("normal GET: %d %q", resp.StatusCode, page)
	}
	small := make(chan int, 1)
	post(normal, "q=hello", small)
	if code := <-small; code != 200 {
		t.Errorf("normal small POST: %d", code)
	}
	select {
	case code := <-results:
		t.Errorf("the attacker's admitted post (%d) finished before the normal client was served; the ordering shows nothing", code)
	default:
		t.Log("the normal client was answered while the attacker's post was still under evaluation")
	}
	if gate.held(attackerKey) == 0 {
		t.Error("the attacker's admitted post no longer holds its bytes while it waits for evaluation")
	}
	letEvaluate()
	select {
	case code := <-results:
		if code == 429 || code == 503 || code == 0 {
			t.Errorf("the attacker's admitted post: %d, want the WAF's verdict", code)
		}
	case <-time.After(5 * time.Minute):
		t.Fatal("the attacker's admitted post was not answered within 5 minutes")
	}
	var kinds []string
	for _, k := range f.kinds() {
		if k != KindWAF {
			kinds = append(kinds, k)
		}
	}
	slices.Sort(kinds)
	if want := []string{KindOverload, KindRateLimit, KindRateLimit, KindRateLimit}; !slices.Equal(kinds, want) {
		t.Errorf("events %v, want %v", kinds, want)
	}
	if gate.held(attackerKey) != 0 {
		t.Error("the gate still holds the attacker's bytes")
	}
}

// TestWAFBodyInspectionQueueBounded: while an admitted body holds the
// gate, the queue takes max_queued bodies and refuses the next at once,
// 503, rather than letting clients from ever more addresses wait; the
// queued body is served once the gate frees.
func TestWAFBodyInspectionQueueBounded(t *testing.T) {
	yaml := strings.Replace(bodyInspectionYAML, `    max_bytes: 3145728
    max_bytes_per_client: 2097152
    queue_timeout: 100ms
`, `    max_bytes: 65536
    max_bytes_per_client: 65536
    queue_timeout: 10m
    max_queued: 1
`, 1)
	f := newFixture(t, yaml)
	gate := f.gw.state.Load().gate
	holderKey := flow.SourceKey(netip.MustParseAddr("127.0.0.2"))
	letEvaluate := holdAdmitted(t, gate, holderKey)
	post := func(source string, size int) <-chan int {
		out := make(chan int, 1)
		go func() {
			r := f.req("POST", "/upload/", strings.NewReader("a="+strings.Repeat("x", size)))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := f.clientFrom(source).Do(r)
			if err != nil {
				t.Errorf("post from %s: %v", source, err)
				out <- 0
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			out <- resp.StatusCode
		}()
		return out
	}
	held := post("127.0.0.2", 60<<10)
	waitFor(t, "the first body admitted", func() bool { return gate.held(holderKey) > 0 })
	queued := post("127.0.0.3", 30<<10)
	waitFor(t, "the second body queued", func() bool { return gate.waiters() == 1 })
	refused := post("127.0.0.4", 30<<10)
	waitFor(t, "the third body answered while the queue is full", func() bool { return len(refused) == 1 })
	if code := <-refused; code != http.StatusServiceUnavailable {
		t.Errorf("the body past max_queued: %d, want 503", code)
	}
	if gate.waiters() != 1 || len(queued) != 0 {
		t.Error("the queued body left the queue before the gate freed")
	}
	letEvaluate()
	for name, out := range map[string]<-chan int{"admitted": held, "queued": queued} {
		if code := <-out; code != 200 {
			t.Errorf("the %s body: %d, want 200", name, code)
		}
	}
	if kinds := f.kinds(); !slices.Equal(kinds, []string{KindOverload}) {
		t.Errorf("events %v, want one %s", kinds, KindOverload)
	}
}

func TestInspectGate(t *testing.T) {
	a, b, c := netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("192.0.2.2/32"), netip.MustParsePrefix("2001:db8::/64")
	g := newInspectGate(100<<10, 50<<10, 100, time.Hour)
	ctx := context.Background()

	relA, err := g.acquire(ctx, a, 40<<10)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("a client over its share is refused at once, however much room is left")
	if _, err := g.acquire(ctx, a, 20<<10); !errors.Is(err, errClientShare) {
		t.Errorf("over the share: %v", err)
	}
	t.Log("a client alone may take more than its share, up to the whole gate")
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := g.acquire(gone, b, 1<<30); !errors.Is(err, errInspectBusy) {
		t.Fatalf("a body over the free room must wait (here until its context ends), not pass or be refused as over the share: %v", err)
	}

	t.Log("waiters are served round-robin across clients, each as soon as it fits")
	g = newInspectGate(100<<10, 100<<10, 100, time.Hour)
	hold, _ := g.acquire(ctx, a, 100<<10)
	granted := make(chan string, 4)
	done := map[string]chan struct{}{"b1": make(chan struct{}), "b2": make(chan struct{}), "c1": make(chan struct{})}
	wait := func(name string, client netip.Prefix, n int64) {
		rel, err := g.acquire(ctx, client, n)
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		granted <- name
		<-done[name]
		if rel != nil {
			rel()
		}
	}
	queued := func(n int) {
		waitFor(t, "waiters queued", func() bool { return g.waiters() == n })
	}
	go wait("b1", b, 60<<10)
	queued(1)
	go wait("b2", b, 30<<10)
	queued(2)
	go wait("c1", c, 30<<10)
	queued(3)
	hold()
	// b1 and c1 fit together; b2, queued before c1, waits for its turn.
	if got := []string{<-granted, <-granted}; !slices.Contains(got, "b1") || !slices.Contains(got, "c1") {
		t.Errorf("granted %v first, want b1 and c1", got)
	}
	queued(1)
	close(done["c1"])
	if got := <-granted; got != "b2" {
		t.Errorf("granted %s, want b2", got)
	}
	close(done["b1"])
	close(done["b2"])

	t.Log("a waiter whose turn does not come within the timeout is refused, and its place freed")
	g = newInspectGate(100<<10, 100<<10, 100, time.Millisecond)
	hold, _ = g.acquire(ctx, a, 100<<10)
	if _, err := g.acquire(ctx, b, 10<<10); !errors.Is(err, errInspectBusy) {
		t.Errorf("timed out: %v", err)
	}
	hold()
	g.mu.Lock()
	if g.used != 0 || g.waiting != 0 || len(g.clients) != 0 || g.turn.live != 0 {
		t.Errorf("gate not empty after all left: used %d waiting %d clients %d turn %d", g.used, g.waiting, len(g.clients), g.turn.live)
	}
	g.mu.Unlock()
	relA()

	t.Log("a full queue refuses at once, and a client's further bodies find it full at half")
	g = newInspectGate(100<<10, 100<<10, 4, time.Hour)
	hold, _ = g.acquire(ctx, a, 100<<10)
	stop, cancel := context.WithCancel(ctx)
	defer cancel()
	try := func(client netip.Prefix) <-chan error {
		out := make(chan error, 1)
		go func() {
			rel, err := g.acquire(stop, client, 10<<10)
			if rel != nil {
				rel()
			}
			out <- err
		}()
		return out
	}
	refused := func(what string, out <-chan error) {
		waitFor(t, what+" answered without waiting", func() bool { return len(out) == 1 })
		if err := <-out; !errors.Is(err, errInspectBusy) {
			t.Errorf("%s: %v, want errInspectBusy", what, err)
		}
	}
	d, e := netip.MustParsePrefix("192.0.2.4/32"), netip.MustParsePrefix("192.0.2.5/32")
	waiting := []<-chan error{try(b)}
	queued(1)
	waiting = append(waiting, try(b))
	queued(2)
	refused("b's third body, the queue half full", try(b))
	waiting = append(waiting, try(c))
	queued(3)
	waiting = append(waiting, try(d))
	queued(4)
	refused("e's body, the queue full", try(e))
	hold()
	for _, out := range waiting {
		if err := <-out; err != nil {
			t.Errorf("a queued body once the gate was free: %v", err)
		}
	}
	g.mu.Lock()
	if g.used != 0 || g.waiting != 0 || len(g.clients) != 0 || g.turn.live != 0 {
		t.Errorf("gate not empty after all left: used %d waiting %d clients %d turn %d", g.used, g.waiting, len(g.clients), g.turn.live)
	}
	g.mu.Unlock()
}

// BenchmarkInspectGateQueued measures what a release and a waiter's
// timeout cost while many clients (one IPv6 /64 each) have a body queued
// that does not fit: the gate is held by small bodies, so that every
// release looks at the queue. It should not grow with the queue.
func BenchmarkInspectGateQueued(b *testing.B) {
	const capacity = 8 << 20
	ctx := context.Background()
	for _, clients := range []int{10, 100, 1000, 10000} {
		g := newInspectGate(capacity, capacity, clients+1, time.Hour)
		holder := netip.MustParsePrefix("192.0.2.1/32")
		held := make([]func(), 0, capacity/minInspectWeight)
		for range capacity / minInspectWeight {
			rel, err := g.acquire(ctx, holder, minInspectWeight)
			if err != nil {
				b.Fatal(err)
			}
			held = append(held, rel)
		}
		stop, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for i := range clients {
			key := netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, byte(i >> 8), byte(i)}), 64)
			wg.Go(func() {
				if _, err := g.acquire(stop, key, 1<<20); !errors.Is(err, errInspectBusy) {
					b.Errorf("waiter: %v", err)
				}
			})
		}
		waitFor(b, "waiters queued", func() bool { return g.waiters() == clients })
		b.Run(fmt.Sprintf("release/clients=%d", clients), func(b *testing.B) {
			for i := range b.N {
				k := i % len(held)
				held[k]()
				rel, err := g.acquire(ctx, holder, minInspectWeight)
				if err != nil {
					b.Fatal(err)
				}
				held[k] = rel
			}
		})
		b.Run(fmt.Sprintf("timeout/clients=%d", clients), func(b *testing.B) {
			gone, cancel := context.WithCancel(ctx)
			cancel()
			late := netip.MustParsePrefix("192.0.2.2/32")
			for range b.N {
				if _, err := g.acquire(gone, late, 1<<20); !errors.Is(err, errInspectBusy) {
					b.Fatal(err)
				}
			}
		})
		cancel()
		wg.Wait()
		for _, rel := range held {
			rel()
		}
	}
}

// TestTurnQueue: the turn finds the client nearest the front whose first
// body fits, as a walk down the line would, through pushes, removals from
// anywhere, first bodies changing and the slots being packed.
func TestTurnQueue(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var q turnQueue
	var line []*gateClient // the reference: front first
	for step := range 20000 {
		switch op := rng.IntN(10); {
		case op < 4 || len(line) == 0:
			c := &gateClient{}
			c.push(&gateWaiter{n: 1 + rng.Int64N(100)})
			q.push(c)
			line = append(line, c)
		case op < 7:
			i := rng.IntN(len(line))
			q.remove(line[i])
			line = slices.Delete(line, i, i+1)
		default:
			c := line[rng.IntN(len(line))]
			c.first.n = 1 + rng.Int64N(100)
			q.set(c)
		}
		room := rng.Int64N(110)
		var want *gateClient
		for _, c := range line {
			if c.first.n <= room {
				want = c
				break
			}
		}
		if got := q.first(room); got != want || q.live != len(line) {
			t.Fatalf("step %d: first(%d) = %p, want %p; live %d, line %d", step, room, got, want, q.live, len(line))
		}
	}
}

// TestInspectGateSurvivesReload: a reload that leaves waf.body_inspection
// as it was keeps the gate, with the bodies under evaluation in it. Before,
// each reload built an empty gate, which admitted another max_bytes beside
// the bodies the old one still held.
func TestInspectGateSurvivesReload(t *testing.T) {
	conf := baseYAML + "rate_limit:\n  off: true\nwaf:\n  body_inspection: {max_bytes: 65536, max_bytes_per_client: 65536, queue_timeout: 100ms}\n"
	f := newFixture(t, conf)
	gate := f.gw.state.Load().gate
	holder := flow.SourceKey(netip.MustParseAddr("127.0.0.2"))
	letEvaluate := holdAdmitted(t, gate, holder)
	body := "a=" + strings.Repeat("x", 60000)
	post := func(source string) int {
		r := f.req("POST", "/api/items", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Origin", f.base)
		resp, err := f.clientFrom(source).Do(r)
		if err != nil {
			t.Errorf("post: %v", err)
			return 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	held := make(chan int, 1)
	go func() { held <- post("127.0.0.2") }()
	waitFor(t, "the first body admitted", func() bool { return gate.held(holder) > 0 })
	f.write(conf + "# touched\n")
	if err := f.gw.Reload(); err != nil {
		t.Fatal(err)
	}
	if code := post("127.0.0.3"); code != http.StatusServiceUnavailable {
		t.Errorf("a body while the gate is full, after a reload: %d, want 503", code)
	}
	letEvaluate()
	if code := <-held; code != 200 {
		t.Errorf("the held body: %d, want 200", code)
	}
	if code := post("127.0.0.3"); code != 200 {
		t.Errorf("a body once the gate is free: %d, want 200", code)
	}
}

// holdAdmitted holds every body the gate admits from client under
// evaluation, its bytes taken, until the returned func is called (at the
// latest when the test ends, so that a failed test leaves nothing held).
func holdAdmitted(t *testing.T, gate *inspectGate, client netip.Prefix) (letEvaluate func()) {
	evaluate := make(chan struct{})
	letEvaluate = sync.OnceFunc(func() { close(evaluate) })
	t.Cleanup(letEvaluate)
	gate.mu.Lock()
	gate.onAdmit = func(c netip.Prefix) {
		if c == client {
			<-evaluate
		}
	}
	gate.mu.Unlock()
	return letEvaluate
}
