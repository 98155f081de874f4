package detect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"moat/internal/audit"
	"moat/internal/flow"
)

// Audit detail keys read by the policy_widened rule. The control plane sets
// them on a "policy.apply" entry when the applied policy admits more than an
// explicit list: any of them makes the apply a widening, and a later
// successful apply to the same target carrying none of them resolves it.
const (
	// DetailWildcard = "true": some intention matches any source or
	// destination ("*").
	DetailWildcard = "wildcard"
	// DetailDefault = "allow": the default decision is allow.
	DetailDefault = "default"
	// DetailAllowAll = "true": an intention admits every port of every service.
	DetailAllowAll = "allow_all"
	// DetailWasWidened = "true": the policy the apply replaced was
	// widened. An apply that keeps it widened raises nothing new (its
	// alert stands, held by the server that answers for it), and one
	// that narrows it resolves the alert, also on a server that did not
	// see it fire (another took that apply, or this one restarted since).
	DetailWasWidened = "was_widened"
)

// PolicySubject is the subject of the policy_widened alert: the
// cluster's policy, one document of which each apply makes a new
// version (the entry's target names it, "policy v7": the alert's
// "applied" detail).
const PolicySubject = "policy"

// ActionPolicyApply is the audit action of a policy change.
const ActionPolicyApply = "policy.apply"

// ProductName is the product name on the Detection Finding records the
// engine writes; the engine ignores records carrying it, so findings fed
// back into it cannot loop.
const ProductName = "moat-detect"

// Notifier receives alerts. Notify must not block; a Dispatcher queues.
type Notifier interface {
	Notify(a Alert)
}

// Resender is a Notifier that takes the firing alerts again while they
// hold (a Dispatcher, for its Alertmanager sinks). Resend must not block.
type Resender interface {
	Resend(as []Alert)
}

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(Alert)

// Notify calls f(a).
func (f NotifierFunc) Notify(a Alert) { f(a) }

// ErrQueueFull is returned by Engine.Write when the record was dropped.
var ErrQueueFull = errors.New("detect: queue full, record dropped")

// Config builds an Engine.
type Config struct {
	// Rules tunes the rules; nil means DefaultRules. A rule missing from a
	// non-nil map is off.
	Rules Rules
	// Queue is how many records and audit entries may wait, over all
	// nodes; 0 means 10000. Each node's records wait in their own turn
	// (audit entries and records no node wrote in one more): beyond the
	// bound the newest of the node with the most waiting is dropped and
	// counted for that node, so one node's flood costs others nothing,
	// and the node's records_dropped alert fires (RuleRecordsDropped).
	Queue int
	// Sweep is how often Run re-evaluates windows to resolve alerts; 0
	// means 10s.
	Sweep time.Duration
	// Resend is how often the sweep hands a Notifier that is a Resender
	// every alert it sent firing and has not resolved, again: 0 means
	// DefaultResend. The engine's memory is the firing state: an engine
	// that starts knows of none, but the standing alerts Standing lists.
	Resend time.Duration
	// Standing, if set, returns the conditions of the StandingRules that
	// hold in the control plane's state and that this engine answers
	// for (in a cluster each is answered for by one server), read before
	// every re-send: their alerts are posted again for as long as they
	// are listed (holdStanding). An error leaves them as they were.
	Standing func() ([]Standing, error)
	// Notifier receives every alert; nil drops them (they still count).
	Notifier Notifier
	// Findings, if set, receives a Detection Finding record per firing alert.
	Findings flow.Writer
	// Now is the clock windows are measured by; nil means time.Now. Events
	// are placed in windows by when the engine sees them, not by the time
	// in the record, so a spool catching up cannot backdate an attack.
	Now    func() time.Time
	Logger *slog.Logger
	// Metrics, if set, counts drops and alerts.
	Metrics *Metrics
	// WorkHours is when break-glass sessions are expected (unusual_hours);
	// the zero value means DefaultWorkHours.
	WorkHours WorkHours
	// NodeAlerts bounds the firing alerts one node's records send to the
	// Notifier: that many at once and that many an hour, the rest kept as
	// findings alone (see RuleNodeAlertsMuted). 0 means DefaultNodeAlerts;
	// a negative value sets no bound.
	NodeAlerts int
}

