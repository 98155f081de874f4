package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/flow"
	"moat/internal/identity"
	"moat/internal/policy"
)

// FlowLimits bounds what one node may send as flow records. Zero fields
// take the defaults in brackets.
type FlowLimits struct {
	// MaxBatchBytes bounds one batch's body [8 MiB].
	MaxBatchBytes int64
	// MaxBatchRecords bounds the records of one batch [10,000].
	MaxBatchRecords int
	// MaxRecordBytes bounds one record as sent [64 KiB].
	MaxRecordBytes int
	// RecordsPerSecond and RecordBurst are each node's token bucket of
	// records [5,000/s, 50,000]; the burst is at least MaxBatchRecords.
	RecordsPerSecond float64
	RecordBurst      int
	// BatchesPerSecond and BatchBurst are each node's bucket of batches
	// [20/s, 200].
	BatchesPerSecond float64
	BatchBurst       int
	// Concurrent bounds the batches decoded at once, over all nodes [4]:
	// with MaxBatchBytes it bounds the memory flows can take.
	Concurrent int
}

func (l *FlowLimits) defaults() {
	if l.MaxBatchBytes <= 0 {
		l.MaxBatchBytes = 8 << 20
	}
	if l.MaxBatchRecords <= 0 {
		l.MaxBatchRecords = 10000
	}
	if l.MaxRecordBytes <= 0 {
		l.MaxRecordBytes = 64 << 10
	}
	if l.RecordsPerSecond <= 0 {
		l.RecordsPerSecond = 5000
	}
	if l.RecordBurst <= 0 {
		l.RecordBurst = 50000
	}
	l.RecordBurst = max(l.RecordBurst, l.MaxBatchRecords)
	if l.BatchesPerSecond <= 0 {
		l.BatchesPerSecond = 20
	}
	if l.BatchBurst <= 0 {
		l.BatchBurst = 200
	}
	if l.Concurrent <= 0 {
		l.Concurrent = 4
	}
}

// handleFlows stores a batch of records from an agent or gateway. Records
// carry IDs, so a batch sent twice (a retry after a lost answer, a spool
// drained after an outage) is stored once.
//
// What a node sends is bounded before it is decoded deeply: the batch's
// bytes and records, each record's bytes, the node's rate of batches and
// records, and how many batches the server decodes at once. A record is
// stored only if it is about the sending node: its source or destination
// is a service registered on that node, or it names no service at all
// (a gateway's client, say), and it is stamped with the node's name. A
// record that fails is left out and counted, and the rest stored, so that
// one bad record never blocks an agent's spool.
func (s *Server) handleFlows(w http.ResponseWriter, r *http.Request, c *caller) {
	const action = "flows.ingest"
	if s.cfg.Flows == nil {
		writeError(w, errorf(http.StatusServiceUnavailable, "this server keeps no flow records"))
		return
	}
	lim := s.cfg.FlowLimits
	if !s.nodeLimit(c.Name, limitFlowBatches).AllowN(s.now(), 1) {
		err := errorf(http.StatusTooManyRequests, "too many flow batches from node %q; slow down", c.Name)
		s.refuse(r, c, action, err)
		writeError(w, err)
		return
	}
	select {
	case s.flowSlots <- struct{}{}:
		defer func() { <-s.flowSlots }()
	case <-r.Context().Done():
		// The server is stopping or the sender left: say so. An empty
		// answer would be a 200 that a shipper takes as stored.
		writeError(w, errorf(http.StatusServiceUnavailable, "flow batch not read: the request ended while it waited (%v)", context.Cause(r.Context())))
		return
	}
	raws, err := readFlowBatch(w, r, lim)
	if err != nil {
		s.refuse(r, c, action, err)
		writeError(w, err)
		return
	}
	if !s.nodeLimit(c.Name, limitFlowRecords).AllowN(s.now(), len(raws)) {
		err := errorf(http.StatusTooManyRequests, "too many flow records from node %q; slow down", c.Name)
		s.refuse(r, c, action, err)
		writeError(w, err)
		return
	}
	nodes, err := s.serviceNodes(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	recs := make([]flow.Record, 0, len(raws))
	refused := map[string]int{}
	for i, raw := range raws {
		var rec flow.Record
		why := ""
		switch {
		case len(raw) > lim.MaxRecordBytes:
			why = "too_large"
		case decodeRecord(raw, &rec) != nil:
			why = "malformed"
		case flow.Validate(&rec) != nil:
			why = "invalid"
		case rec.Unmapped != nil && rec.Unmapped.Account != "" && identity.ValidAccountID(rec.Unmapped.Account) != nil:
			// Detection keys an administrator's refusals by it.
			why = "invalid"
		case !s.aboutNode(&rec, c.Name, nodes):
			why = "not_this_node"
		}
		raws[i] = nil
		if why != "" {
			refused[why]++
			continue
		}
		// The sender is who the record says produced it: a node cannot
		// write records in another node's name.
		if rec.Unmapped == nil {
			rec.Unmapped = &flow.Moat{}
		}
		rec.Unmapped.Node = c.Name
		recs = append(recs, rec)
	}
	for why, n := range refused {
		s.m.flowRefused.WithLabelValues(why).Add(float64(n))
		s.refuseReason(r, c, action, "record_"+why, fmt.Errorf("%d records %s", n, why))
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
	writeJSON(w, http.StatusOK, api.FlowAck{Received: len(raws), Stored: n, Refused: len(raws) - len(recs)})
}

// decodeRecord reads one record of a node's batch, with the identity a
// refused peer claimed moved out of the name an older agent wrote it in
// (flow.MoveClaim), where no key reads it.
func decodeRecord(raw []byte, rec *flow.Record) error {
	if err := json.Unmarshal(raw, rec); err != nil {
		return err
	}
	flow.MoveClaim(rec)
	return nil
}

// readFlowBatch reads a JSON array of records within the limits, keeping
// each record's bytes for a later decode.
func readFlowBatch(w http.ResponseWriter, r *http.Request, lim FlowLimits) ([]json.RawMessage, error) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, lim.MaxBatchBytes))
	bad := func(err error) error {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return errorf(http.StatusRequestEntityTooLarge, "flow batch over %d bytes", lim.MaxBatchBytes)
		}
		return errorf(http.StatusBadRequest, "bad flow batch: %v", err)
	}
	if t, err := dec.Token(); err != nil {
		return nil, bad(err)
	} else if d, ok := t.(json.Delim); !ok || d != '[' {
		return nil, errorf(http.StatusBadRequest, "bad flow batch: want a JSON array of records")
	}
	var raws []json.RawMessage
	for dec.More() {
		if len(raws) == lim.MaxBatchRecords {
			return nil, errorf(http.StatusRequestEntityTooLarge, "flow batch of more than %d records", lim.MaxBatchRecords)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, bad(err)
		}
		raws = append(raws, raw)
	}
	if _, err := dec.Token(); err != nil {
		return nil, bad(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errorf(http.StatusBadRequest, "bad flow batch: data after the array")
	}
	return raws, nil
}

