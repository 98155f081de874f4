package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"moat/internal/api"
	"moat/internal/config"
	"moat/internal/flow"
)

// apiRoutes lists the page's calls. Reads are GET; changes are POST and
// carry the CSRF token (see authed).
func (s *Server) apiRoutes(handle func(method, path string, h func(http.ResponseWriter, *http.Request) error)) {
	handle("GET", "/api/session", s.handleSession)
	handle("GET", "/api/graph", s.handleGraph)
	handle("GET", "/api/graph/live", s.handleGraphLive)
	handle("GET", "/api/edge", s.handleEdge)
	handle("GET", "/api/service", s.handleService)
	handle("GET", "/api/flows", s.handleFlows)
	handle("GET", "/api/flows/follow", s.handleFollow)
	handle("GET", "/api/policy", s.handlePolicy)
	handle("POST", "/api/policy/diff", s.handlePolicyDiff)
	handle("POST", "/api/policy/apply", s.handlePolicyApply)
	handle("GET", "/api/security", s.handleSecurity)
	handle("GET", "/api/audit", s.handleAudit)
	handle("POST", "/api/audit/verify", s.handleAuditVerify)
}

// badRequestError is a request the page got wrong.
type badRequestError struct{ msg string }

func (e *badRequestError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &badRequestError{msg: fmt.Sprintf(format, args...)}
}

// writeFailure answers a failed call: the page's own mistake as 400, the
// control plane's refusal with its status (an unauthenticated dashboard
// credential as 502, so the page does not read it as its own session
// ending), anything else as 502.
func writeFailure(w http.ResponseWriter, err error) {
	var br *badRequestError
	var se *api.StatusError
	switch {
	case errors.As(err, &br):
		writeError(w, http.StatusBadRequest, br.msg)
	case errors.As(err, &se):
		code := se.Code
		if code == http.StatusUnauthorized || code < 400 || code > 599 {
			code = http.StatusBadGateway
		}
		writeJSON(w, code, apiError{Error: "control plane: " + se.Msg, Status: se.Code})
	case errors.Is(err, context.Canceled):
	default:
		writeJSON(w, http.StatusBadGateway, apiError{Error: err.Error()})
	}
}

// maxParam bounds every query parameter the page sends.
const maxParam = 512

// window reads a duration such as 15m, 6h or 7d (def when empty), between
// a minute and 31 days.
func window(v string, def time.Duration) (time.Duration, error) {
	if v == "" {
		return def, nil
	}
	if len(v) > 16 {
		return 0, badRequest("window: too long")
	}
	d, err := config.ParseDuration(v)
	if err != nil || d < time.Minute || d > 31*24*time.Hour {
		return 0, badRequest("window %q: want a duration from 1m to 31d", v)
	}
	return d, nil
}

// params checks that q holds only known, short, single parameters.
func params(q url.Values, known ...string) error {
	for k, vs := range q {
		ok := false
		for _, n := range known {
			ok = ok || n == k
		}
		if !ok {
			return badRequest("unknown parameter %q", k)
		}
		if len(vs) != 1 || len(vs[0]) > maxParam {
			return badRequest("parameter %q: give it once, at most %d bytes", k, maxParam)
		}
	}
	return nil
}

// session tells the page who it acts as and its CSRF token.
type session struct {
	Admin       string `json:"admin"`
	Role        string `json:"role"`
	Server      string `json:"server"`
	TrustDomain string `json:"trust_domain"`
	CSRF        string `json:"csrf"`
	// CanApply says the role may apply a policy (operator or above).
	CanApply bool `json:"can_apply"`
}

func (s *Server) handleSession(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, session{Admin: s.cfg.Admin.ID, Role: s.cfg.Admin.Role, Server: s.cfg.Server,
		TrustDomain: s.td.Name(), CSRF: s.csrf.text(), CanApply: api.RoleRank(s.cfg.Admin.Role) >= api.RoleRank(api.RoleOperator)})
	return nil
}