// Engine runs the detection rules. Write and ObserveAudit may be called from
// any goroutine; Run evaluates.
type Engine struct {
	cfg     Config
	queue   *fairQueue
	dropped atomic.Uint64
	drops   drops
	seen    atomic.Uint64
	done    atomic.Uint64
	started time.Time

	mu      sync.Mutex // guards everything below
	windows map[string]*window
	// evaluating is the node whose record is being evaluated, "" for an
	// audit entry or a record no node wrote: the node a new subject or
	// edge is held for (holders).
	evaluating string
	// weight is how many events the record being evaluated stands for
	// (flow.Record.Events): a count-based rule counts a summary as the
	// refusals it summarises.
	weight int
	// fired is the subjects whose firing alerts the record being
	// evaluated raised, for budget to tell a window which it held back.
	fired []firedSubject
	edges holders
	// edgesFull counts new edges not remembered because edges was full,
	// edgesForgotten those forgotten to make room for another node's.
	edgesFull, edgesForgotten uint64
	policies                  map[string]*subject
	// bypassed is when each node's firewall_bypass alert fired.
	bypassed map[string]time.Time
	// nodes is each node's alert budget, muted the keys of the alerts it
	// held back (so their resolves are held back too), mutedTotal how many.
	nodes      map[string]*nodeBudget
	muted      map[string]bool
	mutedTotal uint64
	// sent is every alert sent to the Notifier firing and not resolved
	// since, by dedup key, which Resend hands it again; resent is when
	// it last did.
	sent   map[string]Alert
	resent time.Time
}

// firedSubject is a window's subject (its key in the window) whose
// firing alert has the dedup key key.
type firedSubject struct {
	key  string
	w    *window
	name string
}

type item struct {
	rec   flow.Record
	entry *audit.Entry
}

// weight is how many events the item stands for (flow.Record.Events).
func (it *item) weight() int {
	if it.entry != nil {
		return 1
	}
	return it.rec.Events()
}

// source is the node whose turn it waits in and whose budget its alerts
// spend: the node that wrote the record, or whose call the entry is of
// (auditNode); "" for neither.
func (it *item) source() string {
	switch {
	case it.entry != nil:
		return auditNode(it.entry)
	case it.rec.Unmapped != nil:
		return it.rec.Unmapped.Node
	}
	return ""
}

