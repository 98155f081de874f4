package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/ca"
	"moat/internal/store"
	"moat/internal/testkit"
)

// testClock is a clock the test moves.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// credentialReads counts the store reads a public call makes to check
// what it carries: a join token, a pinned node key.
type credentialReads struct {
	store.Store
	n *atomic.Int64
}

func (c credentialReads) Get(ctx context.Context, key string) (store.KV, error) {
	if strings.HasPrefix(key, prefixToken) || strings.HasPrefix(key, prefixNodeKey) {
		c.n.Add(1)
	}
	return c.Store.Get(ctx, key)
}

// publicAnswer is a public call's status, error and Retry-After.
type publicAnswer struct {
	code       int
	err        api.Error
	retryAfter string
}

// publicCall posts in to path from the local address from, with no
// client certificate.
func (f *authFixture) publicCall(t *testing.T, from, path string, in any) publicAnswer {
	t.Helper()
	tr := f.transport(nil)
	defer tr.CloseIdleConnections()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: testkit.WaitLimit}
	tr.DialContext = d.DialContext
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(f.ctx, testkit.WaitLimit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+f.srv.Addr()+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("POST %s from %s: %v", path, from, err)
	}
	defer resp.Body.Close()
	a := publicAnswer{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	if resp.StatusCode >= 400 {
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&a.err); err != nil {
			t.Fatalf("POST %s: %d with no error answer: %v", path, resp.StatusCode, err)
		}
	}
	return a
}

// TestPublicFailuresThrottledPerSource: a join or re-attestation that
// fails costs the server a store read (an etcd read in a cluster) and a
// signature check, and nothing bounded how many one address could make:
// 50 garbage joins were 50 token reads. A source's failures are now held
// to publicFailBurst at once and publicFailBurst a publicFailWindow; past
// them its public calls are answered 429 with Retry-After before
// anything is read or checked. Another source is not held back, nor is
// this one once its failures have drained.
func TestPublicFailuresThrottledPerSource(t *testing.T) {
	clock := &testClock{t: time.Now()}
	var reads atomic.Int64
	f := newAuthFixtureWith(t, authOptions{now: clock.now, store: func(st store.Store) store.Store { return credentialReads{st, &reads} }})
	token := func(node string) string {
		var tok api.TokenResponse
		if code, e := f.call(t, f.accs["op"].session, http.MethodPost, api.PathTokens, api.TokenRequest{Node: node}, &tok); code != http.StatusOK {
			t.Fatalf("token: %d %+v", code, e)
		}
		return tok.Token
	}
	other, own := token("other"), token("own")
	fleet := make([]string, publicFailBurst+5)
	for i := range fleet {
		fleet[i] = token(fmt.Sprintf("fleet%d", i))
	}
	joinReq := func(tok, node string) api.JoinRequest {
		_, csr, err := ca.NewKeyCSR()
		if err != nil {
			t.Fatal(err)
		}
		return api.JoinRequest{Token: tok, Node: node, MeshAddr: "127.0.0.1:7401", CSR: csr}
	}
	// A garbage join is well formed, with a CSR that can be signed and a
	// token of the right form that the server never issued: the costliest
	// kind to refuse.
	_, pin, err := api.SplitToken(other)
	if err != nil {
		t.Fatal(err)
	}
	var secret [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		t.Fatal(err)
	}
	garbage := joinReq(api.TokenPrefix+base64.RawURLEncoding.EncodeToString(secret[:])+"."+pin, "victim")

	const attacker, bystander = "127.0.0.1", "127.0.0.2"
	const flood = 50
	answered := map[int]int{}
	var last publicAnswer
	base := reads.Load()
	for range flood {
		a := f.publicCall(t, attacker, api.PathJoin, garbage)
		answered[a.code]++
		if a.code == http.StatusTooManyRequests {
			last = a
		}
	}
	read := reads.Load() - base
	t.Logf("%d garbage joins from one address: answers %v, %d token reads", flood, answered, read)
	if answered[http.StatusUnauthorized] != publicFailBurst || answered[http.StatusTooManyRequests] != flood-publicFailBurst {
		t.Fatalf("answers %v, want %d of 401 then %d of 429", answered, publicFailBurst, flood-publicFailBurst)
	}
	if read != publicFailBurst {
		t.Fatalf("the store was read %d times for %d garbage joins, want %d: the refused ones read it", read, flood, publicFailBurst)
	}
	if want := strconv.Itoa(int((publicFailWindow / publicFailBurst).Seconds())); last.retryAfter != want {
		t.Fatalf("429 with Retry-After %q, want %q", last.retryAfter, want)
	}
	if !strings.Contains(last.err.Error, "too many failed") {
		t.Fatalf("429 says %q, want it to say why", last.err.Error)
	}

	t.Log("a re-attestation from the source is refused alike, its key not read")
	base = reads.Load()
	if a := f.publicCall(t, attacker, api.PathReattest, api.ReattestRequest{Node: "victim", CSR: garbage.CSR, Time: clock.now()}); a.code != http.StatusTooManyRequests {
		t.Fatalf("re-attestation from the throttled source: %d %q, want 429", a.code, a.err.Error)
	}
	if n := reads.Load() - base; n != 0 {
		t.Fatalf("a throttled re-attestation read the store %d times", n)
	}

	t.Log("a valid join from another address is answered")
	if a := f.publicCall(t, bystander, api.PathJoin, joinReq(other, "other")); a.code != http.StatusOK {
		t.Fatalf("join from another address: %d %q", a.code, a.err.Error)
	}

	t.Log("a valid join from the throttled source waits with it, its token unspent")
	if a := f.publicCall(t, attacker, api.PathJoin, joinReq(own, "own")); a.code != http.StatusTooManyRequests {
		t.Fatalf("join from the throttled source: %d %q, want 429", a.code, a.err.Error)
	}

	t.Log("once its failures have drained the source is heard again")
	clock.advance(publicFailWindow)
	if a := f.publicCall(t, attacker, api.PathJoin, joinReq(own, "own")); a.code != http.StatusOK {
		t.Fatalf("join from the source after the window: %d %q", a.code, a.err.Error)
	}

	t.Log("successes spend nothing: a fleet behind one address joins")
	for i, tok := range fleet {
		node := fmt.Sprintf("fleet%d", i)
		if a := f.publicCall(t, attacker, api.PathJoin, joinReq(tok, node)); a.code != http.StatusOK {
			t.Fatalf("join %d of a fleet from one address: %d %q", i, a.code, a.err.Error)
		}
	}

	t.Log("the refusals are counted and summarised")
	throttled := flood - publicFailBurst + 1
	if n := f.srv.m.refused.WithLabelValues("node.join", reasonThrottled).Value(); n != float64(throttled) {
		t.Fatalf("moat_server_refused_total{node.join,%s} = %v, want %d", reasonThrottled, n, throttled)
	}
	size := f.log.Size()
	f.srv.flushRefusals(f.ctx)
	summarised := 0
	for _, e := range f.entriesSince(t, 0) {
		if e.Entry.Action != ActionRefused {
			continue
		}
		for _, top := range strings.Split(e.Entry.Detail["top"], "; ") {
			var n int
			if _, err := fmt.Sscanf(top, attacker+" node.join "+reasonThrottled+" ×%d", &n); err == nil {
				summarised += n
			}
		}
	}
	if summarised != throttled {
		t.Fatalf("the refusal summaries count %d throttled joins from %s, want %d", summarised, attacker, throttled)
	}
	if f.log.Size() == size {
		t.Fatal("no summary was recorded")
	}
}

