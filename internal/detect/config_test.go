package detect

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const goodFile = `queue: 500
sweep: 5s
resend: 30s
node_alerts: 20
rules:
  scan:
    window: 2m
    threshold: 25
    severity: critical
    dedup: 30m
  new_edge:
    learning: 1h
  deny_burst:
    disabled: true
sinks:
  - name: ops
    type: slack
    url_env: SLACK_URL
  - name: pager
    type: pagerduty
    routing_key: R0UT1NGKEY0123456789abcdefABCDEF
    min_severity: high
  - name: am
    type: alertmanager
    url: http://127.0.0.1:9095/hook
  - name: siem
    type: webhook
    url: https://siem.example/in
    headers:
      Authorization: Bearer t0ken
delivery:
  attempts: 3
  backoff: 2s
  max_backoff: 30s
`

func env(k string) string {
	if k == "SLACK_URL" {
		return "https://hooks.slack.com/services/T/B/secret"
	}
	return ""
}

func TestLoadGood(t *testing.T) {
	s, err := Load([]byte(goodFile), env)
	if err != nil {
		t.Fatal(err)
	}
	scan := s.Rules[RuleScan]
	if scan.Window != 2*time.Minute || scan.Threshold != 25 || scan.Severity != SeverityCritical || scan.Dedup != 30*time.Minute || !scan.Enabled {
		t.Errorf("scan = %+v", scan)
	}
	if s.Rules[RuleDenyBurst].Enabled || s.Rules[RuleNewEdge].Learning != time.Hour || s.Rules[RuleWAFSpike] != DefaultRules()[RuleWAFSpike] {
		t.Errorf("rules = %+v", s.Rules)
	}
	if s.Queue != 500 || s.Sweep != 5*time.Second || s.NodeAlerts != 20 || s.Resend != 30*time.Second {
		t.Errorf("queue %d sweep %s node_alerts %d resend %s", s.Queue, s.Sweep, s.NodeAlerts, s.Resend)
	}
	if s.Sinks[2].Horizon != 4*35*time.Second || s.Sinks[0].Horizon != 0 {
		t.Errorf("horizon: alertmanager sink %s, slack sink %s; want four intervals of the file's resend and sweep (35s) for Alertmanager alone", s.Sinks[2].Horizon, s.Sinks[0].Horizon)
	}
	if len(s.Sinks) != 4 || s.Sinks[0].URL.Reveal() != env("SLACK_URL") || s.Sinks[1].URL.Reveal() != PagerDutyURL ||
		s.Sinks[1].MinSeverity != SeverityHigh || s.Sinks[3].Headers["Authorization"].Reveal() != "Bearer t0ken" {
		t.Errorf("sinks = %+v", s.Sinks)
	}
	if d := s.Delivery; d.Attempts != 3 || d.Backoff != 2*time.Second || d.MaxBackoff != 30*time.Second || d.Queue != 1000 {
		t.Errorf("delivery = %+v", d)
	}
	if fmt.Sprintf("%v %+v", s.Sinks[0].URL, s.Sinks[3]) != "[redacted] "+fmt.Sprintf("%+v", s.Sinks[3]) || strings.Contains(fmt.Sprintf("%+v %#v", s.Sinks, s.Sinks), "secret") {
		t.Errorf("a secret prints: %+v", s.Sinks)
	}
	if _, err := New(Config{Rules: s.Rules}); err != nil {
		t.Errorf("engine refuses loaded rules: %v", err)
	}
	if _, err := NewDispatcherFromSettings(s, nil, DispatcherConfig{}); err != nil {
		t.Errorf("dispatcher refuses loaded sinks: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, old, new, want string
	}{
		{"unknown rule", "  scan:\n", "  scna:\n", `rules.scna: unknown key (did you mean "scan"?)`},
		{"node alerts", "node_alerts: 20", "node_alerts: -2", "node_alerts: want a positive count, or -1 for no bound"},
		{"resend too often", "resend: 30s", "resend: 100ms", "resend: want a duration from 1s to 1h, got 100ms"},
		{"resend too seldom", "resend: 30s", "resend: 2h", "resend: want a duration from 1s to 1h, got 2h0m0s"},
		{"bad duration", "window: 2m", "window: 2 minutes", `rules.scan.window: bad duration "2 minutes"`},
		{"negative threshold", "threshold: 25", "threshold: -1", "rules.scan.threshold: must not be negative"},
		{"bad severity", "severity: critical", "severity: urgent", `rules.scan.severity: unknown severity "urgent"`},
		{"learning elsewhere", "    dedup: 30m\n", "    dedup: 30m\n    learning: 1m\n", "rules.scan.learning: only new_edge has a learning period"},
		{"no sinks", goodFile[strings.Index(goodFile, "sinks:"):strings.Index(goodFile, "delivery:")], "", "sinks: at least one sink is needed"},
		{"bad sink type", "type: slack", "type: teams", `sinks[0].type: unknown sink type "teams"`},
		{"bad sink name", "name: ops", "name: Ops Room", `sinks[0].name: want a name of lowercase letters`},
		{"duplicate sink", "name: am", "name: ops", `sinks[2].name: sink "ops" named twice`},
		{"unset env", "url_env: SLACK_URL", "url_env: NOPE", `sinks[0].url_env: environment variable "NOPE" is empty or unset`},
		{"url and env", "url_env: SLACK_URL", "url_env: SLACK_URL\n    url: https://x.example/", "sinks[0].url: give url or url_env, not both"},
		{"no url", "    url: http://127.0.0.1:9095/hook\n", "", "sinks[2].url: missing (give url or url_env)"},
		{"bad url", "url: http://127.0.0.1:9095/hook", "url: ftp://127.0.0.1/hook", "sinks[2].url: not an http(s) URL"},
		{"url with user", "url: http://127.0.0.1:9095/hook", "url: http://u:pw@127.0.0.1/hook", "sinks[2].url: not an http(s) URL"},
		{"no routing key", "    routing_key: R0UT1NGKEY0123456789abcdefABCDEF\n", "", "sinks[1].routing_key: missing"},
		{"short routing key", "routing_key: R0UT1NGKEY0123456789abcdefABCDEF", "routing_key: abc", "sinks[1].routing_key: want a 32-character integration key, got 3 characters"},
		{"routing key on slack", "url_env: SLACK_URL", "url_env: SLACK_URL\n    routing_key: R0UT1NGKEY0123456789abcdefABCDEF", "sinks[0].routing_key: only a pagerduty sink takes a routing key"},
		{"headers on slack", "url_env: SLACK_URL", "url_env: SLACK_URL\n    headers: {X: y}", "sinks[0].headers: only a webhook sink takes headers"},
		{"bad header", "Authorization: Bearer t0ken", `"Bad Header": v`, "sinks[3].headers.Bad Header: not a valid header name"},
		{"bad min severity", "min_severity: high", "min_severity: loud", `sinks[1].min_severity: unknown severity "loud"`},
		{"attempts", "attempts: 3", "attempts: 50", "delivery.attempts: at most 20"},
		{"backoffs", "max_backoff: 30s", "max_backoff: 1s", "delivery.max_backoff: is less than backoff (2s)"},
		{"threshold on one-shot rule", "  new_edge:\n    learning: 1h", "  new_edge:\n    threshold: 3", "rules.new_edge.threshold: new_edge fires on one event; only 1 is allowed"},
		{"window on policy", "  new_edge:\n", "  policy_widened:\n    window: 1m\n  new_edge:\n", "rules.policy_widened.window: policy_widened resolves on the next narrowing apply and takes no window"},
		{"window on firewall bypass", "  new_edge:\n", "  firewall_bypass:\n    window: 1m\n  new_edge:\n", "rules.firewall_bypass.window: firewall_bypass resolves when the node reports no bypass and takes no window"},
		{"threshold on firewall bypass", "  new_edge:\n", "  firewall_bypass:\n    threshold: 2\n  new_edge:\n", "rules.firewall_bypass.threshold: firewall_bypass fires on one event; only 1 is allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(goodFile, tc.old) {
				t.Fatalf("fixture lacks %q", tc.old)
			}
			_, err := Load([]byte(strings.Replace(goodFile, tc.old, tc.new, 1)), env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			for _, s := range []string{"secret", "t0ken", "R0UT1NGKEY", "pw@"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q shows a secret", err)
				}
			}
		})
	}
}

func TestLoadFileNamesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "alerts.yaml")
	if err := os.WriteFile(p, []byte(strings.Replace(goodFile, "type: slack", "type: teams", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFile(p, env)
	if err == nil || !strings.HasPrefix(err.Error(), p+": sinks[0].type: ") {
		t.Fatalf("err = %v", err)
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte(goodFile))
	f.Add([]byte("sinks: [{name: a, type: webhook, url: 'http://x'}]"))
	f.Add([]byte("rules: {scan: {threshold: 0}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Load(data, env)
		if err != nil {
			if s != nil {
				t.Fatal("settings returned with an error")
			}
			return
		}
		if len(s.Sinks) == 0 {
			t.Fatal("valid file without sinks")
		}
		if _, err := New(Config{Rules: s.Rules}); err != nil {
			t.Fatalf("validated rules refused by the engine: %v", err)
		}
		if _, err := NewDispatcherFromSettings(s, nil, DispatcherConfig{}); err != nil {
			t.Fatalf("validated sinks refused: %v", err)
		}
	})
}