func (s *Server) handleGraph(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := params(q, "window", "group"); err != nil {
		return err
	}
	win, group, err := graphQuery(q)
	if err != nil {
		return err
	}
	v, err := s.fetchGraph(r.Context(), win, group)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// handleGraphLive streams, as server-sent events, the growth of the
// graph's edges after ?since (the graph's Until): the records stored since
// then (the follow stream's backlog) and each one as it is stored, summed
// per edge and sent at most once a second.
func (s *Server) handleGraphLive(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := params(q, "since"); err != nil {
		return err
	}
	since, err := time.Parse(time.RFC3339Nano, q.Get("since"))
	if err != nil {
		return badRequest("since: want an RFC 3339 time")
	}
	ev, err := startEvents(w)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	recs := make(chan api.FlowFrame, 1024)
	errc := make(chan error, 1)
	go func() {
		errc <- s.cfg.Control.FollowFlows(ctx, api.FlowValues(flow.Filter{Since: since, Limit: api.MaxFlowRecords}, 0), func(fr api.FlowFrame) error {
			select {
			case recs <- fr:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var live liveEdges
	var dropped uint64
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			if ctx.Err() == nil && err != nil {
				ev.send("error", apiError{Error: err.Error()})
			}
			return nil
		case fr := <-recs:
			dropped = fr.Dropped
			if fr.Record != nil {
				live.add(s, fr.Record)
			}
		case <-tick.C:
			d := liveDelta{Edges: live.take(), Dropped: dropped}
			if !ev.send("delta", d) {
				return nil
			}
		}
	}
}

// events writes server-sent events.
type events struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func startEvents(w http.ResponseWriter) (*events, error) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	e := &events{w: w, rc: http.NewResponseController(w)}
	if err := e.rc.Flush(); err != nil {
		return nil, err
	}
	return e, nil
}

// send writes one event; false means the page is gone.
func (e *events) send(name string, v any) bool {
	b, err := json.Marshal(v)
	if err != nil {
		return false
	}
	if _, err := fmt.Fprintf(e.w, "event: %s\ndata: %s\n\n", name, b); err != nil {
		return false
	}
	return e.rc.Flush() == nil
}

// flowFilter reads the flows view's filters: from, to, verdict, rule
// (service names, SPIFFE IDs or addresses, as "moat flows" takes them),
// window (since, as a duration) and limit.
func (s *Server) flowFilter(q url.Values, defLimit int) (flow.Filter, error) {
	if err := params(q, "from", "to", "verdict", "rule", "window", "limit", "class"); err != nil {
		return flow.Filter{}, err
	}
	f := flow.Filter{From: q.Get("from"), To: q.Get("to"), Verdict: q.Get("verdict"), Rule: q.Get("rule"), Limit: defLimit}
	if v := q.Get("window"); v != "" {
		d, err := window(v, 0)
		if err != nil {
			return f, err
		}
		f.Since = s.cfg.Now().Add(-d)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > api.MaxFlowRecords {
			return f, badRequest("limit %q: want 1 to %d", v, api.MaxFlowRecords)
		}
		f.Limit = n
	}
	if v := q.Get("class"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return f, badRequest("class %q: want an OCSF class uid", v)
		}
		f.Class = n
	}
	if err := f.Validate(); err != nil {
		return f, badRequest("%v", err)
	}
	return f, nil
}

// queryFlows is "moat flows": the newest records matching f, oldest
// first, their text printable (flow.PrintableRecord): the page shows it
// as it is.
func (s *Server) queryFlows(ctx context.Context, f flow.Filter) (api.FlowRecords, error) {
	var out api.FlowRecords
	err := s.cfg.Control.Call(ctx, http.MethodGet, api.PathFlowQuery+"?"+api.FlowValues(f, 0).Encode(), nil, &out)
	for i := range out.Records {
		flow.PrintableRecord(&out.Records[i])
	}
	return out, err
}

func (s *Server) handleFlows(w http.ResponseWriter, r *http.Request) error {
	f, err := s.flowFilter(r.URL.Query(), 200)
	if err != nil {
		return err
	}
	out, err := s.queryFlows(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// handleFollow is "moat flows --follow" as server-sent events: the newest
// matching records, then each as it is stored.
func (s *Server) handleFollow(w http.ResponseWriter, r *http.Request) error {
	f, err := s.flowFilter(r.URL.Query(), 100)
	if err != nil {
		return err
	}
	ev, err := startEvents(w)
	if err != nil {
		return err
	}
	ctx := r.Context()
	err = s.cfg.Control.FollowFlows(ctx, api.FlowValues(f, 0), func(fr api.FlowFrame) error {
		name := "record"
		if fr.Record == nil {
			name = "heartbeat"
		} else {
			flow.PrintableRecord(fr.Record)
		}
		if !ev.send(name, fr) {
			return context.Canceled
		}
		return nil
	})
	if err != nil && ctx.Err() == nil && !errors.Is(err, context.Canceled) {
		ev.send("error", apiError{Error: err.Error()})
	}
	return nil
}