// TestFailGateBounds: an IPv6 /64 is one source; a source past its
// failures waits for one to drain; calls in flight count as failures
// until they end, and give their place back when they do not fail; the
// table holds at most maxFailSources, forgetting the least recently
// failed.
func TestFailGateBounds(t *testing.T) {
	now := time.Now()
	g := &failGate{}
	fail := func(a netip.Addr, now time.Time) {
		done, w := g.admit(a, now)
		if w != 0 {
			t.Fatalf("a failure from %s at %s refused: wait %s", a, now, w)
		}
		done(true, now)
	}
	a := netip.MustParseAddr("2001:db8::1")
	for range publicFailBurst {
		fail(a, now)
	}
	interval := publicFailWindow / publicFailBurst
	if w := g.wait(netip.MustParseAddr("2001:db8::ffff"), now); w != interval {
		t.Fatalf("another address of the /64 waits %s, want %s", w, interval)
	}
	if w := g.wait(netip.MustParseAddr("2001:db8:0:1::1"), now); w != 0 {
		t.Fatalf("another /64 waits %s", w)
	}
	if w := g.wait(a, now.Add(interval)); w != 0 {
		t.Fatalf("after %s the source still waits %s", interval, w)
	}

	// Calls in flight together: as many as the burst has room for.
	b := netip.MustParseAddr("192.0.2.1")
	var held []func(bool, time.Time)
	for range publicFailBurst {
		done, w := g.admit(b, now)
		if w != 0 {
			t.Fatalf("call %d in flight refused", len(held))
		}
		held = append(held, done)
	}
	if _, w := g.admit(b, now); w != interval {
		t.Fatalf("a call past %d in flight waits %s, want %s", publicFailBurst, w, interval)
	}
	held[0](false, now)
	held[0](true, now) // a second end counts nothing
	done, w := g.admit(b, now)
	if w != 0 {
		t.Fatalf("a call after one in flight succeeded waits %s", w)
	}
	held[0] = done
	for _, done := range held {
		done(true, now)
	}
	if w := g.wait(b, now); w != interval {
		t.Fatalf("after %d failures the source waits %s, want %s", publicFailBurst, w, interval)
	}

	for i := range maxFailSources + 100 {
		fail(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), now)
		if i == maxFailSources-3 && g.wait(a, now) == 0 {
			t.Fatal("the throttled source was forgotten before the table was full")
		}
	}
	if n := g.len(); n != maxFailSources {
		t.Fatalf("the table holds %d sources, want %d", n, maxFailSources)
	}
	if g.wait(a, now) != 0 {
		t.Fatal("the least recently failed source was kept past the bound")
	}
	if len(g.held) != 0 {
		t.Fatalf("%d sources still hold calls in flight", len(g.held))
	}
}