// New returns an Engine; it fails on a rule config that cannot run.
func New(cfg Config) (*Engine, error) {
	if cfg.Rules == nil {
		cfg.Rules = DefaultRules()
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 10000
	}
	if cfg.Sweep <= 0 {
		cfg.Sweep = 10 * time.Second
	}
	if cfg.Resend <= 0 {
		cfg.Resend = DefaultResend
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Notifier == nil {
		cfg.Notifier = NotifierFunc(func(Alert) {})
	}
	if cfg.WorkHours.Location == nil && cfg.WorkHours.Start == cfg.WorkHours.End {
		cfg.WorkHours = DefaultWorkHours()
	}
	if cfg.NodeAlerts == 0 {
		cfg.NodeAlerts = DefaultNodeAlerts
	}
	e := &Engine{
		cfg:      cfg,
		queue:    newFairQueue(cfg.Queue),
		drops:    drops{byNode: map[string]uint64{}, alerts: map[string]*dropAlert{}},
		started:  cfg.Now(),
		windows:  map[string]*window{},
		edges:    newHolders(),
		policies: map[string]*subject{},
		bypassed: map[string]time.Time{},
		nodes:    map[string]*nodeBudget{},
		muted:    map[string]bool{},
		sent:     map[string]Alert{},
	}
	for name, rc := range cfg.Rules {
		if !rc.Enabled {
			continue
		}
		if _, err := ParseSeverity(string(rc.Severity)); err != nil {
			return nil, fmt.Errorf("detect: rule %q: %w", name, err)
		}
		if rc.Threshold < 1 || rc.MaxSubjects < 1 || (rc.Window <= 0 && name != RulePolicyWidened && name != RuleFirewallBypass) {
			return nil, fmt.Errorf("detect: rule %q: window, threshold and max_subjects must be positive", name)
		}
		switch name {
		case RuleScan:
			e.windows[name] = newWindow(name, rc, true)
		case RuleDenyBurst, RuleHandshake, RuleRevoked, RuleNewEdge, RuleWAFSpike, RuleAuditWouldDeny, RuleEgressDenied,
			RuleMFAFailures, RuleSelfApproval, RuleOutsideGrant, RuleUnusualHours, RuleBreakGlass, RuleMFAChange:
			e.windows[name] = newWindow(name, rc, false)
		case RulePolicyWidened, RuleFirewallBypass:
			continue
		default:
			return nil, fmt.Errorf("detect: unknown rule %q", name)
		}
		e.windows[name].forgot = func(key string) {
			// Its resolve will not come: it is sent no more, and
			// lapses at the receivers that end what is not re-sent.
			delete(e.muted, key)
			delete(e.sent, key)
		}
	}
	return e, nil
}

// Write queues r for evaluation without waiting, in the turn of the node
// that wrote it (r.Unmapped.Node). When the queue is full and that node
// has the most records waiting, r is dropped, counted for the node, and
// ErrQueueFull returned; when another node has more, the newest of those
// is dropped and counted for that node instead.
func (e *Engine) Write(r flow.Record) error {
	if !e.enqueue(item{rec: r}) {
		return ErrQueueFull
	}
	return nil
}

// ObserveAudit queues an audit entry for the rules that read them without
// waiting: an entry of a node's call (role "node", its target the node)
// in that node's turn, as its records, any other in the turn of what no
// node wrote; a full queue drops and counts as Write does.
func (e *Engine) ObserveAudit(en audit.Entry) {
	e.enqueue(item{entry: &en})
}

func (e *Engine) enqueue(it item) bool {
	ok, from, dropped := e.queue.push(it.source(), it)
	if ok {
		e.seen.Add(1)
	}
	if dropped {
		e.dropped.Add(1)
		e.cfg.Metrics.engineDropped(e.drops.add(from, e.cfg.Now()))
	}
	return ok
}

// Stats is a snapshot of the engine's counters.
type Stats struct {
	Queued    uint64 // accepted by Write or ObserveAudit
	Processed uint64 // evaluated by Run
	// Dropped counts what the full queue refused, or dropped after it
	// was queued to make room for another node's; DroppedByNode the same
	// by the node that wrote it ("" for audit entries and records no node
	// wrote), for the first MaxDropNodes nodes to lose records, the others'
	// under OtherNodes.
	Dropped       uint64
	DroppedByNode map[string]uint64
	// SubjectsDropped counts events for new subjects refused because a
	// rule tracked MaxSubjects already and their node held as many as
	// any, by rule; SubjectsForgotten the subjects forgotten to make room
	// for a node that held fewer (new_edge's: edges).
	SubjectsDropped   map[string]uint64
	SubjectsForgotten map[string]uint64
	// Muted counts firing alerts kept as findings alone because their
	// node's records had spent its budget (Config.NodeAlerts).
	Muted uint64
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	s := Stats{Queued: e.seen.Load(), Processed: e.done.Load(), Dropped: e.dropped.Load(), DroppedByNode: e.drops.counts(),
		SubjectsDropped: map[string]uint64{}, SubjectsForgotten: map[string]uint64{}}
	e.mu.Lock()
	defer e.mu.Unlock()
	for name, w := range e.windows {
		s.SubjectsDropped[name] = w.dropped
		s.SubjectsForgotten[name] = w.forgotten
	}
	s.SubjectsDropped[RuleNewEdge] += e.edgesFull
	s.SubjectsForgotten[RuleNewEdge] += e.edgesForgotten
	s.Muted = e.mutedTotal
	return s
}

// Run evaluates queued records and sweeps windows until ctx ends; it returns
// nil then.
func (e *Engine) Run(ctx context.Context) error {
	t := time.NewTicker(e.cfg.Sweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-e.queue.ready:
			if it, ok := e.queue.pop(); ok {
				e.process(it)
			}
		case <-t.C:
			e.Sweep()
		}
	}
}

