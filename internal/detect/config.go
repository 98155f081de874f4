package detect

import (
	"fmt"
	"net/url"
	"regexp"
	"sync"
	"time"

	"moat/internal/config"
)

// An alerts file looks like this (every key optional but sinks):
//
//	queue: 10000            # records the engine may hold, over all nodes, before dropping
//	sweep: 10s              # how often windows are re-evaluated for resolves
//	resend: 1m              # how often firing alerts go to Alertmanager sinks again
//	node_alerts: 50         # alerts one node's records may send, at once and per hour (-1: no bound)
//	rules:
//	  scan:       {window: 1m, threshold: 20, severity: high, dedup: 1h}
//	  new_edge:   {learning: 15m}
//	  deny_burst: {disabled: true}
//	sinks:
//	  - {name: ops, type: slack, url_env: MOAT_SLACK_URL}
//	  - {name: pager, type: pagerduty, routing_key_env: MOAT_PD_KEY, min_severity: high}
//	  - {name: am, type: alertmanager, url: "http://127.0.0.1:9093"}  # posts to /api/v2/alerts
//	  - {name: siem, type: webhook, url: "https://siem.example/in", headers: {Authorization: "Bearer …"}}
//	delivery: {queue: 1000, attempts: 5, backoff: 1s, max_backoff: 1m, timeout: 10s}

type rawFile struct {
	Queue int           `yaml:"queue"`
	Sweep time.Duration `yaml:"sweep"`
	// Resend is Settings.Resend: 0 means DefaultResend.
	Resend time.Duration `yaml:"resend"`
	// NodeAlerts is Config.NodeAlerts: 0 means DefaultNodeAlerts, -1 no bound.
	NodeAlerts int         `yaml:"node_alerts"`
	Rules      rawRules    `yaml:"rules"`
	Sinks      []rawSink   `yaml:"sinks"`
	Delivery   rawDelivery `yaml:"delivery"`
}

type rawRules struct {
	Scan           rawRule `yaml:"scan"`
	DenyBurst      rawRule `yaml:"deny_burst"`
	Handshake      rawRule `yaml:"handshake_failures"`
	Revoked        rawRule `yaml:"revoked_identity"`
	NewEdge        rawRule `yaml:"new_edge"`
	WAFSpike       rawRule `yaml:"waf_spike"`
	PolicyWidened  rawRule `yaml:"policy_widened"`
	AuditWouldDeny rawRule `yaml:"audit_would_deny"`
	MFAFailures    rawRule `yaml:"mfa_failures"`
	SelfApproval   rawRule `yaml:"self_approval"`
	OutsideGrant   rawRule `yaml:"access_outside_grant"`
	UnusualHours   rawRule `yaml:"unusual_hours"`
	BreakGlass     rawRule `yaml:"break_glass"`
	MFAChange      rawRule `yaml:"mfa_change"`
	EgressDenied   rawRule `yaml:"egress_denied"`
	FirewallBypass rawRule `yaml:"firewall_bypass"`
}

type rawRule struct {
	Disabled    bool          `yaml:"disabled"`
	Window      time.Duration `yaml:"window"`
	Threshold   int           `yaml:"threshold"`
	Severity    string        `yaml:"severity"`
	Dedup       time.Duration `yaml:"dedup"`
	MaxSubjects int           `yaml:"max_subjects"`
	Learning    time.Duration `yaml:"learning"`
	// Hours, Days and Timezone: unusual_hours only (see WorkHours).
	Hours    string   `yaml:"hours"`
	Days     []string `yaml:"days"`
	Timezone string   `yaml:"timezone"`
}

type rawSink struct {
	Name          string            `yaml:"name"`
	Type          string            `yaml:"type"`
	URL           string            `yaml:"url"`
	URLEnv        string            `yaml:"url_env"`
	RoutingKey    string            `yaml:"routing_key"`
	RoutingKeyEnv string            `yaml:"routing_key_env"`
	Headers       map[string]string `yaml:"headers"`
	MinSeverity   string            `yaml:"min_severity"`
}

