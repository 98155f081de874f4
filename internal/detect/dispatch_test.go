package detect

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"moat/internal/metrics"
	"moat/internal/testkit"
)

// receiver is a loopback HTTP server answering with the scripted statuses in
// turn (the last one repeating) and keeping every body.
type receiver struct {
	srv      *httptest.Server
	mu       sync.Mutex // guards statuses, bodies, paths
	statuses []int
	bodies   [][]byte
	paths    []string
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	t.Helper()
	rv := &receiver{statuses: statuses}
	rv.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rv.mu.Lock()
		rv.bodies = append(rv.bodies, b)
		rv.paths = append(rv.paths, r.URL.RequestURI())
		st := rv.statuses[0]
		if len(rv.statuses) > 1 {
			rv.statuses = rv.statuses[1:]
		}
		rv.mu.Unlock()
		if r.Header.Get("Content-Type") != "application/json" {
			st = http.StatusUnsupportedMediaType
		}
		w.WriteHeader(st)
		// Echo the request path, as careless receivers do in errors.
		_, _ = io.WriteString(w, "error at "+r.URL.RequestURI())
	}))
	t.Cleanup(rv.srv.Close)
	return rv
}

func (rv *receiver) count() int {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return len(rv.bodies)
}

func (rv *receiver) body(i int) []byte {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return rv.bodies[i]
}

const secretPath = "/services/T0000/B0000/XXXXsecretTOKENxxxx"

// sleeps records the waits asked for instead of waiting.
type sleeps struct {
	mu sync.Mutex // guards d
	d  []time.Duration
}

func (s *sleeps) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return ctx.Err()
}

