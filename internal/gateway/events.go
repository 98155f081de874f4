package gateway

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"moat/internal/flow"
	"moat/internal/waf"
)

// Security event kinds (flow.Moat.Kind).
const (
	KindWAF       = "waf"
	KindRateLimit = "rate_limit"
	KindIPDeny    = "ip_deny"
	KindCSRF      = "csrf"
	// KindPath is a path refused before routing: one that reads as another
	// route once normalised, climbs above the root, or hides a dot
	// segment or separator a backend might resolve.
	KindPath = "path"
	// KindOverload is a request refused because the gateway had no room
	// to inspect it in time.
	KindOverload = "overload"
)

const product = "moat gateway"

// event describes one refused (or, in detection-only mode, flagged) request.
type event struct {
	kind    string
	reason  string
	status  int
	route   string
	reqID   string
	client  netip.Addr
	r       *http.Request
	verdict *waf.Verdict
	blocked bool
	// local is the gateway address the client reached.
	local netip.AddrPort
	// suppressed, on a summary, is how many such events it stands for.
	suppressed int
}

// httpActivity maps a method to OCSF HTTP Activity's activity_id.
func httpActivity(method string) (int, string) {
	switch method {
	case http.MethodConnect:
		return 1, "Connect"
	case http.MethodDelete:
		return 2, "Delete"
	case http.MethodGet:
		return 3, "Get"
	case http.MethodHead:
		return 4, "Head"
	case http.MethodOptions:
		return 5, "Options"
	case http.MethodPost:
		return 6, "Post"
	case http.MethodPut:
		return 7, "Put"
	case http.MethodTrace:
		return 8, "Trace"
	}
	return 99, "Other"
}

// record turns e into an OCSF record. A request the gateway judged is HTTP
// Activity (4002) with the security_control profile: the action and
// disposition, and for the WAF the CRS rule as firewall_rule and the
// detection in unmapped (OCSF's finding classes define no HTTP request or
// endpoint; this is how web firewalls' decisions are classified). A
// connection refused before any request is Network Activity (4001),
// activity Refuse.
func (e *event) record(now time.Time) flow.Record {
	var rec flow.Record
	if e.r == nil {
		rec = flow.Header(flow.ClassNetworkActivity, flow.ActivityRefuse, product, now)
		rec.ActivityName = "Refuse"
		rec.ConnectionInfo = &flow.ConnectionInfo{ProtocolName: "tcp", ProtocolNum: 6, DirectionID: flow.DirectionInbound, Direction: "Inbound"}
	} else {
		id, name := httpActivity(e.r.Method)
		rec = flow.Header(flow.ClassHTTPActivity, id, product, now)
		rec.ActivityName = name
	}
	rec.SeverityID, rec.Severity = flow.SeverityMedium, "Medium"
	if e.kind == KindWAF {
		rec.SeverityID, rec.Severity = flow.SeverityHigh, "High"
	}
	rec.Message = e.reason
	rec.SecurityControl()
	m := &flow.Moat{Kind: e.kind, Route: e.route, Reason: e.reason, Suppressed: e.suppressed}
	if e.blocked {
		rec.ActionID, rec.Action = flow.ActionDenied, "Denied"
		rec.DispositionID, rec.Disposition = flow.DispositionBlocked, "Blocked"
		m.Verdict = flow.VerdictDeny
	} else {
		rec.ActionID, rec.Action = flow.ActionAllowed, "Allowed"
		rec.DispositionID, rec.Disposition = flow.DispositionLogged, "Logged"
		m.Verdict = flow.VerdictAudit
	}
	rec.SrcEndpoint = &flow.Endpoint{}
	if e.client.IsValid() {
		rec.SrcEndpoint.IP = e.client.String()
	}
	rec.DstEndpoint = &flow.Endpoint{}
	if e.local.IsValid() {
		rec.DstEndpoint.IP, rec.DstEndpoint.Port = e.local.Addr().String(), int(e.local.Port())
	}
	if e.r != nil {
		host := e.r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		rec.DstEndpoint.Hostname = host
		rec.HTTPRequest = &flow.HTTPRequest{
			Method:    e.r.Method,
			UID:       e.reqID,
			UserAgent: waf.Mask("User-Agent", e.r.UserAgent()),
			URL: &flow.URL{
				Hostname:    e.r.Host,
				Path:        e.r.URL.Path,
				QueryString: maskQuery(e.r.URL.RawQuery),
				Scheme:      "https",
			},
		}
		if e.r.TLS == nil {
			// The plain-HTTP port's.
			rec.HTTPRequest.URL.Scheme = "http"
		}
		rec.HTTPResponse = &flow.HTTPResponse{Code: e.status}
	}
	if v := e.verdict; v != nil {
		for _, id := range v.RuleIDs {
			m.Rules = append(m.Rules, strconv.Itoa(id))
		}
		m.Matched = v.Variable
		if v.Matched != "" {
			m.Matched += "=" + v.Matched
		}
		if len(m.Rules) > 0 {
			rec.FirewallRule = &flow.Rule{Name: "owasp-crs", UID: m.Rules[0]}
		}
		if v.Message != "" {
			rec.Message = e.reason + ": " + v.Message
		}
		if v.StoppedAt > 0 {
			// The rules listed are those that matched before the block
			// was certain, not every one that would have.
			rec.Message += " (evaluation stopped once the anomaly score reached the threshold, at " + strconv.Itoa(v.StoppedAt) + "; later rules not run: waf.full_evaluation runs them)"
		}
	}
	rec.Unmapped = m
	return rec
}

// maskQuery masks each parameter's value as waf.Mask would for a variable
// of that name, so "?token=..." never reaches an event in clear.
func maskQuery(raw string) string {
	if raw == "" {
		return ""
	}
	parts := strings.Split(raw, "&")
	for i, p := range parts {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			val = v
		}
		if m := waf.Mask("ARGS:"+name, val); m != val {
			parts[i] = k + "=" + url.QueryEscape(m)
		}
	}
	return strings.Join(parts, "&")
}