type rawDelivery struct {
	Queue      int           `yaml:"queue"`
	Attempts   int           `yaml:"attempts"`
	Backoff    time.Duration `yaml:"backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff"`
	Timeout    time.Duration `yaml:"timeout"`
}

// RuleConfig tunes one rule. A rule fires for a subject when Threshold
// matching events (distinct destinations, for the scan rule) fall within
// Window, and resolves once they no longer do.
type RuleConfig struct {
	Enabled   bool
	Window    time.Duration
	Threshold int
	Severity  Severity
	// Dedup is the least time between two firings of one dedup key: a
	// condition that clears and returns within it raises no new alert.
	Dedup time.Duration
	// MaxSubjects bounds the subjects (sources, edges) tracked at once.
	// Beyond it a new subject takes the place of the least recently seen
	// of a sample of the subjects made by the node whose records made the
	// most, if its own node made fewer; otherwise it is counted as dropped.
	MaxSubjects int
	// Learning (new_edge only): edges seen within this time of the engine's
	// start are remembered without alerting.
	Learning time.Duration
}

// Rules maps a rule name (RuleScan, …) to its settings.
type Rules map[string]RuleConfig

// Delivery tunes the Dispatcher.
type Delivery struct {
	// Queue is the alerts each sink may hold waiting; beyond it alerts are
	// dropped and counted.
	Queue int
	// Attempts is the most tries per alert and sink, the first included.
	Attempts int
	// Backoff is the wait before the first retry; it doubles per retry up
	// to MaxBackoff, each wait drawn with full jitter.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Timeout bounds one HTTP attempt.
	Timeout time.Duration
}

// Settings is a validated alerts file.
type Settings struct {
	Queue int
	Sweep time.Duration
	// Resend is how often every firing alert is posted to the
	// Alertmanager sinks again while it holds (Config.Resend,
	// SinkConfig.Horizon); Slack, PagerDuty and webhooks get an alert
	// once.
	Resend   time.Duration
	Rules    Rules
	Sinks    []SinkConfig
	Delivery Delivery
	// WorkHours is when break-glass sessions are expected (unusual_hours).
	WorkHours WorkHours
	// NodeAlerts is Config.NodeAlerts.
	NodeAlerts int
}

// Sink types.
const (
	SinkSlack        = "slack"
	SinkPagerDuty    = "pagerduty"
	SinkAlertmanager = "alertmanager"
	SinkWebhook      = "webhook"
)

// PagerDutyURL is the Events API v2 endpoint used when a pagerduty sink
// names no url.
const PagerDutyURL = "https://events.pagerduty.com/v2/enqueue"

// SinkConfig is one validated receiver. URL and RoutingKey are secrets.
type SinkConfig struct {
	Name        string
	Type        string
	URL         Secret
	RoutingKey  Secret
	Headers     map[string]Secret
	MinSeverity Severity
	// Horizon (alertmanager only) is how far after a post a firing
	// alert's endsAt lies: moat posts it again before then while it
	// holds. The alerts file sets Horizon(resend, sweep); 0 means that of
	// DefaultResend.
	Horizon time.Duration
}

// Secret holds a credential (a webhook URL, a routing key, a header value).
// It prints as "[redacted]" and cannot be compared with ==.
type Secret struct {
	_ [0]func()
	v string
}

// NewSecret wraps v.
func NewSecret(v string) Secret { return Secret{v: v} }

// String hides the value.
func (Secret) String() string { return "[redacted]" }

// GoString hides the value.
func (Secret) GoString() string { return "[redacted]" }