func testDispatcher(t *testing.T, sc SinkConfig, attempts int, sl *sleeps, m *Metrics) (*Dispatcher, *HTTPSink) {
	t.Helper()
	sk, err := NewSink(sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDispatcher(DispatcherConfig{
		Routes:   []Route{{Sink: sk, MinSeverity: sc.MinSeverity}},
		Delivery: Delivery{Attempts: attempts, Backoff: time.Second, MaxBackoff: 4 * time.Second, Timeout: testkit.WaitLimit, Queue: 4},
		Sleep:    sl.Sleep,
		Jitter:   func(d time.Duration) time.Duration { return d }, // the ceiling, so tests see the schedule
		Metrics:  m,
	})
	if err != nil {
		t.Fatal(err)
	}
	return d, sk
}

func TestDeliverRetriesAfter500(t *testing.T) {
	rv := newReceiver(t, 500, 200)
	sl := &sleeps{}
	reg := metrics.NewRegistry()
	m, err := NewMetrics(reg, []string{"ops"})
	if err != nil {
		t.Fatal(err)
	}
	d, sk := testDispatcher(t, SinkConfig{Name: "ops", Type: SinkSlack, URL: NewSecret(rv.srv.URL + secretPath)}, 5, sl, m)
	if err := d.Deliver(context.Background(), sk, fixtureAlert(StatusFiring)); err != nil {
		t.Fatalf("deliver: %v", err)
	}
	if rv.count() != 2 || len(sl.d) != 1 || sl.d[0] != time.Second {
		t.Fatalf("requests %d, waits %v; want 2 requests and one 1s wait", rv.count(), sl.d)
	}
	if string(rv.body(0)) != string(rv.body(1)) {
		t.Error("the retry sent a different body")
	}
	if got := m.deliveries.WithLabelValues("ops", ResultDelivered).Value(); got != 1 {
		t.Errorf("delivered = %v", got)
	}
	if got := m.retries.WithLabelValues("ops").Value(); got != 1 {
		t.Errorf("retries = %v", got)
	}
}

func TestDeliverGivesUpAfterNTries(t *testing.T) {
	rv := newReceiver(t, 503)
	sl := &sleeps{}
	m, _ := NewMetrics(metrics.NewRegistry(), []string{"pd"})
	sc := SinkConfig{Name: "pd", Type: SinkPagerDuty, URL: NewSecret(rv.srv.URL + "/v2/enqueue"), RoutingKey: NewSecret(testRoutingKey)}
	d, sk := testDispatcher(t, sc, 4, sl, m)
	err := d.Deliver(context.Background(), sk, fixtureAlert(StatusFiring))
	de, ok := err.(*DeliveryError)
	if !ok || de.Status != 503 || de.Permanent {
		t.Fatalf("err = %#v, want a retryable 503 DeliveryError", err)
	}
	if rv.count() != 4 {
		t.Fatalf("%d requests, want 4", rv.count())
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}
	if len(sl.d) != len(want) {
		t.Fatalf("waits %v, want %v", sl.d, want)
	}
	for i := range want {
		if sl.d[i] != want[i] {
			t.Fatalf("waits %v, want %v", sl.d, want)
		}
	}
	if strings.Contains(err.Error(), testRoutingKey) {
		t.Errorf("error shows the routing key: %v", err)
	}
	if got := m.deliveries.WithLabelValues("pd", ResultFailed).Value(); got != 1 {
		t.Errorf("failed = %v", got)
	}
}

func TestDeliverDoesNotRetryPermanentFailures(t *testing.T) {
	for _, st := range []int{400, 403, 404, 301} {
		rv := newReceiver(t, st)
		sl := &sleeps{}
		d, sk := testDispatcher(t, SinkConfig{Name: "am", Type: SinkAlertmanager, URL: NewSecret(rv.srv.URL + "/hook")}, 5, sl, nil)
		err := d.Deliver(context.Background(), sk, fixtureAlert(StatusFiring))
		if err == nil || Retryable(err) || rv.count() != 1 || len(sl.d) != 0 {
			t.Errorf("status %d: err %v, %d requests, waits %v; want one try", st, err, rv.count(), sl.d)
		}
	}
	rv := newReceiver(t, 429, 202)
	rv.srv.Config.Handler = retryAfterHandler(rv.srv.Config.Handler, "3")
	sl := &sleeps{}
	d, sk := testDispatcher(t, SinkConfig{Name: "am", Type: SinkAlertmanager, URL: NewSecret(rv.srv.URL + "/hook")}, 5, sl, nil)
	if err := d.Deliver(context.Background(), sk, fixtureAlert(StatusFiring)); err != nil || rv.count() != 2 {
		t.Errorf("429 then 202: err %v after %d requests, want success after 2", err, rv.count())
	}
	if len(sl.d) != 1 || sl.d[0] != 3*time.Second {
		t.Errorf("waits %v, want the 3s the receiver asked for", sl.d)
	}
}

func TestErrorsNeverShowSecrets(t *testing.T) {
	rv := newReceiver(t, 500)
	headerSecret := "Bearer hdr-S3CRET-value"
	sc := SinkConfig{Name: "siem", Type: SinkWebhook, URL: NewSecret(rv.srv.URL + secretPath + "?token=qSECRETq"),
		Headers: map[string]Secret{"Authorization": NewSecret(headerSecret)}}
	d, sk := testDispatcher(t, sc, 1, &sleeps{}, nil)
	err := d.Deliver(context.Background(), sk, fixtureAlert(StatusFiring))
	if err == nil {
		t.Fatal("500 accepted")
	}
	// A closed port: the transport error path.
	ln, lerr := net.Listen("tcp", "127.0.0.1:0")
	if lerr != nil {
		t.Fatal(lerr)
	}
	dead := "http://" + ln.Addr().String() + secretPath
	ln.Close()
	sc.URL = NewSecret(dead)
	d2, sk2 := testDispatcher(t, sc, 1, &sleeps{}, nil)
	err2 := d2.Deliver(context.Background(), sk2, fixtureAlert(StatusFiring))
	if err2 == nil {
		t.Fatal("delivery to a closed port succeeded")
	}
	for _, e := range []error{err, err2} {
		msg := e.Error()
		for _, s := range []string{"XXXXsecretTOKENxxxx", "qSECRETq", "S3CRET", secretPath} {
			if strings.Contains(msg, s) {
				t.Errorf("error %q shows secret %q", msg, s)
			}
		}
		if !strings.HasPrefix(msg, `detect: sink "siem": `) {
			t.Errorf("error %q lacks the sink prefix", msg)
		}
	}
	t.Logf("masked errors: %v | %v", err, err2)
	if s := sc.URL.String() + " " + func() string { b, _ := json.Marshal(sc.Headers); return string(b) }(); strings.Contains(s, "S3CRET") || strings.Contains(s, "secret") {
		t.Errorf("secret printed: %s", s)
	}
}

func TestDispatcherRunDeliversTriggerAndResolve(t *testing.T) {
	rv := newReceiver(t, 202)
	sc := SinkConfig{Name: "pd", Type: SinkPagerDuty, URL: NewSecret(rv.srv.URL + "/v2/enqueue"), RoutingKey: NewSecret(testRoutingKey), MinSeverity: SeverityMedium}
	d, _ := testDispatcher(t, sc, 3, &sleeps{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	low := fixtureAlert(StatusFiring)
	low.Severity, low.Key = SeverityLow, "moat/new_edge/x"
	d.Notify(low) // below the sink's min_severity
	d.Notify(fixtureAlert(StatusFiring))
	d.Notify(fixtureAlert(StatusResolved))
	waitFor(t, "two deliveries", func() bool { return rv.count() >= 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if rv.count() != 2 {
		t.Fatalf("%d deliveries, want 2", rv.count())
	}
	var trig, res pdEvent
	if err := json.Unmarshal(rv.body(0), &trig); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(rv.body(1), &res); err != nil {
		t.Fatal(err)
	}
	if trig.EventAction != "trigger" || res.EventAction != "resolve" || trig.DedupKey != res.DedupKey || res.DedupKey != "moat/scan/198.51.100.66" {
		t.Fatalf("trigger %+v resolve %+v", trig, res)
	}
}

func TestNotifyNeverBlocks(t *testing.T) {
	block := make(chan struct{})
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		<-block
	}))
	defer srv.Close()
	defer close(block)
	m, _ := NewMetrics(metrics.NewRegistry(), []string{"slow"})
	d, _ := testDispatcher(t, SinkConfig{Name: "slow", Type: SinkWebhook, URL: NewSecret(srv.URL)}, 1, &sleeps{}, m)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = d.Run(ctx) }()
	d.Notify(fixtureAlert(StatusFiring))
	waitFor(t, "the worker to be stuck in the receiver", func() bool { return hits.Load() == 1 })
	for range 10 { // queue of 4, the worker stuck: 6 must drop, none may wait
		d.Notify(fixtureAlert(StatusFiring))
	}
	if got := m.deliveries.WithLabelValues("slow", ResultDropped).Value(); got != 6 {
		t.Fatalf("dropped = %v, want 6", got)
	}
	if got := m.queueDepth.WithLabelValues("slow").Value(); got != 4 {
		t.Fatalf("queue depth = %v, want 4", got)
	}
}

func TestTestSendsToEverySink(t *testing.T) {
	ok := newReceiver(t, 200)
	bad := newReceiver(t, 404)
	var routes []Route
	for _, sc := range []SinkConfig{
		{Name: "ops", Type: SinkSlack, URL: NewSecret(ok.srv.URL + "/slack")},
		{Name: "gone", Type: SinkWebhook, URL: NewSecret(bad.srv.URL + "/x")},
	} {
		sk, err := NewSink(sc, nil)
		if err != nil {
			t.Fatal(err)
		}
		routes = append(routes, Route{Sink: sk})
	}
	d, err := NewDispatcher(DispatcherConfig{Routes: routes, Sleep: (&sleeps{}).Sleep})
	if err != nil {
		t.Fatal(err)
	}
	res := d.Test(context.Background(), true)
	if len(res) != 3 || res[0].Err != nil || res[1].Err != nil || res[1].Step != StatusResolved || res[2].Err == nil || res[2].Sink != "gone" {
		t.Fatalf("results = %+v", res)
	}
}

func retryAfterHandler(h http.Handler, v string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", v)
		h.ServeHTTP(w, r)
	})
}