// Sweep resolves alerts whose conditions no longer hold at the clock's now.
// Run calls it every Config.Sweep.
func (e *Engine) Sweep() {
	now := e.cfg.Now()
	var out []Alert
	e.mu.Lock()
	names := make([]string, 0, len(e.windows))
	for n := range e.windows {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		out = append(out, e.windows[n].sweep(now)...)
	}
	send, quiet := e.budget(now, "", out)
	send = append(send, e.sweepBudgets(now)...)
	e.mu.Unlock()
	send = append(send, e.drops.fire(now, e.cfg.Queue)...)
	send = append(send, e.drops.resolve(now, e.cfg.Queue)...)
	e.emit(send, quiet)
	e.resend(now)
}

// resend hands a Resender every firing alert sent and not resolved,
// once every Config.Resend (at the first sweep too, so a server that
// restarted posts the standing alerts it answers for at once), after
// taking the standing conditions from Config.Standing.
func (e *Engine) resend(now time.Time) {
	r, ok := e.cfg.Notifier.(Resender)
	if !ok {
		return
	}
	e.mu.Lock()
	due := e.resent.IsZero() || now.Sub(e.resent) >= e.cfg.Resend
	if due {
		e.resent = now
	}
	e.mu.Unlock()
	if !due {
		return
	}
	if e.cfg.Standing != nil {
		list, err := e.cfg.Standing()
		if err != nil {
			e.cfg.Logger.Warn("detect: read the standing conditions; their alerts are posted as they were", logErr, err)
		} else {
			e.holdStanding(now, list)
		}
	}
	e.mu.Lock()
	as := make([]Alert, 0, len(e.sent))
	for _, a := range e.sent {
		as = append(as, a)
	}
	e.mu.Unlock()
	if len(as) == 0 {
		return
	}
	sort.Slice(as, func(i, j int) bool { return as[i].Key < as[j].Key })
	r.Resend(as)
}

func (e *Engine) process(it item) {
	now := e.cfg.Now()
	var out []Alert
	node := it.source()
	e.mu.Lock()
	e.evaluating, e.weight, e.fired = node, it.weight(), e.fired[:0]
	if it.entry != nil {
		out = e.observeAudit(now, it.entry)
	} else {
		out = e.observeRecord(now, &it.rec)
	}
	send, quiet := e.budget(now, node, out)
	e.mu.Unlock()
	e.done.Add(1)
	// Records the full queue dropped raise their alert here, on the
	// evaluating goroutine, not on the writer's, which must not wait.
	send = append(send, e.drops.fire(now, e.cfg.Queue)...)
	e.emit(send, quiet)
}

// emit hands the alerts of send to the Notifier; those of quiet, held
// back by a node's budget, are findings alone.
func (e *Engine) emit(send, quiet []Alert) {
	for _, a := range quiet {
		e.cfg.Logger.Debug("detect: alert held back by its node's budget", logRule, a.Rule, logStatus, string(a.Status), logKey, a.Key)
		e.raised(a)
	}
	if len(send) > 0 {
		e.mu.Lock()
		for _, a := range send {
			if a.Status == StatusFiring {
				e.sent[a.Key] = a
			} else {
				delete(e.sent, a.Key)
			}
		}
		e.mu.Unlock()
	}
	for _, a := range send {
		e.cfg.Logger.Info("detect: alert", logRule, a.Rule, logStatus, string(a.Status), logKey, a.Key, logSeverity, string(a.Severity))
		e.raised(a)
		e.cfg.Notifier.Notify(a)
	}
}

