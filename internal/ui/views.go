package ui

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/flow"
	"moat/internal/policy"
)

// edgeDetail is what clicking an edge shows.
type edgeDetail struct {
	Records []flow.Record `json:"records"` // newest first
	Rule    string        `json:"rule"`
	Port    int           `json:"port"`
	// From is the caller explain was asked about: the service, or for the
	// world the newest record's address.
	From    string           `json:"from"`
	Explain *api.Explanation `json:"explain,omitempty"`
}

func (s *Server) handleEdge(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := params(q, "src", "dst", "verdict", "window"); err != nil {
		return err
	}
	src, dst := q.Get("src"), q.Get("dst")
	if src == "" || dst == "" {
		return badRequest("src and dst are required")
	}
	win, err := window(q.Get("window"), 24*60*60*1e9)
	if err != nil {
		return err
	}
	f := flow.Filter{Verdict: q.Get("verdict"), Since: s.cfg.Now().Add(-win), Limit: 200}
	if err := f.Validate(); err != nil {
		return badRequest("%v", err)
	}
	if src != world {
		f.From = src
	}
	if dst != world {
		f.To = dst
	}
	ctx := r.Context()
	got, err := s.queryFlows(ctx, f)
	if err != nil {
		return err
	}
	var d edgeDetail
	for i := len(got.Records) - 1; i >= 0 && len(d.Records) < 50; i-- {
		rec := got.Records[i]
		e := flow.EdgeOf(&rec)
		a, b, ok := s.graphEnds(rec.ClassUID, e.Src, e.Dst)
		if !ok || a != src || b != dst {
			continue // another edge's record: the world stands for many
		}
		d.Records = append(d.Records, rec)
	}
	if d.Records == nil {
		d.Records = []flow.Record{}
	}
	if len(d.Records) > 0 {
		newest := d.Records[0]
		switch {
		case newest.FirewallRule != nil:
			d.Rule = newest.FirewallRule.Name
		case newest.Unmapped != nil && len(newest.Unmapped.Rules) > 0:
			d.Rule = newest.Unmapped.Rules[0]
		}
		if newest.DstEndpoint != nil {
			d.Port = newest.DstEndpoint.Port
		}
		d.From = src
		if src == world && newest.SrcEndpoint != nil {
			d.From = newest.SrcEndpoint.IP
		}
	}
	if d.From != "" && dst != world && dst != "" {
		var ex api.Explanation
		if err := s.cfg.Control.Call(ctx, http.MethodPost, api.PathPolicyExpl, api.ExplainRequest{From: d.From, To: dst, Port: d.Port}, &ex); err != nil {
			return err
		}
		d.Explain = &ex
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// serviceDetail is what clicking a service shows.
type serviceDetail struct {
	Name       string              `json:"name"`
	ID         string              `json:"id"`
	Listing    *api.ServiceListing `json:"listing,omitempty"`
	SVIDs      []api.IssuedCert    `json:"svids"`
	Inbound    []policy.Rule       `json:"inbound"`
	Outbound   []policy.Rule       `json:"outbound"`
	PeerMode   string              `json:"peer_mode"`
	PolicyNote string              `json:"policy_note,omitempty"`
}

func (s *Server) handleService(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := params(q, "name"); err != nil {
		return err
	}
	name := q.Get("name")
	if name == "" || name == world {
		return badRequest("name: want a service")
	}
	ctx := r.Context()
	d := serviceDetail{Name: name, ID: "spiffe://" + s.td.Name() + "/svc/" + name, SVIDs: []api.IssuedCert{}, Inbound: []policy.Rule{}, Outbound: []policy.Rule{}}
	var regs []api.ServiceListing
	if err := s.cfg.Control.Call(ctx, http.MethodGet, api.PathServices, nil, &regs); err != nil {
		return err
	}
	for i := range regs {
		if regs[i].Name == name {
			d.Listing = &regs[i]
			// The node's report on its listeners says what it likes.
			for j := range d.Listing.Health {
				h := &d.Listing.Health[j]
				h.Addr, h.Error = flow.PrintableText(h.Addr), flow.PrintableText(h.Error)
			}
		}
	}
	var certs api.CertInventory
	if err := s.cfg.Control.Call(ctx, http.MethodGet, api.PathCerts, nil, &certs); err != nil {
		return err
	}
	for _, c := range certs.Certs {
		if c.Kind == "svid" && c.Name == name {
			d.SVIDs = append(d.SVIDs, c)
		}
	}
	pv, err := s.currentPolicy(r)
	if err != nil {
		return err
	}
	if pv.Error != "" {
		d.PolicyNote = pv.Error
	}
	for _, rule := range pv.Rules {
		if rule.To == name {
			d.Inbound = append(d.Inbound, rule)
		}
		for _, f := range rule.From {
			if f == name || f == policy.Wildcard {
				d.Outbound = append(d.Outbound, rule)
				break
			}
		}
	}
	d.PeerMode = pv.peerMode(name)
	writeJSON(w, http.StatusOK, d)
	return nil
}

// policyView is the applied policy with its rules as a table.
type policyView struct {
	Policy   api.Policy    `json:"policy"`
	Rules    []policy.Rule `json:"rules"`
	Mode     string        `json:"mode"`
	Warnings []string      `json:"warnings,omitempty"`
	// Error says the stored document does not parse here (a newer
	// server's syntax); the rules are then unknown.
	Error string `json:"error,omitempty"`
	table *policy.Table
}

func (p *policyView) peerMode(svc string) string {
	if p.table == nil {
		return string(policy.Strict)
	}
	return string(p.table.PeerMode(svc))
}

func (s *Server) currentPolicy(r *http.Request) (*policyView, error) {
	var p api.Policy
	if err := s.cfg.Control.Call(r.Context(), http.MethodGet, api.PathPolicy, nil, &p); err != nil {
		return nil, err
	}
	v := &policyView{Policy: p, Rules: []policy.Rule{}, Mode: string(policy.Enforce)}
	if p.YAML == "" {
		return v, nil
	}
	t, err := policy.ParseDocument([]byte(p.YAML), s.td.Name())
	if err != nil {
		v.Error = err.Error()
		return v, nil
	}
	v.table, v.Rules, v.Mode, v.Warnings = t, t.Rules(), string(t.Mode()), t.Warnings()
	return v, nil
}

func (s *Server) handlePolicy(w http.ResponseWriter, r *http.Request) error {
	v, err := s.currentPolicy(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// maxPolicy bounds a pasted or uploaded policy (the control plane takes
// requests of 1 MiB).
const maxPolicy = 1 << 20

// policyBody is a pasted or uploaded document, and for an apply the
// version it was compared with and the confirmation.
type policyBody struct {
	YAML    string `json:"yaml"`
	Base    int64  `json:"base"`
	Confirm bool   `json:"confirm"`
}

func readPolicyBody(r *http.Request) (policyBody, error) {
	var b policyBody
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxPolicy+4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return b, badRequest("bad request body: %v", err)
	}
	if strings.TrimSpace(b.YAML) == "" {
		return b, badRequest("the policy is empty")
	}
	if len(b.YAML) > maxPolicy {
		return b, badRequest("the policy is larger than %d bytes", maxPolicy)
	}
	return b, nil
}

// diffView is a policy diff with, for each recent flow that would be
// denied, its newest records.
type diffView struct {
	Base    int64              `json:"base"`
	Text    string             `json:"text"`
	Changes *api.PolicyChanges `json:"changes"`
	// Denied holds the newest records of each now-denied pair, in
	// Changes.NowDenied's order.
	Denied [][]flow.Record `json:"denied"`
	// Error is the document's own error (it does not parse); nothing else
	// is set then.
	Error string `json:"error,omitempty"`
}

func (s *Server) handlePolicyDiff(w http.ResponseWriter, r *http.Request) error {
	b, err := readPolicyBody(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if _, err := policy.ParseDocument([]byte(b.YAML), s.td.Name()); err != nil {
		writeJSON(w, http.StatusOK, diffView{Error: err.Error()})
		return nil
	}
	var cur api.Policy
	if err := s.cfg.Control.Call(ctx, http.MethodGet, api.PathPolicy, nil, &cur); err != nil {
		return err
	}
	var d api.PolicyDiff
	if err := s.cfg.Control.Call(ctx, http.MethodPost, api.PathPolicyDiff, api.PolicyRequest{YAML: b.YAML}, &d); err != nil {
		return err
	}
	v := diffView{Base: cur.Version, Text: d.Text, Changes: d.Changes, Denied: [][]flow.Record{}}
	if v.Changes == nil {
		return errors.New("the control plane answered the diff without its parts (an older server)")
	}
	for i, c := range v.Changes.NowDenied {
		recs := []flow.Record{}
		if i < 50 {
			got, err := s.queryFlows(ctx, flow.Filter{From: c.Src, To: c.Dst, Since: s.cfg.Now().Add(-24 * 60 * 60 * 1e9), Limit: 5})
			if err != nil {
				return err
			}
			for j := len(got.Records) - 1; j >= 0; j-- {
				recs = append(recs, got.Records[j])
			}
		}
		v.Denied = append(v.Denied, recs)
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// handlePolicyApply applies a document the page diffed: it needs the
// confirmation, and the applied version must still be the one the diff
// was made against, so that nobody applies over a change they did not
// see. The control plane checks the role (operator) and audits the call.
func (s *Server) handlePolicyApply(w http.ResponseWriter, r *http.Request) error {
	b, err := readPolicyBody(r)
	if err != nil {
		return err
	}
	if !b.Confirm {
		return badRequest("applying a policy needs a confirmation")
	}
	ctx := r.Context()
	var cur api.Policy
	if err := s.cfg.Control.Call(ctx, http.MethodGet, api.PathPolicy, nil, &cur); err != nil {
		return err
	}
	if cur.Version != b.Base {
		writeError(w, http.StatusConflict, "the policy changed (now version "+strconv.FormatInt(cur.Version, 10)+") since this diff was made: review the diff again")
		return nil
	}
	var out api.PolicyApplied
	if err := s.cfg.Control.Call(ctx, http.MethodPost, api.PathPolicy, api.PolicyRequest{YAML: b.YAML}, &out); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// counted is a name and how often it occurred.
type counted struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

func countOf(m map[string]int) []counted {
	out := make([]counted, 0, len(m))
	for k, n := range m {
		out = append(out, counted{Name: k, Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Name < out[j].Name
	})
	if len(out) > 20 {
		out = out[:20]
	}
	return out
}

// securityView is the security view: alerts, the gateway's blocks, refused
// handshakes, revocations and certificate lifetimes.
type securityView struct {
	Alerts      []flow.Record    `json:"alerts"` // newest first
	WAFByRule   []counted        `json:"waf_by_rule"`
	WAFByClient []counted        `json:"waf_by_client"`
	Blocks      int              `json:"blocks"`
	Handshakes  []counted        `json:"handshakes"`
	Truncated   bool             `json:"truncated,omitempty"`
	CA          api.CAInfo       `json:"ca"`
	Certs       []api.IssuedCert `json:"certs"`
}

func (s *Server) handleSecurity(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := params(q, "window"); err != nil {
		return err
	}
	win, err := window(q.Get("window"), 24*60*60*1e9)
	if err != nil {
		return err
	}
	ctx := r.Context()
	since := s.cfg.Now().Add(-win)
	var v securityView
	alerts, err := s.queryFlows(ctx, flow.Filter{Class: flow.ClassDetectionFinding, Since: since, Limit: 200})
	if err != nil {
		return err
	}
	v.Alerts = []flow.Record{}
	for i := len(alerts.Records) - 1; i >= 0; i-- {
		v.Alerts = append(v.Alerts, alerts.Records[i])
	}
	blocks, err := s.queryFlows(ctx, flow.Filter{Class: flow.ClassHTTPActivity, Since: since})
	if err != nil {
		return err
	}
	byRule, byClient := map[string]int{}, map[string]int{}
	for _, rec := range blocks.Records {
		m := rec.Unmapped
		if m == nil {
			continue
		}
		v.Blocks++
		rule := m.Kind
		if len(m.Rules) > 0 {
			rule = m.Kind + " " + m.Rules[0]
		}
		byRule[rule]++
		if rec.SrcEndpoint != nil {
			byClient[rec.SrcEndpoint.IP]++
		}
	}
	denied, err := s.queryFlows(ctx, flow.Filter{Class: flow.ClassNetworkActivity, Verdict: flow.VerdictDeny, Since: since})
	if err != nil {
		return err
	}
	reasons := map[string]int{}
	for _, rec := range denied.Records {
		if m := rec.Unmapped; m != nil && m.Kind == "handshake" {
			reasons[m.ReasonCode]++
		}
	}
	v.WAFByRule, v.WAFByClient, v.Handshakes = countOf(byRule), countOf(byClient), countOf(reasons)
	v.Truncated = blocks.Truncated || denied.Truncated || alerts.Truncated
	if err := s.cfg.Control.Call(ctx, http.MethodGet, api.PathCA, nil, &v.CA); err != nil {
		return err
	}
	var certs api.CertInventory
	if err := s.cfg.Control.Call(ctx, http.MethodGet, api.PathCerts, nil, &certs); err != nil {
		return err
	}
	v.Certs = certs.Certs
	writeJSON(w, http.StatusOK, v)
	return nil
}

// auditView is a page of the audit log, newest first, with the status of
// the last verification.
type auditView struct {
	Size    int64        `json:"size"`
	Entries []auditRow   `json:"entries"`
	Status  *AuditStatus `json:"status,omitempty"`
	// Verifiable says whether this dashboard can verify the log.
	Verifiable bool `json:"verifiable"`
}

// auditRow is one entry as the audit table shows it: the entry, and the
// account of the administrator who acted (audit.Entry.ActorAccount, as
// "moat audit log" shows it), "" when it records none.
type auditRow struct {
	audit.Indexed
	Account string `json:"account,omitempty"`
}

// auditPage is how many entries one page shows.
const auditPage = 100

func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := params(q, "before"); err != nil {
		return err
	}
	ctx := r.Context()
	var head api.AuditEntries
	if err := s.cfg.Control.Call(ctx, http.MethodGet, api.PathAudit+"?from=0&to=0", nil, &head); err != nil {
		return err
	}
	to := head.Size
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return badRequest("before %q: want an entry index", v)
		}
		to = min(to, n)
	}
	from := max(0, to-auditPage)
	var page api.AuditEntries
	qs := url.Values{"from": {strconv.FormatInt(from, 10)}, "to": {strconv.FormatInt(to, 10)}}
	if err := s.cfg.Control.Call(ctx, http.MethodGet, api.PathAudit+"?"+qs.Encode(), nil, &page); err != nil {
		return err
	}
	v := auditView{Size: page.Size, Entries: []auditRow{}, Verifiable: s.cfg.VerifyAudit != nil}
	for i := len(page.Entries) - 1; i >= 0; i-- {
		x := page.Entries[i]
		v.Entries = append(v.Entries, auditRow{Indexed: x, Account: x.Entry.ActorAccount()})
	}
	s.mu.Lock()
	v.Status = s.audit
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, v)
	return nil
}

// handleAuditVerify verifies the log now and keeps the outcome for the
// audit view.
func (s *Server) handleAuditVerify(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.VerifyAudit == nil {
		return badRequest("this dashboard has no verifier key to check the log with")
	}
	st, err := s.cfg.VerifyAudit(r.Context())
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.audit = &st
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, st)
	return nil
}
