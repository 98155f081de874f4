package server

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/flow"
	"moat/internal/policy"
)

// maxFlowBatch bounds one POST of flow records.
const maxFlowBatch = 10000

// handleFlows stores a batch of records from an agent or gateway. Records
// carry IDs, so a batch sent twice (a retry after a lost answer, a spool
// drained after an outage) is stored once.
func (s *Server) handleFlows(w http.ResponseWriter, r *http.Request, c *caller) {
	if s.cfg.Flows == nil {
		writeError(w, errorf(http.StatusServiceUnavailable, "this server keeps no flow records"))
		return
	}
	var recs []flow.Record
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<20))
	if err := dec.Decode(&recs); err != nil {
		writeError(w, errorf(http.StatusBadRequest, "bad flow batch: %v", err))
		return
	}
	if len(recs) > maxFlowBatch {
		writeError(w, errorf(http.StatusBadRequest, "batch of %d records: at most %d", len(recs), maxFlowBatch))
		return
	}
	for i := range recs {
		if err := flow.Validate(&recs[i]); err != nil {
			writeError(w, errorf(http.StatusBadRequest, "record %d: %v", i, err))
			return
		}
		// The sender is who the record says produced it: a node cannot
		// write records in another node's name.
		if recs[i].Unmapped == nil {
			recs[i].Unmapped = &flow.Moat{}
		}
		recs[i].Unmapped.Node = c.Name
	}
	n, err := s.cfg.Flows.Ingest(r.Context(), recs)
	if err != nil {
		writeError(w, err)
		return
	}
	if s.cfg.Detect != nil {
		for _, rec := range recs {
			_ = s.cfg.Detect.Write(rec) // a full detection queue drops and counts; it never refuses storage
		}
	}
	writeJSON(w, http.StatusOK, api.FlowAck{Received: len(recs), Stored: n})
}

// recentEdges lists the service pairs seen in the last day, for policy diff.
func (s *Server) recentEdges(ctx context.Context) ([]policy.Edge, error) {
	if s.cfg.RecentEdges != nil {
		return s.cfg.RecentEdges(ctx)
	}
	if s.cfg.Flows == nil {
		return nil, nil
	}
	recs, err := s.cfg.Flows.Query(ctx, flow.Filter{Class: flow.ClassNetworkActivity, Since: s.now().Add(-24 * time.Hour), Limit: 50000})
	if err != nil {
		return nil, err
	}
	seen := map[policy.Edge]bool{}
	var out []policy.Edge
	for _, r := range recs {
		if r.SrcEndpoint == nil || r.DstEndpoint == nil || r.ConnectionInfo == nil || r.ConnectionInfo.DirectionID != flow.DirectionInbound {
			continue
		}
		src, dst := svcOf(r.SrcEndpoint), svcOf(r.DstEndpoint)
		if src == "" || dst == "" {
			continue
		}
		e := policy.Edge{Src: src, Dst: dst, Port: r.DstEndpoint.Port}
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	return out, nil
}

func svcOf(e *flow.Endpoint) string {
	if e.SvcName != "" {
		return e.SvcName
	}
	return e.Name
}

// Detector receives flows and audit entries for detection (detect.Engine).
type Detector interface {
	flow.Writer
	ObserveAudit(audit.Entry)
}

// observed passes every recorded audit entry to the detector after it is
// durable.
type observed struct {
	next audit.Recorder
	d    Detector
}

func (o observed) Record(ctx context.Context, e audit.Entry) error {
	if err := o.next.Record(ctx, e); err != nil {
		return err
	}
	o.d.ObserveAudit(e)
	return nil
}