// raised counts a and keeps it as a finding when it fires.
func (e *Engine) raised(a Alert) {
	e.cfg.Metrics.alertRaised(a)
	if a.Status == StatusFiring && e.cfg.Findings != nil {
		if err := e.cfg.Findings.Write(Finding(a)); err != nil {
			e.cfg.Logger.Warn("detect: write finding", logKey, a.Key, logErr, err)
		}
	}
}

// fire feeds one event to the named rule, if it runs. summary may hold
// "{subject}", replaced only when the alert fires.
func (e *Engine) fire(out []Alert, now time.Time, rule, subj, itm, summary string, facts map[string]string) []Alert {
	w := e.windows[rule]
	if w == nil {
		return out
	}
	if a, ok := w.observe(now, e.evaluating, subj, itm, summary, facts, e.weight); ok {
		out = append(out, a)
		e.fired = append(e.fired, firedSubject{key: a.Key, w: w, name: subj})
	}
	return out
}

// endpointID names an endpoint by SPIFFE ID, else service, else IP.
func endpointID(ep *flow.Endpoint) string {
	switch {
	case ep == nil:
		return ""
	case ep.UID != "":
		return ep.UID
	case ep.SvcName != "":
		return ep.SvcName
	}
	return ep.IP
}

// target names a destination with its port.
func target(ep *flow.Endpoint) string {
	id := endpointID(ep)
	if id == "" {
		id = "?"
	}
	if ep != nil && ep.Port != 0 {
		return id + ":" + strconv.Itoa(ep.Port)
	}
	return id
}

func (e *Engine) observeRecord(now time.Time, r *flow.Record) []Alert {
	if r.Metadata.Product.Name == ProductName {
		return nil
	}
	out := e.observeAccessRecord(nil, now, r)
	var kind, reason, code string
	if r.Unmapped != nil {
		kind, reason, code = r.Unmapped.Kind, r.Unmapped.Reason, r.Unmapped.ReasonCode
	}
	if code == flow.ReasonNotReady {
		// An agent still starting refused what it could not serve yet:
		// no decision about the peer, so nothing to detect.
		return out
	}
	src := endpointID(r.SrcEndpoint)
	srcIP := ""
	if r.SrcEndpoint != nil {
		srcIP = r.SrcEndpoint.IP
	}
	if src == "" {
		src = "unknown"
	}
	claimed := ""
	if r.Unmapped != nil {
		claimed = r.Unmapped.Claimed
	}
	switch {
	case code == flow.ReasonRevoked:
		// The identity that was refused is the one presented: verified
		// (a stream on a live tunnel) or only claimed (a handshake).
		subj := src
		if claimed != "" {
			subj = claimed
		}
		facts := map[string]string{"src_ip": srcIP, "dst": target(r.DstEndpoint), "reason": reason}
		if claimed != "" {
			facts["claimed"] = claimed
		}
		out = e.fire(out, now, RuleRevoked, subj, "", "revoked identity {subject} used", facts)
	case kind == "handshake" && (code != "" || reason != ""):
		subj := srcIP
		if subj == "" {
			subj = src
		}
		facts := map[string]string{"last_reason": reason, "last_code": code, "dst": target(r.DstEndpoint)}
		if claimed != "" {
			facts["last_claimed"] = claimed
		}
		out = e.fire(out, now, RuleHandshake, subj, "", "failed mTLS handshakes from {subject}", facts)
	}
	if code == flow.ReasonEgressDenied || code == flow.ReasonSNIMismatch || code == flow.ReasonHTTPRefused || code == flow.ReasonEgressInternal || code == flow.ReasonNoIdentity ||
		code == flow.ReasonFirewall && r.Verdict() == flow.VerdictDeny && r.ConnectionInfo != nil && r.ConnectionInfo.DirectionID == flow.DirectionOutbound ||
		code == flow.ReasonDNSRefused && r.Verdict() == flow.VerdictDeny {
		dst := target(r.DstEndpoint)
		if ep := r.DstEndpoint; ep != nil && ep.Hostname != "" {
			dst = ep.Hostname + ":" + strconv.Itoa(ep.Port)
		}
		out = e.fire(out, now, RuleEgressDenied, src, "",
			"{subject} tried to leave the mesh where no egress rule allows",
			map[string]string{"dst": dst, "reason_code": code, "reason": reason})
	}
	if kind == "waf" && (r.ActionID == flow.ActionDenied || r.DispositionID == flow.DispositionBlocked || r.Verdict() == flow.VerdictDeny) {
		subj := srcIP
		if subj == "" {
			subj = src
		}
		facts := map[string]string{}
		if r.Unmapped != nil && len(r.Unmapped.Rules) > 0 {
			facts["last_rules"] = strings.Join(r.Unmapped.Rules, ",")
		}
		if r.HTTPRequest != nil && r.HTTPRequest.URL != nil {
			facts["last_path"] = r.HTTPRequest.URL.Path
		}
		out = e.fire(out, now, RuleWAFSpike, subj, "", "WAF blocks spiking for client {subject}", facts)
	}
	if r.ClassUID != flow.ClassNetworkActivity {
		return out
	}
	rule := ""
	if r.FirewallRule != nil {
		rule = r.FirewallRule.Name
	}
	switch r.Verdict() {
	case flow.VerdictDeny:
		out = e.fire(out, now, RuleScan, src, target(r.DstEndpoint),
			"{subject} probed many denied destinations", map[string]string{"src_ip": srcIP})
		out = e.fire(out, now, RuleDenyBurst, "all", "",
			"burst of denied connections from any source", map[string]string{"last_src": src, "last_dst": target(r.DstEndpoint)})
	case flow.VerdictAudit:
		subj := src + " -> " + target(r.DstEndpoint)
		out = e.fire(out, now, RuleAuditWouldDeny, subj, "",
			"audit mode let through a flow policy would deny: {subject}", map[string]string{"rule": rule})
	case flow.VerdictAllow:
		out = e.observeEdge(out, now, r)
	}
	return out
}

