package detect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"moat/internal/flow"
)

// Sink delivers one alert to one receiver, once: retries are the
// Dispatcher's business.
type Sink interface {
	Name() string
	Send(ctx context.Context, a Alert) error
}

// DeliveryError is a failed Send. Its text never holds the sink's URL,
// routing key or header values.
type DeliveryError struct {
	Sink string
	// Status is the HTTP status answered, 0 when none was.
	Status int
	// Permanent is set when trying again cannot help (a 4xx other than 408
	// and 429, a redirect, an alert the sink cannot encode).
	Permanent bool
	// RetryAfter is the wait the receiver asked for (Retry-After on a 429
	// or 503), 0 when it named none.
	RetryAfter time.Duration
	Msg        string
}

func (e *DeliveryError) Error() string { return fmt.Sprintf("detect: sink %q: %s", e.Sink, e.Msg) }

// Retryable reports whether err may succeed on another attempt.
func Retryable(err error) bool {
	var de *DeliveryError
	if errors.As(err, &de) {
		return !de.Permanent
	}
	return err != nil
}

// HTTPSink posts JSON built from an alert to a receiver's URL.
type HTTPSink struct {
	cfg     SinkConfig
	client  *http.Client
	postURL string // the URL posted to
	build   func(Alert) ([]byte, error)
	// now is the clock; nil means time.Now.
	now func() time.Time
	// secrets are masked out of every error text, longest first.
	secrets []string
}

// NewSink returns the sink sc describes. client may be nil for a default
// client that follows no redirects; Delivery.Timeout bounds each attempt
// through the context the Dispatcher passes.
func NewSink(sc SinkConfig, client *http.Client) (*HTTPSink, error) {
	if client == nil {
		client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	s := &HTTPSink{cfg: sc, client: client, now: time.Now}
	switch sc.Type {
	case SinkSlack:
		s.build = slackPayload
	case SinkPagerDuty:
		key := sc.RoutingKey.Reveal()
		s.build = func(a Alert) ([]byte, error) { return pagerDutyPayload(a, key) }
	case SinkAlertmanager:
		s.build = func(a Alert) ([]byte, error) { return alertmanagerPayload([]Alert{a}, s.now(), s.horizon()) }
	case SinkWebhook:
		s.build = webhookPayload
	default:
		return nil, fmt.Errorf("detect: sink %q: unknown type %q", sc.Name, sc.Type)
	}
	u := sc.URL.Reveal()
	if u == "" {
		return nil, fmt.Errorf("detect: sink %q: no url", sc.Name)
	}
	s.postURL = u
	if pu, err := url.Parse(u); err == nil && sc.Type == SinkAlertmanager && (pu.Path == "" || pu.Path == "/") {
		pu.Path = AlertmanagerPath
		s.postURL = pu.String()
	}
	s.secrets = append(s.secrets, u, sc.RoutingKey.Reveal())
	if pu, err := url.Parse(u); err == nil {
		s.secrets = append(s.secrets, pu.EscapedPath(), pu.Path, pu.RawQuery)
	}
	for _, v := range sc.Headers {
		s.secrets = append(s.secrets, v.Reveal())
	}
	sort.Slice(s.secrets, func(i, j int) bool { return len(s.secrets[i]) > len(s.secrets[j]) })
	return s, nil
}

// Name returns the sink's configured name.
func (s *HTTPSink) Name() string { return s.cfg.Name }

// Kind is the sink's type: slack, pagerduty, alertmanager or webhook.
func (s *HTTPSink) Kind() string { return s.cfg.Type }

// Config returns what the sink was built from.
func (s *HTTPSink) Config() SinkConfig { return s.cfg }

// Standing reports whether the sink wants every firing alert again while
// it holds: an Alertmanager ends an alert it has not heard of by the
// endsAt of the last post, and one that restarted without its data, or
// joined its cluster since, knows only what is posted after.
func (s *HTTPSink) Standing() bool { return s.cfg.Type == SinkAlertmanager }

// horizon is how far ahead a firing alert's endsAt lies.
func (s *HTTPSink) horizon() time.Duration {
	if s.cfg.Horizon <= 0 {
		return Horizon(DefaultResend, 0)
	}
	return s.cfg.Horizon
}

// Send posts a once.
func (s *HTTPSink) Send(ctx context.Context, a Alert) error {
	body, err := s.build(a)
	if err != nil {
		return &DeliveryError{Sink: s.cfg.Name, Permanent: true, Msg: "encode: " + err.Error()}
	}
	return s.post(ctx, body)
}

// SendAll posts the firing alerts as, amBatch to a post, to a standing
// sink, once each, and returns the first error; every batch is tried.
func (s *HTTPSink) SendAll(ctx context.Context, as []Alert) error {
	if !s.Standing() {
		return &DeliveryError{Sink: s.cfg.Name, Permanent: true, Msg: "a " + s.cfg.Type + " sink takes alerts one at a time"}
	}
	var first error
	for len(as) > 0 {
		n := min(len(as), amBatch)
		body, err := alertmanagerPayload(as[:n], s.now(), s.horizon())
		if err == nil {
			err = s.post(ctx, body)
		} else {
			err = &DeliveryError{Sink: s.cfg.Name, Permanent: true, Msg: "encode: " + err.Error()}
		}
		if first == nil {
			first = err
		}
		as = as[n:]
	}
	return first
}

// post sends one body to the receiver.
func (s *HTTPSink) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.postURL, bytes.NewReader(body))
	if err != nil {
		return &DeliveryError{Sink: s.cfg.Name, Permanent: true, Msg: s.mask("build request: " + err.Error())}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "moat-alerts")
	for k, v := range s.cfg.Headers {
		req.Header.Set(k, v.Reveal())
	}
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error's text quotes the whole URL
		}
		return &DeliveryError{Sink: s.cfg.Name, Msg: s.mask("post to " + s.maskedURL() + ": " + err.Error())}
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	msg := fmt.Sprintf("post to %s: %s", s.maskedURL(), resp.Status)
	if t := strings.TrimSpace(string(snippet)); t != "" && utf8.ValidString(t) {
		msg += ": " + truncate(t, 200)
	}
	permanent := resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusRequestTimeout
	return &DeliveryError{Sink: s.cfg.Name, Status: resp.StatusCode, Permanent: permanent,
		RetryAfter: retryAfter(resp.Header.Get("Retry-After")), Msg: s.mask(msg)}
}