// MarshalText hides the value.
func (Secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// Reveal returns the value, for the one place that must send it.
func (s Secret) Reveal() string { return s.v }

// Empty reports whether no value is held.
func (s Secret) Empty() bool { return s.v == "" }

// DefaultRules returns the rules as they run when a file does not tune them.
func DefaultRules() Rules {
	return Rules{
		RuleScan:           {Enabled: true, Window: time.Minute, Threshold: 20, Severity: SeverityHigh, Dedup: time.Hour, MaxSubjects: 10000},
		RuleDenyBurst:      {Enabled: true, Window: time.Minute, Threshold: 200, Severity: SeverityMedium, Dedup: time.Hour, MaxSubjects: 1},
		RuleHandshake:      {Enabled: true, Window: 5 * time.Minute, Threshold: 10, Severity: SeverityMedium, Dedup: time.Hour, MaxSubjects: 10000},
		RuleRevoked:        {Enabled: true, Window: 10 * time.Minute, Threshold: 1, Severity: SeverityCritical, Dedup: time.Hour, MaxSubjects: 10000},
		RuleNewEdge:        {Enabled: true, Window: 10 * time.Minute, Threshold: 1, Severity: SeverityLow, Dedup: 24 * time.Hour, MaxSubjects: 100000, Learning: 15 * time.Minute},
		RuleWAFSpike:       {Enabled: true, Window: 5 * time.Minute, Threshold: 20, Severity: SeverityHigh, Dedup: time.Hour, MaxSubjects: 10000},
		RulePolicyWidened:  {Enabled: true, Window: 0, Threshold: 1, Severity: SeverityHigh, Dedup: 0, MaxSubjects: 10000},
		RuleAuditWouldDeny: {Enabled: true, Window: 10 * time.Minute, Threshold: 1, Severity: SeverityLow, Dedup: time.Hour, MaxSubjects: 10000},
		RuleMFAFailures:    {Enabled: true, Window: 10 * time.Minute, Threshold: 3, Severity: SeverityHigh, Dedup: time.Hour, MaxSubjects: 10000},
		RuleSelfApproval:   {Enabled: true, Window: 10 * time.Minute, Threshold: 1, Severity: SeverityHigh, Dedup: time.Hour, MaxSubjects: 10000},
		RuleOutsideGrant:   {Enabled: true, Window: 10 * time.Minute, Threshold: 1, Severity: SeverityHigh, Dedup: time.Hour, MaxSubjects: 10000},
		RuleUnusualHours:   {Enabled: true, Window: 10 * time.Minute, Threshold: 1, Severity: SeverityMedium, Dedup: time.Hour, MaxSubjects: 10000},
		RuleBreakGlass:     {Enabled: true, Window: 10 * time.Minute, Threshold: 1, Severity: SeverityInfo, Dedup: time.Hour, MaxSubjects: 10000},
		RuleMFAChange:      {Enabled: true, Window: 10 * time.Minute, Threshold: 1, Severity: SeverityInfo, Dedup: time.Hour, MaxSubjects: 10000},
		RuleEgressDenied:   {Enabled: true, Window: 10 * time.Minute, Threshold: 1, Severity: SeverityHigh, Dedup: time.Hour, MaxSubjects: 10000},
		RuleFirewallBypass: {Enabled: true, Window: 0, Threshold: 1, Severity: SeverityCritical, Dedup: 0, MaxSubjects: 10000},
	}
}

// DefaultDelivery returns the delivery settings used when a file gives none.
func DefaultDelivery() Delivery {
	return Delivery{Queue: 1000, Attempts: 5, Backoff: time.Second, MaxBackoff: time.Minute, Timeout: 10 * time.Second}
}

// LoadFile reads, decodes and validates the alerts file at name. getenv
// resolves url_env and routing_key_env; nil reads nothing.
func LoadFile(name string, getenv func(string) string) (*Settings, error) {
	var raw rawFile
	if err := config.DecodeFile(name, &raw); err != nil {
		return nil, err
	}
	s, err := raw.settings(getenv)
	if err != nil {
		if ce, ok := err.(*config.Error); ok {
			ce.File = name
		}
		return nil, err
	}
	return s, nil
}

// Load decodes and validates an alerts file held in data.
func Load(data []byte, getenv func(string) string) (*Settings, error) {
	var raw rawFile
	if err := config.Decode(data, &raw); err != nil {
		return nil, err
	}
	return raw.settings(getenv)
}

var sinkName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`) })

func (f *rawFile) settings(getenv func(string) string) (*Settings, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	s := &Settings{Queue: f.Queue, Sweep: f.Sweep, Rules: DefaultRules(), Delivery: DefaultDelivery(), WorkHours: DefaultWorkHours()}
	if s.Queue < 0 {
		return nil, config.Errorf("queue", "must not be negative")
	}
	if s.Queue == 0 {
		s.Queue = 10000
	}
	if s.Sweep < 0 {
		return nil, config.Errorf("sweep", "must not be negative")
	}
	if s.Sweep == 0 {
		s.Sweep = 10 * time.Second
	}
	switch {
	case f.Resend == 0:
		s.Resend = DefaultResend
	case f.Resend < time.Second || f.Resend > time.Hour:
		return nil, config.Errorf("resend", "want a duration from 1s to 1h, got %s", f.Resend)
	default:
		s.Resend = f.Resend
	}
	switch {
	case f.NodeAlerts < -1:
		return nil, config.Errorf("node_alerts", "want a positive count, or -1 for no bound")
	case f.NodeAlerts == 0:
		s.NodeAlerts = DefaultNodeAlerts
	default:
		s.NodeAlerts = f.NodeAlerts
	}
	for _, r := range []struct {
		name string
		raw  rawRule
	}{
		{RuleScan, f.Rules.Scan}, {RuleDenyBurst, f.Rules.DenyBurst}, {RuleHandshake, f.Rules.Handshake},
		{RuleRevoked, f.Rules.Revoked}, {RuleNewEdge, f.Rules.NewEdge}, {RuleWAFSpike, f.Rules.WAFSpike},
		{RulePolicyWidened, f.Rules.PolicyWidened}, {RuleAuditWouldDeny, f.Rules.AuditWouldDeny}, {RuleEgressDenied, f.Rules.EgressDenied},
		{RuleMFAFailures, f.Rules.MFAFailures}, {RuleSelfApproval, f.Rules.SelfApproval}, {RuleOutsideGrant, f.Rules.OutsideGrant},
		{RuleUnusualHours, f.Rules.UnusualHours}, {RuleBreakGlass, f.Rules.BreakGlass}, {RuleMFAChange, f.Rules.MFAChange},
		{RuleFirewallBypass, f.Rules.FirewallBypass},
	} {
		if r.name != RuleUnusualHours && (r.raw.Hours != "" || r.raw.Days != nil || r.raw.Timezone != "") {
			return nil, config.Errorf(config.Join("rules", r.name), "only unusual_hours takes hours, days and timezone")
		}
		rc, err := r.raw.merge(config.Join("rules", r.name), r.name, s.Rules[r.name])
		if err != nil {
			return nil, err
		}
		s.Rules[r.name] = rc
	}
	uh := f.Rules.UnusualHours
	wh, err := ParseWorkHours(uh.Hours, uh.Days, uh.Timezone)
	if err != nil {
		return nil, config.Errorf(config.Join("rules", RuleUnusualHours), "%v", err)
	}
	s.WorkHours = wh
	d, err := f.Delivery.merge(s.Delivery)
	if err != nil {
		return nil, err
	}
	s.Delivery = d
	if len(f.Sinks) == 0 {
		return nil, config.Errorf("sinks", "at least one sink is needed")
	}
	seen := map[string]bool{}
	for i, rs := range f.Sinks {
		p := config.Index("sinks", i)
		sc, err := rs.sink(p, getenv)
		if err != nil {
			return nil, err
		}
		if seen[sc.Name] {
			return nil, config.Errorf(config.Join(p, "name"), "sink %q named twice", sc.Name)
		}
		if sc.Type == SinkAlertmanager {
			sc.Horizon = Horizon(s.Resend, s.Sweep)
		}
		seen[sc.Name] = true
		s.Sinks = append(s.Sinks, sc)
	}
	return s, nil
}

func (r rawRule) merge(path, name string, def RuleConfig) (RuleConfig, error) {
	rc := def
	rc.Enabled = !r.Disabled
	if r.Window < 0 {
		return rc, config.Errorf(config.Join(path, "window"), "must not be negative")
	}
	if r.Window > 0 {
		switch name {
		case RulePolicyWidened:
			return rc, config.Errorf(config.Join(path, "window"), "policy_widened resolves on the next narrowing apply and takes no window")
		case RuleFirewallBypass:
			return rc, config.Errorf(config.Join(path, "window"), "firewall_bypass resolves when the node reports no bypass and takes no window")
		}
		rc.Window = r.Window
	}
	if r.Threshold < 0 {
		return rc, config.Errorf(config.Join(path, "threshold"), "must not be negative")
	}
	if r.Threshold > 0 {
		if def.Threshold == 1 && r.Threshold != 1 && (name == RuleRevoked || name == RuleNewEdge || name == RulePolicyWidened || name == RuleFirewallBypass ||
			name == RuleSelfApproval || name == RuleOutsideGrant || name == RuleUnusualHours || name == RuleBreakGlass || name == RuleMFAChange) {
			return rc, config.Errorf(config.Join(path, "threshold"), "%s fires on one event; only 1 is allowed", name)
		}
		if r.Threshold > 100000 {
			return rc, config.Errorf(config.Join(path, "threshold"), "at most 100000")
		}
		rc.Threshold = r.Threshold
	}
	if r.Severity != "" {
		sv, err := ParseSeverity(r.Severity)
		if err != nil {
			return rc, config.Errorf(config.Join(path, "severity"), "%v", err)
		}
		rc.Severity = sv
	}
	if r.Dedup < 0 {
		return rc, config.Errorf(config.Join(path, "dedup"), "must not be negative")
	}
	if r.Dedup > 0 {
		rc.Dedup = r.Dedup
	}
	if r.MaxSubjects < 0 {
		return rc, config.Errorf(config.Join(path, "max_subjects"), "must not be negative")
	}
	if r.MaxSubjects > 0 {
		rc.MaxSubjects = r.MaxSubjects
	}
	if r.Learning < 0 {
		return rc, config.Errorf(config.Join(path, "learning"), "must not be negative")
	}
	if r.Learning > 0 {
		if name != RuleNewEdge {
			return rc, config.Errorf(config.Join(path, "learning"), "only new_edge has a learning period")
		}
		rc.Learning = r.Learning
	}
	return rc, nil
}

func (r rawDelivery) merge(d Delivery) (Delivery, error) {
	for _, c := range []struct {
		key string
		neg bool
	}{
		{"queue", r.Queue < 0}, {"attempts", r.Attempts < 0}, {"backoff", r.Backoff < 0},
		{"max_backoff", r.MaxBackoff < 0}, {"timeout", r.Timeout < 0},
	} {
		if c.neg {
			return d, config.Errorf(config.Join("delivery", c.key), "must not be negative")
		}
	}
	if r.Queue > 0 {
		d.Queue = r.Queue
	}
	if r.Attempts > 0 {
		if r.Attempts > 20 {
			return d, config.Errorf("delivery.attempts", "at most 20")
		}
		d.Attempts = r.Attempts
	}
	if r.Backoff > 0 {
		d.Backoff = r.Backoff
	}
	if r.MaxBackoff > 0 {
		d.MaxBackoff = r.MaxBackoff
	}
	if d.MaxBackoff < d.Backoff {
		return d, config.Errorf("delivery.max_backoff", "is less than backoff (%s)", d.Backoff)
	}
	if r.Timeout > 0 {
		d.Timeout = r.Timeout
	}
	return d, nil
}

// sink validates one sink. Its errors never quote a URL, routing key or
// header value: they are secrets.
func (r rawSink) sink(p string, getenv func(string) string) (SinkConfig, error) {
	sc := SinkConfig{Name: r.Name, Type: r.Type, MinSeverity: SeverityInfo}
	if !sinkName().MatchString(r.Name) {
		return sc, config.Errorf(config.Join(p, "name"), "want a name of lowercase letters, digits, '-' or '_', got %q", r.Name)
	}
	switch r.Type {
	case SinkSlack, SinkPagerDuty, SinkAlertmanager, SinkWebhook:
	case "":
		return sc, config.Errorf(config.Join(p, "type"), "missing (want slack, pagerduty, alertmanager or webhook)")
	default:
		return sc, config.Errorf(config.Join(p, "type"), "unknown sink type %q (want slack, pagerduty, alertmanager or webhook)", r.Type)
	}
	if r.MinSeverity != "" {
		sv, err := ParseSeverity(r.MinSeverity)
		if err != nil {
			return sc, config.Errorf(config.Join(p, "min_severity"), "%v", err)
		}
		sc.MinSeverity = sv
	}
	u, err := secretValue(p, "url", r.URL, r.URLEnv, getenv)
	if err != nil {
		return sc, err
	}
	if u == "" && r.Type == SinkPagerDuty {
		u = PagerDutyURL
	}
	if u == "" {
		return sc, config.Errorf(config.Join(p, "url"), "missing (give url or url_env)")
	}
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" || pu.User != nil {
		return sc, config.Errorf(config.Join(p, "url"), "not an http(s) URL with a host and no user info (value not shown)")
	}
	sc.URL = NewSecret(u)
	rk, err := secretValue(p, "routing_key", r.RoutingKey, r.RoutingKeyEnv, getenv)
	if err != nil {
		return sc, err
	}
	switch {
	case r.Type == SinkPagerDuty && rk == "":
		return sc, config.Errorf(config.Join(p, "routing_key"), "missing (give routing_key or routing_key_env)")
	case r.Type == SinkPagerDuty && len(rk) != 32:
		return sc, config.Errorf(config.Join(p, "routing_key"), "want a 32-character integration key, got %d characters", len(rk))
	case r.Type != SinkPagerDuty && rk != "":
		return sc, config.Errorf(config.Join(p, "routing_key"), "only a pagerduty sink takes a routing key")
	}
	sc.RoutingKey = NewSecret(rk)
	if len(r.Headers) > 0 {
		if r.Type != SinkWebhook {
			return sc, config.Errorf(config.Join(p, "headers"), "only a webhook sink takes headers")
		}
		sc.Headers = map[string]Secret{}
		for k, v := range r.Headers {
			if k == "" || !headerName().MatchString(k) {
				return sc, config.Errorf(config.Join(config.Join(p, "headers"), k), "not a valid header name")
			}
			sc.Headers[k] = NewSecret(v)
		}
	}
	return sc, nil
}

var headerName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$") })

// secretValue returns the literal value or the named environment variable's,
// refusing both or an empty variable.
func secretValue(p, key, lit, env string, getenv func(string) string) (string, error) {
	switch {
	case lit != "" && env != "":
		return "", config.Errorf(config.Join(p, key), "give %s or %s_env, not both", key, key)
	case env != "":
		v := getenv(env)
		if v == "" {
			return "", config.Errorf(config.Join(p, key+"_env"), "environment variable %q is empty or unset", env)
		}
		return v, nil
	}
	return lit, nil
}

func (s SinkConfig) String() string { return fmt.Sprintf("%s sink %q", s.Type, s.Name) }

// SinkNames lists the sinks' names, for NewMetrics.
func (s *Settings) SinkNames() []string {
	names := make([]string, len(s.Sinks))
	for i, sc := range s.Sinks {
		names[i] = sc.Name
	}
	return names
}