func (e *Engine) observeEdge(out []Alert, now time.Time, r *flow.Record) []Alert {
	w := e.windows[RuleNewEdge]
	if w == nil || r.SrcEndpoint == nil || r.DstEndpoint == nil {
		return out
	}
	a, b := r.SrcEndpoint.UID, r.DstEndpoint.UID
	if a == "" {
		a = r.SrcEndpoint.SvcName
	}
	if b == "" {
		b = r.DstEndpoint.SvcName
	}
	if a == "" || b == "" {
		return out // an edge is between two named services
	}
	edge := a + " -> " + b
	if e.edges.has(edge) {
		e.edges.seen(edge, now)
		return out
	}
	if e.edges.len() >= w.cfg.MaxSubjects {
		// Room is made as a window makes it (holders); an edge forgotten
		// is new again when next seen.
		victim, ok := e.edges.room(e.evaluating)
		if !ok {
			e.edgesFull++
			return out
		}
		e.edges.remove(victim)
		e.edgesForgotten++
	}
	e.edges.add(e.evaluating, edge, now)
	if now.Sub(e.started) < w.cfg.Learning {
		return out
	}
	rule := ""
	if r.FirewallRule != nil {
		rule = r.FirewallRule.Name
	}
	return e.fire(out, now, RuleNewEdge, edge, "", "first connection seen between {subject}", map[string]string{"rule": rule})
}

// widening lists the markers of a widening policy apply.
func widening(d map[string]string) []string {
	var w []string
	if d[DetailWildcard] == "true" {
		w = append(w, DetailWildcard)
	}
	if d[DetailDefault] == "allow" {
		w = append(w, "default=allow")
	}
	if d[DetailAllowAll] == "true" {
		w = append(w, DetailAllowAll)
	}
	return w
}