// retryAfter reads a Retry-After value given in seconds; dates and junk
// read as 0.
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(min(n, 3600)) * time.Second
}

// maskedURL shows scheme and host only: webhook paths and queries carry tokens.
func (s *HTTPSink) maskedURL() string {
	pu, err := url.Parse(s.cfg.URL.Reveal())
	if err != nil {
		return "[redacted]"
	}
	return pu.Scheme + "://" + pu.Host + "/[redacted]"
}

// mask removes every secret of the sink from msg.
func (s *HTTPSink) mask(msg string) string {
	for _, sec := range s.secrets {
		if len(sec) >= 4 && sec != "/" {
			msg = strings.ReplaceAll(msg, sec, "[redacted]")
		}
	}
	return msg
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// Slack incoming webhook message: text is the notification fallback, blocks
// the rendered body (Block Kit section, fields and context blocks).
type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks,omitempty"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Fields   []slackText `json:"fields,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

// slackText is a text object. Every one moat sends is mrkdwn with
// verbatim set: Slack then makes no link of a URL, no mention of
// "@channel" and no channel link of a "#name" written in the text, which
// carries what others wrote (a client's path, a host name asked for).
type slackText struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	Verbatim bool   `json:"verbatim,omitempty"`
}

func mrkdwn(s string) slackText { return slackText{Type: "mrkdwn", Text: s, Verbatim: true} }

// slackEscape makes s plain text in Slack's mrkdwn: the three characters
// it reserves (&, <, >: links and mentions such as <!channel>) become
// entities, and line breaks, other controls, direction overrides and
// invalid UTF-8 become escapes (flow.PrintableText), so that no value
// starts a line that reads as a field of its own or turns text around.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(flow.PrintableText(s))
}