// heldCredentialReads holds every read of a join token or a pinned key,
// once hold is set, until release is closed, counting them.
type heldCredentialReads struct {
	store.Store
	hold    *atomic.Bool
	n       *atomic.Int64
	release chan struct{}
}

func (h heldCredentialReads) Get(ctx context.Context, key string) (store.KV, error) {
	if h.hold.Load() && (strings.HasPrefix(key, prefixToken) || strings.HasPrefix(key, prefixNodeKey)) {
		h.n.Add(1)
		select {
		case <-h.release:
		case <-ctx.Done():
			return store.KV{}, ctx.Err()
		}
	}
	return h.Store.Get(ctx, key)
}

// TestPublicFailuresCountedWhenAdmitted: garbage joins sent from one
// address all at once were each admitted before any of them had failed,
// so the burst bounded nothing: forty at once were forty token reads. A
// call now takes its place in its source's burst when it is admitted, and
// gives it back only if it does not fail: of forty garbage joins in
// flight together, publicFailBurst reach the store and the rest are
// answered 429 at once.
func TestPublicFailuresCountedWhenAdmitted(t *testing.T) {
	var hold atomic.Bool
	var reads atomic.Int64
	release := make(chan struct{})
	f := newAuthFixtureWith(t, authOptions{store: func(st store.Store) store.Store {
		return heldCredentialReads{st, &hold, &reads, release}
	}})
	_, csr, err := ca.NewKeyCSR()
	if err != nil {
		t.Fatal(err)
	}
	var tok api.TokenResponse
	if code, e := f.call(t, f.accs["op"].session, http.MethodPost, api.PathTokens, api.TokenRequest{Node: "other"}, &tok); code != http.StatusOK {
		t.Fatalf("token: %d %+v", code, e)
	}
	_, pin, err := api.SplitToken(tok.Token)
	if err != nil {
		t.Fatal(err)
	}
	var secret [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		t.Fatal(err)
	}
	garbage, err := json.Marshal(api.JoinRequest{Token: api.TokenPrefix + base64.RawURLEncoding.EncodeToString(secret[:]) + "." + pin,
		Node: "victim", MeshAddr: "127.0.0.1:7401", CSR: csr})
	if err != nil {
		t.Fatal(err)
	}

	tr := f.transport(nil)
	defer tr.CloseIdleConnections()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}, Timeout: testkit.WaitLimit}
	tr.DialContext = d.DialContext
	ctx, cancel := context.WithTimeout(f.ctx, testkit.WaitLimit)
	defer cancel()
	const flood = 40
	var answered atomic.Int64
	codes := make(chan string, flood)
	hold.Store(true)
	for range flood {
		go func() {
			defer answered.Add(1)
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+f.srv.Addr()+api.PathJoin, bytes.NewReader(garbage))
			if err != nil {
				codes <- err.Error()
				return
			}
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				codes <- err.Error()
				return
			}
			resp.Body.Close()
			codes <- strconv.Itoa(resp.StatusCode)
		}()
	}
	testkit.WaitFor(t, "every join answered or at its token's read", func() bool {
		return answered.Load()+reads.Load() == flood
	})
	close(release)
	got := map[string]int{}
	for range flood {
		got[<-codes]++
	}
	t.Logf("%d garbage joins at once from one address: answers %v, %d token reads", flood, got, reads.Load())
	if got["401"] != publicFailBurst || got["429"] != flood-publicFailBurst || reads.Load() != publicFailBurst {
		t.Fatalf("answers %v and %d token reads; want %d of 401 (and reads) and %d of 429", got, reads.Load(), publicFailBurst, flood-publicFailBurst)
	}
}