func (e *Engine) observeAudit(now time.Time, en *audit.Entry) []Alert {
	out := e.observeAccess(nil, now, en)
	out = append(out, e.observeFirewall(now, en)...)
	return append(out, e.observePolicy(now, en)...)
}

func (e *Engine) observePolicy(now time.Time, en *audit.Entry) []Alert {
	rc, ok := e.cfg.Rules[RulePolicyWidened]
	if !ok || !rc.Enabled || en.Action != ActionPolicyApply || en.Result != "ok" {
		return nil
	}
	s := e.policies[PolicySubject]
	active := s != nil && s.active
	was := en.Detail[DetailWasWidened] == "true"
	marks := widening(en.Detail)
	if len(marks) == 0 {
		if !active && !was {
			return nil
		}
		if !active {
			s = &subject{name: PolicySubject, firedAt: now, summary: "policy widened before " + orDash(en.Target), facts: map[string]string{}}
		}
		delete(e.policies, PolicySubject)
		a := policyAlert(rc, s, StatusResolved)
		a.EndsAt = now
		a.Details["resolved_by"] = en.Actor
		return []Alert{a}
	}
	if active || was || len(e.policies) >= rc.MaxSubjects {
		return nil
	}
	s = policySubject(now, en.Target, marks, withAccount(map[string]string{"actor": en.Actor, "role": en.Role}, en))
	e.policies[PolicySubject] = s
	return []Alert{policyAlert(rc, s, StatusFiring)}
}

// policySubject is the widened policy, as applied (target, "policy v7")
// with the widening marks, firing since now; facts holds who applied it.
func policySubject(now time.Time, target string, marks []string, facts map[string]string) *subject {
	if target == "" {
		target = PolicySubject
	}
	facts["widened"] = strings.Join(marks, ",")
	facts["applied"] = target
	return &subject{name: PolicySubject, active: true, firedAt: now, facts: facts,
		summary: fmt.Sprintf("%s widened by %s (%s)", target, orDash(facts["actor"]), strings.Join(marks, ", "))}
}

// standingPolicy is the widened policy st names, as the store holds it:
// its widening marks and its "actor" and "applied" details.
func standingPolicy(now time.Time, st Standing) *subject {
	return policySubject(now, st.Detail["applied"], widening(st.Detail), map[string]string{"actor": st.Detail["actor"]})
}

func policyAlert(rc RuleConfig, s *subject, st Status) Alert {
	a := Alert{Key: DedupKey(RulePolicyWidened, s.name), Rule: RulePolicyWidened, Severity: rc.Severity, Status: st,
		Subject: s.name, Summary: flow.PrintableText(s.summary), StartsAt: s.firedAt, Details: map[string]string{}}
	for k, v := range s.facts {
		a.Details[k] = flow.PrintableText(v)
	}
	return a
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Finding returns a as an OCSF Detection Finding record.
func Finding(a Alert) flow.Record {
	r := flow.Header(flow.ClassDetectionFinding, 1, ProductName, a.StartsAt)
	r.Metadata.UID = a.Fingerprint() + "-" + strconv.FormatInt(a.StartsAt.UnixMilli(), 36)
	r.SeverityID, r.Severity = ocsfSeverity(a.Severity)
	r.Message = a.Summary
	r.FindingInfo = &flow.FindingInfo{
		UID:      a.Key,
		Title:    a.Summary,
		Types:    []string{a.Rule},
		Analytic: &flow.Analytic{UID: a.Rule, Name: a.Rule, TypeID: 1, Type: "Rule"},
	}
	return r
}

func ocsfSeverity(s Severity) (int, string) {
	switch s {
	case SeverityLow:
		return flow.SeverityLow, "Low"
	case SeverityMedium:
		return flow.SeverityMedium, "Medium"
	case SeverityHigh:
		return flow.SeverityHigh, "High"
	case SeverityCritical:
		return flow.SeverityCritical, "Critical"
	}
	return flow.SeverityInformational, "Informational"
}

var (
	_ flow.Writer = (*Engine)(nil)
	_ Notifier    = (*Dispatcher)(nil)
)