// slackCode is s as inline code, where Slack reads no bold, italics,
// strike-through or emoji: what a subject or detail holds shows as it is.
// A backquote, which would end the code, shows as "ˋ" (U+02CB).
func slackCode(s string, n int) string {
	if s == "" {
		return "-"
	}
	return "`" + truncate(strings.ReplaceAll(slackEscape(s), "`", "ˋ"), n) + "`"
}

func slackPayload(a Alert) ([]byte, error) {
	title := slackEscape(a.Title())
	m := slackMessage{
		Text: truncate(title, 3000),
		Blocks: []slackBlock{
			{Type: "section", Text: &slackText{Type: "mrkdwn", Text: truncate("*"+title+"*", 3000), Verbatim: true}},
		},
	}
	fields := []slackText{
		mrkdwn("*Rule*\n" + slackEscape(a.Rule)),
		mrkdwn("*Subject*\n" + slackCode(a.Subject, 1900)),
	}
	for _, k := range a.sortedDetails() {
		if len(fields) == 10 { // Slack's limit per section
			break
		}
		fields = append(fields, mrkdwn("*"+slackEscape(k)+"*\n"+slackCode(a.Details[k], 1900)))
	}
	m.Blocks = append(m.Blocks,
		slackBlock{Type: "section", Fields: fields},
		slackBlock{Type: "context", Elements: []slackText{mrkdwn("dedup key " + slackCode(a.Key, 1900) + " · since " + a.StartsAt.UTC().Format(time.RFC3339))}},
	)
	return json.Marshal(m)
}

// PagerDuty Events API v2 event.
type pdEvent struct {
	RoutingKey  string     `json:"routing_key"`
	EventAction string     `json:"event_action"` // trigger, acknowledge, resolve
	DedupKey    string     `json:"dedup_key"`
	Payload     *pdPayload `json:"payload,omitempty"`
	Client      string     `json:"client,omitempty"`
}

type pdPayload struct {
	Summary       string            `json:"summary"`
	Source        string            `json:"source"`
	Severity      string            `json:"severity"` // critical, error, warning, info
	Timestamp     string            `json:"timestamp,omitempty"`
	Component     string            `json:"component,omitempty"`
	Group         string            `json:"group,omitempty"`
	Class         string            `json:"class,omitempty"`
	CustomDetails map[string]string `json:"custom_details,omitempty"`
}

func pdSeverity(s Severity) string {
	switch s {
	case SeverityCritical:
		return "critical"
	case SeverityHigh:
		return "error"
	case SeverityMedium:
		return "warning"
	}
	return "info"
}

func pagerDutyPayload(a Alert, routingKey string) ([]byte, error) {
	if len(a.Key) > 255 {
		return nil, fmt.Errorf("dedup key longer than 255 bytes")
	}
	ev := pdEvent{RoutingKey: routingKey, DedupKey: a.Key, Client: "moat"}
	if a.Status == StatusResolved {
		ev.EventAction = "resolve"
		return json.Marshal(ev)
	}
	ev.EventAction = "trigger"
	src := a.Subject
	if src == "" {
		src = "moat"
	}
	details := map[string]string{"rule": a.Rule, "dedup_key": a.Key}
	for k, v := range a.Details {
		details[k] = v
	}
	ev.Payload = &pdPayload{
		Summary:       truncate(a.Summary, 1024),
		Source:        truncate(src, 255),
		Severity:      pdSeverity(a.Severity),
		Timestamp:     a.StartsAt.UTC().Format(time.RFC3339Nano),
		Component:     "moat",
		Group:         "detect",
		Class:         a.Rule,
		CustomDetails: details,
	}
	return json.Marshal(ev)
}

// amAlert is one alert as Alertmanager's API takes it: POST /api/v2/alerts
// carries a list of them (PostableAlerts).
type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// AlertmanagerPath is where Alertmanager's API takes alerts; a sink URL
// with no path posts there.
const AlertmanagerPath = "/api/v2/alerts"

