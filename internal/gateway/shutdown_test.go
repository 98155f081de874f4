//go:build unix

package gateway

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"moat/internal/testkit"
)

// slowYAML routes slow.example to a service that answers no request.
const slowYAML = plainYAML + noWAF + `services: [slow]
routes:
  - host: slow.example
    service: slow
    port: 80
`

// TestShutdownCutsRequestsPastTheGrace: a request the service never
// answers is in flight when the gateway stops. Run returns by the end of
// the grace and the client's connection is closed, instead of the
// request running on after the gateway has said it stopped.
func TestShutdownCutsRequestsPastTheGrace(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	arrived := make(chan struct{}, 1)
	sock := serveUnix(t, &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})})
	f := newFixtureTuned(t, slowYAML, map[string]string{"slow": sock}, func(c *Config) {
		c.ShutdownGrace = 200 * time.Millisecond
	})
	answered := make(chan error, 1)
	go func() {
		r := f.req("GET", "/", nil)
		r.Host = "slow.example"
		resp, err := f.client.Do(r)
		if err == nil {
			resp.Body.Close()
		}
		answered <- err
	}()
	select {
	case <-arrived:
	case <-time.After(testkit.WaitLimit):
		t.Fatal("the request did not reach the service")
	}
	stopped := make(chan error, 1)
	go func() { stopped <- f.stop() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(testkit.WaitLimit):
		t.Fatalf("Run had not returned %s after its context ended, with a request in flight", testkit.WaitLimit)
	}
	select {
	case err := <-answered:
		if err == nil {
			t.Fatal("the request in flight was answered; want its connection closed")
		}
	case <-time.After(testkit.WaitLimit):
		t.Fatalf("the client's request was still waiting %s after the gateway stopped", testkit.WaitLimit)
	}
	waitFor(t, "the shutdown's warning in the log", func() bool {
		return strings.Contains(f.log.String(), "requests still in flight at the end of the shutdown grace")
	})
}