// serviceNodes maps every registered service to the node it runs on.
func (s *Server) serviceNodes(ctx context.Context) (map[string]string, error) {
	regs, err := s.services(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(regs))
	for _, reg := range regs {
		out[reg.Name] = reg.Node
	}
	return out, nil
}

// aboutNode reports whether a record may come from node, given where
// every service runs (nodes): one of its ends is a service of the node,
// or no end names a service.
func (s *Server) aboutNode(r *flow.Record, node string, nodes map[string]string) bool {
	src, srcOK := s.endpointService(r.SrcEndpoint, nodes)
	dst, dstOK := s.endpointService(r.DstEndpoint, nodes)
	proxy, proxyOK := s.endpointService(r.ProxyEndpoint, nodes)
	if !srcOK || !dstOK || !proxyOK {
		return false
	}
	if src == "" && dst == "" && proxy == "" {
		return true
	}
	local := func(svc string) bool { return svc != "" && nodes[svc] == node }
	// A connection through a service of the node (the egress gateway) is
	// about the node too.
	return local(src) || local(dst) || local(proxy)
}

// endpointService returns the service an endpoint names, "" when none; ok
// is false when its SPIFFE ID, its service name and its key disagree.
// Records are queried, and the dashboard draws them, under the
// endpoint's key (flow.EndpointKey: its SPIFFE ID, else service name,
// else name, else address), which is read as a service's when it is a
// service's SPIFFE ID or a bare name (flow.KeyService): so a key that
// reads as a registered service must be the service the endpoint names,
// and a name or an ID that is no SPIFFE ID must not carry a record onto
// another node's service. The identity a refused peer only claimed is in
// no key (flow.Moat.Claimed; flow.MoveClaim takes it out of the name an
// older agent wrote it in).
func (s *Server) endpointService(e *flow.Endpoint, nodes map[string]string) (name string, ok bool) {
	if e == nil {
		return "", true
	}
	named := ""
	if e.UID != "" {
		if id, err := spiffeid.FromString(e.UID); err == nil && id.MemberOf(s.td) {
			if kind, n, ok := identity.Parse(id); ok && kind == identity.KindService {
				named = n
			}
		}
	}
	switch {
	case named != "" && e.SvcName != "" && named != e.SvcName:
		return "", false
	case named == "":
		named = e.SvcName
	}
	key, _ := flow.EndpointKey(e)
	byKey := flow.KeyService(key, s.td)
	if _, registered := nodes[byKey]; !registered {
		byKey = ""
	}
	switch {
	case byKey != "" && named != "" && byKey != named:
		return "", false
	case named != "":
		return named, true
	}
	return byKey, true
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
