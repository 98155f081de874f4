package gateway

import (
	"fmt"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

// TestRateLimitTableBounded: a client spraying source addresses (IPv6
// /64s named by a trusted proxy, as an attacker with a /48 can) fills the
// rate limiter's table. The table stays within limits.max_rate_clients,
// new clients are still served (a full table refused every newcomer),
// and an abuser that keeps sending stays limited while the spray churns
// the table: its bucket is the last to be forgotten.
func TestRateLimitTableBounded(t *testing.T) {
	const tableSize = 256
	f := newFixture(t, baseYAML+noWAF+fmt.Sprintf("trusted_proxies: [127.0.0.1]\nrate_limit: {rps: 1, burst: 2}\nlimits: {max_rate_clients: %d}\n", tableSize))
	from := func(xff string) int {
		t.Helper()
		r := f.req("GET", "/", nil)
		r.Header.Set("X-Forwarded-For", xff)
		code, _, _ := f.do(r)
		return code
	}
	t.Log("the abuser spends its burst; the clock stands still, so it earns nothing back")
	for i := range 2 {
		if code := from("2001:db8:a::1"); code != 200 {
			t.Fatalf("abuser's request %d: %d", i, code)
		}
	}
	if code := from("2001:db8:a::1"); code != http.StatusTooManyRequests {
		t.Fatalf("abuser past its burst: %d", code)
	}
	t.Log("a spray of three tables' worth of /64s, the abuser sending between them")
	for i := range 3 * tableSize {
		if code := from(fmt.Sprintf("2001:db8:1:%x::1", i)); code != 200 {
			t.Fatalf("sprayed client %d: %d, want 200 (a full table must not refuse newcomers)", i, code)
		}
		if i%16 == 0 {
			// Another address of its /64 is the same client.
			if code := from(fmt.Sprintf("2001:db8:a::%x", i+2)); code != http.StatusTooManyRequests {
				t.Fatalf("abuser after %d sprayed clients: %d, want 429", i+1, code)
			}
		}
	}
	if n := f.gw.state.Load().rates.len(); n > tableSize {
		t.Errorf("the table holds %d buckets, more than max_rate_clients %d", n, tableSize)
	}
	if code := from("198.51.100.7"); code != 200 {
		t.Errorf("a new client after the spray: %d", code)
	}
	if code := from("2001:db8:a::1"); code != http.StatusTooManyRequests {
		t.Errorf("abuser after the spray: %d", code)
	}

	t.Log("an abuser that falls silent for a whole table's churn is forgotten: it gets at most a fresh burst")
	for i := range 4 * tableSize { // enough that its shard churns through, whatever the seed
		if code := from(fmt.Sprintf("2001:db8:2:%x::1", i)); code != 200 {
			t.Fatalf("sprayed client %d: %d", i, code)
		}
	}
	for i, want := range []int{200, 200, 429} {
		if code := from("2001:db8:a::1"); code != want {
			t.Errorf("silent abuser's request %d: %d, want %d", i, code, want)
		}
	}
}

// BenchmarkRateLimitSpray is the rate limiter's cost per request while
// a spray of new IPv6 /64s churns a full table, beside a client that
// keeps sending: "spray" (each request a new key) and "steady".
func BenchmarkRateLimitSpray(b *testing.B) {
	s := newRateStore(defaultRateClients)
	now := time.Unix(0, 0)
	key := func(i int) netip.Addr {
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
	}
	for i := range defaultRateClients {
		s.allow("frontend", key(i), 1, 2, now)
	}
	b.Run("spray", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			s.allow("frontend", key(defaultRateClients+i), 1, 2, now)
		}
	})
	b.Run("steady", func(b *testing.B) {
		for b.Loop() {
			s.allow("frontend", key(7), 1, 2, now)
		}
	})
}

// TestRateLimitSurvivesReload: a reload keeps every client's bucket. An
// abuser past its burst is still refused after the operator reloads an
// unchanged limit (before, each reload handed every client a fresh
// burst); a raised burst refills at the route's rate rather than at once;
// a lowered one clamps what a client holds; a resized table keeps the
// clients it has room for.
func TestRateLimitSurvivesReload(t *testing.T) {
	conf := func(burst, clients int) string {
		return baseYAML + noWAF + fmt.Sprintf("rate_limit: {rps: 1, burst: %d}\nlimits: {max_rate_clients: %d}\n", burst, clients)
	}
	f := newFixture(t, conf(2, 1024))
	get := func() int {
		t.Helper()
		code, _, _ := f.do(f.req("GET", "/", nil))
		return code
	}
	reload := func(yaml string) {
		t.Helper()
		f.write(yaml)
		if err := f.gw.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		if code := get(); code != 200 {
			t.Fatalf("request %d: %d", i, code)
		}
	}
	if code := get(); code != http.StatusTooManyRequests {
		t.Fatalf("past the burst: %d", code)
	}
	t.Log("a reload with the limits unchanged: the clock stands still, so still refused")
	reload(conf(2, 1024) + "# touched\n")
	if code := get(); code != http.StatusTooManyRequests {
		t.Errorf("after a reload of the same limits: %d, want 429 (the bucket was reset)", code)
	}
	t.Log("a raised burst is earned at the route's rate, not handed out")
	reload(conf(10, 1024))
	if code := get(); code != http.StatusTooManyRequests {
		t.Errorf("after the burst was raised: %d, want 429", code)
	}
	f.advance(time.Second)
	if code := get(); code != 200 {
		t.Errorf("a second later: %d, want 200", code)
	}
	if code := get(); code != http.StatusTooManyRequests {
		t.Errorf("a second later, again: %d, want 429", code)
	}
	t.Log("a lowered burst clamps a full bucket")
	f.advance(time.Minute) // the bucket fills to 10
	reload(conf(3, 1024))
	for i := range 3 {
		if code := get(); code != 200 {
			t.Fatalf("under the lowered burst, request %d: %d", i, code)
		}
	}
	if code := get(); code != http.StatusTooManyRequests {
		t.Errorf("past the lowered burst of 3: %d, want 429", code)
	}
	t.Log("a resized table keeps the client")
	reload(conf(3, 64))
	if code := get(); code != http.StatusTooManyRequests {
		t.Errorf("after max_rate_clients changed: %d, want 429", code)
	}
	if n := f.gw.state.Load().rates.len(); n != 1 {
		t.Errorf("the resized table holds %d buckets, want 1", n)
	}
}