// DefaultResend is how often a firing alert is sent to Alertmanager again
// while it holds, unless the alerts file's resend says otherwise: the
// interval Prometheus re-sends its own at.
const DefaultResend = time.Minute

// AlertmanagerHorizon is how many posting intervals ahead a firing
// alert's endsAt lies at least: Alertmanager keeps the alert active that
// long without word from moat, so three re-sends in a row may be lost (a
// restart, a short partition) before it lapses, and the alerts of a
// server that stopped lapse within four intervals. Prometheus sets the
// same.
const AlertmanagerHorizon = 4

// Handover is the longest a cluster takes, after a server's last chance
// to post, to see it gone and let another answer for its standing alerts
// (StandingRules): the server's membership lapses half a minute after
// its last refresh; a minute leaves room for a slow read of the store.
const Handover = time.Minute

// Horizon is how far after a post a firing alert's endsAt lies when the
// engine sweeps every sweep and re-sends every resend: a re-send is made
// at the first sweep resend after the last, so posts come every resend
// plus sweep at most. It is AlertmanagerHorizon such intervals, and no
// less than the longest a standing alert goes unposted while the server
// that held it stops and another takes its place: the interval the
// stopped server missed, Handover, and the interval of the server taking
// over. So no standing alert lapses at Alertmanager in a handover.
func Horizon(resend, sweep time.Duration) time.Duration {
	every := resend + sweep
	return max(AlertmanagerHorizon*every, 2*every+Handover)
}

// amBatch is the most alerts one re-send posts at once.
const amBatch = 64

// AlertName is the Alertmanager alertname label of a rule: "MoatScan".
func AlertName(rule string) string {
	var b strings.Builder
	b.WriteString("Moat")
	for _, part := range strings.Split(rule, "_") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

// alertmanagerPayload renders a as PostableAlerts. Label names are fixed
// and valid Prometheus names; labels with empty values are left out, as
// Alertmanager treats them as absent. The description is the details on
// one line. Receivers' templates put labels and annotations in chat
// messages and mails as they are, where Slack reads <!channel> and
// <url|text>, Telegram HTML, and Teams, Discord and Mattermost Markdown
// ([text](url), @channel, *emphasis*), so every text that others wrote
// shows its line breaks, controls and markup characters as escapes
// (flow.InertText). A firing alert ends horizon after now, unless moat
// posts it again meanwhile.
func alertmanagerPayload(as []Alert, now time.Time, horizon time.Duration) ([]byte, error) {
	out := make([]amAlert, len(as))
	for i, a := range as {
		out[i] = amAlertOf(a, now, horizon)
	}
	return json.Marshal(out)
}

// amAlertOf is a as Alertmanager takes it.
func amAlertOf(a Alert, now time.Time, horizon time.Duration) amAlert {
	labels := map[string]string{
		"alertname": AlertName(a.Rule),
		"severity":  string(a.Severity),
		"rule":      a.Rule,
		"subject":   flow.InertText(a.Subject),
		"dedup_key": flow.InertText(a.Key),
		"source":    "moat",
	}
	for k, v := range labels {
		if v == "" {
			delete(labels, k)
		}
	}
	ann := map[string]string{"summary": flow.InertText(a.Summary)}
	var desc []string
	for _, k := range a.sortedDetails() {
		desc = append(desc, k+"="+flow.InertText(a.Details[k]))
	}
	if len(desc) > 0 {
		ann["description"] = strings.Join(desc, "; ")
	}
	if a.Summary == "" {
		delete(ann, "summary")
	}
	end := now.Add(horizon)
	if a.Status == StatusResolved {
		end = a.EndsAt
		if end.IsZero() {
			end = now
		}
	}
	return amAlert{Labels: labels, Annotations: ann, StartsAt: a.StartsAt.UTC(), EndsAt: end.UTC()}
}

// webhookMessage is the generic JSON body: the alert as moat holds it.
type webhookMessage struct {
	Source  string `json:"source"`
	Version string `json:"version"`
	Alert   Alert  `json:"alert"`
}

func webhookPayload(a Alert) ([]byte, error) {
	return json.Marshal(webhookMessage{Source: "moat", Version: "1", Alert: a})
}
