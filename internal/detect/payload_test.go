package detect

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"moat/internal/flow/ocsfcheck"
)

var update = flag.Bool("update", false, "rewrite golden files")

const testRoutingKey = "R0UT1NGKEY0123456789abcdefABCDEF"

func fixtureAlert(st Status) Alert {
	a := Alert{
		Key:      "moat/scan/198.51.100.66",
		Rule:     RuleScan,
		Severity: SeverityHigh,
		Status:   StatusFiring,
		Subject:  "198.51.100.66",
		Summary:  "198.51.100.66 probed many denied destinations",
		Details:  map[string]string{"count": "30", "threshold": "20", "window": "1m0s", "targets": "10.0.1.5:1, 10.0.1.5:2"},
		StartsAt: t0,
	}
	if st == StatusResolved {
		a.Status, a.EndsAt = StatusResolved, t0.Add(5*time.Minute)
	}
	return a
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, got, "", "  "); err != nil {
		t.Fatalf("payload is not JSON: %v\n%s", err, got)
	}
	buf.WriteByte('\n')
	path := filepath.Join("testdata", "payloads", name+".json")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("%s differs from golden file:\n%s\nwant:\n%s", name, buf.Bytes(), want)
	}
}

func keysOf(m map[string]json.RawMessage) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// onlyKeys fails when m holds a key outside allowed.
func onlyKeys(t *testing.T, what string, m map[string]json.RawMessage, allowed ...string) {
	t.Helper()
	for _, k := range keysOf(m) {
		if !slices.Contains(allowed, k) {
			t.Errorf("%s: key %q is not a documented field", what, k)
		}
	}
}

// amPostable is Alertmanager's PostableAlert (api/v2 openapi.yaml): labels
// required, the rest optional.
type amPostable struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
}

func TestAlertmanagerPayload(t *testing.T) {
	now := t0.Add(10 * time.Minute)
	for _, st := range []Status{StatusFiring, StatusResolved} {
		t.Run(string(st), func(t *testing.T) {
			a := fixtureAlert(st)
			b, err := alertmanagerPayload([]Alert{a}, now, AlertmanagerHorizon*DefaultResend)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "alertmanager-"+string(st), b)
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			var list []amPostable
			if err := dec.Decode(&list); err != nil {
				t.Fatalf("strict decode as PostableAlerts: %v", err)
			}
			if len(list) != 1 {
				t.Fatalf("%d alerts", len(list))
			}
			got := list[0]
			if got.Labels["alertname"] != "MoatScan" || got.Labels["severity"] != "high" || got.Labels["dedup_key"] != a.Key {
				t.Errorf("labels = %v", got.Labels)
			}
			for k := range got.Labels {
				if !promLabelName.MatchString(k) {
					t.Errorf("label name %q is not a Prometheus label name", k)
				}
			}
			if !got.StartsAt.Equal(a.StartsAt) || got.Annotations["summary"] != a.Summary {
				t.Errorf("alert = %+v", got)
			}
			if st == StatusFiring && !got.EndsAt.Equal(now.Add(4*time.Minute)) {
				t.Errorf("firing alert ends %s, want now + 4m: four resend intervals", got.EndsAt)
			}
			if st == StatusResolved && !got.EndsAt.Equal(a.EndsAt) {
				t.Errorf("resolved alert ends %s, want %s", got.EndsAt, a.EndsAt)
			}
		})
	}
	t.Run("empty labels left out", func(t *testing.T) {
		a := fixtureAlert(StatusFiring)
		a.Subject = ""
		b, _ := alertmanagerPayload([]Alert{a}, now, time.Minute)
		if strings.Contains(string(b), `"subject"`) {
			t.Errorf("empty subject label sent: %s", b)
		}
	})
}

var promLabelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

func TestPagerDutyPayload(t *testing.T) {
	// Fields of the Events API v2 (developer.pagerduty.com, "Send an
	// Alert Event" / "Resolve").
	top := []string{"routing_key", "event_action", "dedup_key", "payload", "images", "links", "client", "client_url"}
	payloadKeys := []string{"summary", "source", "severity", "timestamp", "component", "group", "class", "custom_details"}
	for _, st := range []Status{StatusFiring, StatusResolved} {
		t.Run(string(st), func(t *testing.T) {
			a := fixtureAlert(st)
			b, err := pagerDutyPayload(a, testRoutingKey)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "pagerduty-"+string(st), b)
			var m map[string]json.RawMessage
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			onlyKeys(t, "event", m, top...)
			var ev pdEvent
			if err := json.Unmarshal(b, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.RoutingKey != testRoutingKey || ev.DedupKey != a.Key || len(ev.DedupKey) > 255 {
				t.Errorf("routing key or dedup key wrong: %+v", ev)
			}
			if st == StatusResolved {
				if ev.EventAction != "resolve" || ev.Payload != nil {
					t.Errorf("resolve event = %s", b)
				}
				return
			}
			if ev.EventAction != "trigger" || ev.Payload == nil {
				t.Fatalf("trigger event = %s", b)
			}
			var pm map[string]json.RawMessage
			if err := json.Unmarshal(m["payload"], &pm); err != nil {
				t.Fatal(err)
			}
			onlyKeys(t, "payload", pm, payloadKeys...)
			p := ev.Payload
			if p.Summary == "" || len(p.Summary) > 1024 || p.Source == "" {
				t.Errorf("summary and source are required: %+v", p)
			}
			if !slices.Contains([]string{"critical", "error", "warning", "info"}, p.Severity) {
				t.Errorf("severity %q is not one PagerDuty knows", p.Severity)
			}
			if _, err := time.Parse(time.RFC3339, p.Timestamp); err != nil {
				t.Errorf("timestamp %q is not ISO 8601: %v", p.Timestamp, err)
			}
		})
	}
	long := fixtureAlert(StatusFiring)
	long.Summary = strings.Repeat("s", 5000)
	b, err := pagerDutyPayload(long, testRoutingKey)
	if err != nil {
		t.Fatal(err)
	}
	var ev pdEvent
	if err := json.Unmarshal(b, &ev); err != nil || len(ev.Payload.Summary) > 1024+len("…") {
		t.Errorf("long summary not truncated to 1024 bytes (err %v)", err)
	}
	long.Key = strings.Repeat("k", 256)
	if _, err := pagerDutyPayload(long, testRoutingKey); err == nil {
		t.Error("a dedup key over 255 bytes was accepted")
	}
}

