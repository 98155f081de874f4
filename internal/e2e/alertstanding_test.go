package e2e

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"moat/internal/api"
	"moat/internal/detect"
	"moat/internal/detect/amtest"
)

// TestStandingAlertsAcrossRestart: the policy widened is a condition that
// stands until an apply narrows it, however long that is, and however
// often the server restarts meanwhile. The restarted server's engine saw
// no alert fire, but the policy is in the store: the alert is posted to a
// real Alertmanager again at the first sweep, and the apply that narrows
// the policy, through the restarted server, resolves it there at once.
// Before, the restarted server posted nothing and resolved nothing: the
// alert lapsed at Alertmanager while the policy stood widened.
func TestStandingAlertsAcrossRestart(t *testing.T) {
	c := newCluster(t)
	am := amtest.Start(t, freePort(t))
	settings, err := detect.Load([]byte("sinks:\n  - {name: am, type: alertmanager, url: \""+am.URL()+"\"}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// detecting returns a new engine posting to Alertmanager, reading the
	// standing conditions from the running server, and what stops it.
	detecting := func() (*detect.Engine, func()) {
		d, err := detect.NewDispatcherFromSettings(settings, nil, detect.DispatcherConfig{Logger: c.logger})
		if err != nil {
			t.Fatal(err)
		}
		eng, err := detect.New(detect.Config{Notifier: d, Now: c.clk.Now, Logger: c.logger, Resend: settings.Resend,
			Standing: func() ([]detect.Standing, error) {
				c.mu.Lock()
				srv := c.srv
				c.mu.Unlock()
				return srv.StandingAlerts(t.Context())
			}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { _ = eng.Run(ctx) })
		wg.Go(func() { _ = d.Run(ctx) })
		stop := sync.OnceFunc(func() { cancel(); wg.Wait() })
		t.Cleanup(stop)
		return eng, stop
	}
	eng, stop := detecting()
	c.restartWith(eng)
	policy := func(from string) {
		t.Helper()
		doc := "default: deny\nrules:\n  - name: to-api\n    from: [" + from + "]\n    to: api\n    ports: [8080]\n"
		if err := c.call(http.MethodPost, api.PathPolicy, api.PolicyRequest{YAML: doc}, nil); err != nil {
			t.Fatal(err)
		}
	}
	key := detect.DedupKey(detect.RulePolicyWidened, detect.PolicySubject)

	t.Log("an operator widens the policy: the alert reaches Alertmanager")
	policy(`"*"`)
	eventually(t, "the policy_widened alert active at Alertmanager", func() bool { _, ok := am.Active()[key]; return ok })
	first := am.Active()[key]

	t.Log("the server restarts with a new engine: it posts the alert again at its first sweep")
	stop()
	eng, _ = detecting()
	c.restartWith(eng)
	eng.Sweep()
	eventually(t, "the alert posted again by the restarted server", func() bool {
		a, ok := am.Active()[key]
		return ok && a.EndsAt.After(first.EndsAt)
	})

	t.Log("the policy narrowed through the restarted server: resolved at Alertmanager at once")
	policy("frontend")
	eventually(t, "the alert resolved at Alertmanager", func() bool { _, ok := am.Active()[key]; return !ok })
}