func TestSlackPayload(t *testing.T) {
	// Fields of an incoming webhook message and of Block Kit's section and
	// context blocks (api.slack.com/messaging/webhooks, /reference/block-kit).
	top := []string{"text", "blocks", "attachments", "thread_ts", "mrkdwn"}
	for _, st := range []Status{StatusFiring, StatusResolved} {
		t.Run(string(st), func(t *testing.T) {
			a := fixtureAlert(st)
			b, err := slackPayload(a)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "slack-"+string(st), b)
			var m map[string]json.RawMessage
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			onlyKeys(t, "message", m, top...)
			checkSlack(t, b)
			if st == StatusResolved && !strings.HasPrefix(mustSlack(t, b).Text, "RESOLVED") {
				t.Errorf("resolved text = %q", mustSlack(t, b).Text)
			}
		})
	}
	t.Run("escaping and limits", func(t *testing.T) {
		a := fixtureAlert(StatusFiring)
		a.Summary = "<!channel> & <https://evil.example|click>"
		for i := range 20 {
			a.Details[strings.Repeat("k", i+1)] = strings.Repeat("v", 4000)
		}
		b, err := slackPayload(a)
		if err != nil {
			t.Fatal(err)
		}
		m := mustSlack(t, b)
		if strings.ContainsAny(m.Text, "<>") || !strings.Contains(m.Text, "&lt;!channel&gt; &amp;") {
			t.Errorf("text not escaped: %q", m.Text)
		}
		checkSlack(t, b)
	})
	t.Run("a value stays text", func(t *testing.T) {
		a := fixtureAlert(StatusFiring)
		a.Details = map[string]string{"last_path": "/x`\n*Rule*\nnone` @here \u202e"}
		b, err := slackPayload(a)
		if err != nil {
			t.Fatal(err)
		}
		m := mustSlack(t, b)
		f := m.Blocks[1].Fields[2]
		if want := "*last_path*\n`/xˋ\\n*Rule*\\nnoneˋ @here \\u202e`"; f.Text != want || !f.Verbatim {
			t.Errorf("field %+v, want text %q, verbatim", f, want)
		}
	})
}

func mustSlack(t *testing.T, b []byte) slackMessage {
	t.Helper()
	var m slackMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// checkSlack applies Slack's documented limits: text present, section text
// up to 3000 characters, at most 10 fields of up to 2000, known types.
func checkSlack(t *testing.T, b []byte) {
	t.Helper()
	m := mustSlack(t, b)
	if m.Text == "" {
		t.Error("text (the notification fallback) is empty")
	}
	for i, bl := range m.Blocks {
		switch bl.Type {
		case "section":
			if bl.Text == nil && len(bl.Fields) == 0 {
				t.Errorf("block %d: a section needs text or fields", i)
			}
			if bl.Text != nil && len([]rune(bl.Text.Text)) > 3000 {
				t.Errorf("block %d: text over 3000 characters", i)
			}
			if len(bl.Fields) > 10 {
				t.Errorf("block %d: %d fields, Slack allows 10", i, len(bl.Fields))
			}
			for _, f := range bl.Fields {
				if len([]rune(f.Text)) > 2000 || (f.Type != "mrkdwn" && f.Type != "plain_text") {
					t.Errorf("block %d: bad field %q (%d chars)", i, f.Type, len(f.Text))
				}
			}
		case "context":
			if len(bl.Elements) == 0 || len(bl.Elements) > 10 {
				t.Errorf("block %d: context needs 1 to 10 elements", i)
			}
		default:
			t.Errorf("block %d: unexpected type %q", i, bl.Type)
		}
	}
}

func TestWebhookPayload(t *testing.T) {
	a := fixtureAlert(StatusResolved)
	b, err := webhookPayload(a)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "webhook-resolved", b)
	var m webhookMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.Source != "moat" || m.Alert.Key != a.Key || m.Alert.Status != StatusResolved || !m.Alert.EndsAt.Equal(a.EndsAt) {
		t.Fatalf("round trip = %+v", m)
	}
}

func TestFindingRecord(t *testing.T) {
	r := Finding(fixtureAlert(StatusFiring))
	if r.ClassUID != 2004 || r.TypeUID != 200401 || r.FindingInfo == nil || r.FindingInfo.UID != "moat/scan/198.51.100.66" || r.SeverityID != 4 {
		t.Fatalf("finding = %+v", r)
	}
	if r.Metadata.Product.Name != ProductName || r.Metadata.UID != Finding(fixtureAlert(StatusFiring)).Metadata.UID {
		t.Fatalf("finding ID must be stable per alert: %+v", r.Metadata)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := ocsfcheck.Check(b); err != nil {
		t.Fatalf("not a valid OCSF 1.3.0 Detection Finding: %v\n%s", err, b)
	}
}
