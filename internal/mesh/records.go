package mesh

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"moat/internal/flow"
	"moat/internal/mtls"
	"moat/internal/policy"
)

const (
	inboundDir  = flow.DirectionInbound
	outboundDir = flow.DirectionOutbound

	kindHandshake = "handshake"
	// activityCut marks a connection closed by a policy or trust change.
	activityCut = flow.ActivityReset
)

// Log keys.
const (
	logRemote  = "remote"
	logReason  = "reason"
	logService = "service"
	logAddr    = "addr"
	logErr     = "err"
	logSrc     = "src"
	logDst     = "dst"
	logPort    = "port"
	logPeer    = "peer"
	logCode    = "code"
)

// record gathers one connection's facts. in and out count bytes as they
// flow, so interim records can report a live connection.
type record struct {
	start                 time.Time
	dir                   int
	connID                string
	srcID, dstID          string
	srcSvc, dstSvc        string
	srcAddr, dstAddr      net.Addr
	dstPort               int // the service port asked for; records show it as the destination port
	in, out               atomic.Int64
	verdict, rule, reason string
	code                  string // flow.Reason*, for refusals, failures and cuts
	mode, kind            string
	claimed               string // unverified peer ID of a failed handshake
	suppressed            int    // on a summary: the refusals it stands for (flow.Gate)
	tls                   uint16
	plaintext             bool
	activity              int

	mu      sync.Mutex // guards sentIn, sentOut and done
	sentIn  int64      // bytes already reported by earlier records
	sentOut int64
	done    bool // the final record was written
}

func (m *Mesh) newRecord(start time.Time, dir int) *record {
	return &record{start: start, dir: dir}
}

func endpoint(id, svc string, a net.Addr, port int) *flow.Endpoint {
	e := &flow.Endpoint{UID: id, SvcName: svc}
	if a != nil {
		if host, p, err := net.SplitHostPort(a.String()); err == nil {
			e.IP = host
			e.Port, _ = strconv.Atoi(p)
		}
	}
	if port != 0 {
		e.Port = port
	}
	return e
}

// EdgeOf returns the (source, destination, port) a mesh flow record is
// about, for replaying recent traffic against a new policy (policy.Diff).
// Records without both service names (plaintext, handshake failures) have
// no edge.
func EdgeOf(r flow.Record) (policy.Edge, bool) {
	if r.ClassUID != flow.ClassNetworkActivity || r.SrcEndpoint == nil || r.DstEndpoint == nil ||
		r.SrcEndpoint.SvcName == "" || r.DstEndpoint.SvcName == "" || r.DstEndpoint.Port == 0 {
		return policy.Edge{}, false
	}
	return policy.Edge{Src: r.SrcEndpoint.SvcName, Dst: r.DstEndpoint.SvcName, Port: r.DstEndpoint.Port}, true
}

// emit writes r's final record: Close, or Refuse, Fail or Reset. It does
// nothing once the final record is written.
func (m *Mesh) emit(r *record) {
	activity := r.activity
	if activity == 0 {
		switch {
		case r.kind == kindHandshake:
			activity = flow.ActivityFail
		case r.verdict == flow.VerdictDeny:
			activity = flow.ActivityRefuse
		default:
			activity = flow.ActivityClose
		}
	}
	m.write(r, activity, true)
}

// emitOpen writes the record of a connection just admitted.
func (m *Mesh) emitOpen(r *record) { m.write(r, flow.ActivityOpen, false) }

// emitInterim writes a Traffic record with the bytes since r's last record.
func (m *Mesh) emitInterim(r *record) { m.write(r, flow.ActivityTraffic, false) }

// write writes one OCSF Network Activity record of r, carrying the bytes
// since r's previous record.
func (m *Mesh) write(r *record, activity int, final bool) {
	end := m.now()
	in, out := r.in.Load(), r.out.Load()
	r.mu.Lock()
	if r.done {
		r.mu.Unlock()
		return
	}
	r.done = final
	dIn, dOut := in-r.sentIn, out-r.sentOut
	r.sentIn, r.sentOut = in, out
	r.mu.Unlock()

	rec := flow.Header(flow.ClassNetworkActivity, activity, "moat-mesh", end)
	rec.SrcEndpoint = endpoint(r.srcID, r.srcSvc, r.srcAddr, 0)
	rec.DstEndpoint = endpoint(r.dstID, r.dstSvc, r.dstAddr, r.dstPort)
	dir := "Inbound"
	if r.dir == outboundDir {
		dir = "Outbound"
	}
	rec.ConnectionInfo = &flow.ConnectionInfo{UID: r.connID, ProtocolName: "tcp", ProtocolNum: 6, DirectionID: r.dir, Direction: dir}
	rec.Traffic = &flow.Traffic{BytesIn: dIn, BytesOut: dOut, Bytes: dIn + dOut}
	rec.StartTime = flow.Millis(r.start)
	rec.EndTime = flow.Millis(end)
	rec.Duration = end.Sub(r.start).Milliseconds()
	switch {
	case r.plaintext:
		rec.TLS = &flow.TLS{Version: "none"}
	case r.kind != kindHandshake: // a failed handshake negotiated nothing
		rec.TLS = &flow.TLS{Version: mtls.VersionName(r.tls)}
	}
	rec.SecurityControl()
	if r.rule != "" {
		rec.FirewallRule = &flow.Rule{Name: r.rule}
	}
	switch r.verdict {
	case flow.VerdictAllow:
		rec.ActionID, rec.Action = flow.ActionAllowed, "Allowed"
		rec.DispositionID, rec.Disposition = flow.DispositionAllowed, "Allowed"
	case flow.VerdictAudit:
		rec.ActionID, rec.Action = flow.ActionAllowed, "Allowed"
		rec.DispositionID, rec.Disposition = flow.DispositionLogged, "Logged"
	default:
		rec.ActionID, rec.Action = flow.ActionDenied, "Denied"
		rec.DispositionID, rec.Disposition = flow.DispositionBlocked, "Blocked"
		rec.SeverityID, rec.Severity = flow.SeverityLow, "Low"
	}
	rec.Message = r.reason
	rec.Unmapped = &flow.Moat{Verdict: r.verdict, Reason: r.reason, ReasonCode: r.code, Mode: r.mode, Node: m.cfg.Node, Kind: r.kind, Claimed: r.claimed, Suppressed: r.suppressed}
	if err := m.flows.Write(rec); err != nil {
		m.log.Warn("mesh: flow record lost", logErr, err.Error())
	}
}

// handshakeRecord records a failed TLS handshake. claimed is the SPIFFE ID
// the refused peer presented, unverified (flow.Moat.Claimed, which no key
// reads: never the endpoint's uid or name), or "". It reports whether the
// record was written rather than held back for a summary (emitRefusal).
func (m *Mesh) handshakeRecord(start time.Time, dir int, src, dst net.Addr, srcID, dstID, claimed string, err error) bool {
	r := m.newRecord(start, dir)
	r.srcAddr, r.dstAddr, r.srcID, r.dstID, r.claimed = src, dst, srcID, dstID, claimed
	r.verdict, r.reason, r.kind, r.code = flow.VerdictDeny, err.Error(), kindHandshake, identityCode(err)
	return m.emitRefusal(r)
}

// gateStreamKind marks, in the gate, the reason codes of refused streams
// (kind "" records) apart from those of refused handshakes.
const gateStreamKind = "stream "

// emitRefusal writes r, the record of a refused handshake or stream,
// unless the gate holds it back for a summary (flow.Gate): by the peer's
// address, its verified identity (a stream's source; a handshake has
// none) and the reason code. A peer refused as fast as it connects, or
// opens streams, has its first refusals written and the rest summarised.
// It reports whether r was written.
func (m *Mesh) emitRefusal(r *record) bool {
	peer, id, kind := r.srcAddr, r.srcID, r.code
	if r.dir == outboundDir {
		peer, id = r.dstAddr, ""
	}
	if r.kind != kindHandshake {
		kind = gateStreamKind + r.code
	}
	if !m.refusals.AllowPeer(addrOf(peer), id, kind, r, m.now()) {
		return false
	}
	m.emit(r)
	return true
}

// flushRefusals writes the summaries of the refusals the gate held back:
// the last of each peer's, with how many it stands for, and a count by
// reason of the peers past those summarised one by one.
func (m *Mesh) flushRefusals() {
	for _, h := range m.refusals.Flush() {
		code, stream := strings.CutPrefix(h.Kind, gateStreamKind)
		what := "handshakes"
		if stream {
			what = "streams"
		}
		r := h.Last
		if h.Client {
			r.reason = fmt.Sprintf("%s; %d such %s of this peer were counted, not recorded one by one (this is the last)", r.reason, h.N, what)
		} else {
			r = m.newRecord(m.now(), inboundDir)
			r.verdict, r.code = flow.VerdictDeny, code
			if !stream {
				r.kind = kindHandshake
			}
			r.reason = fmt.Sprintf("%d %s refused (%s) of peers past the %d summarised one by one were counted, not recorded", h.N, what, code, flow.GateMaxSummaries)
		}
		r.suppressed = h.N
		m.emit(r)
	}
}

// errNotService refuses a tunnel from an SVID that is not a service's.
var errNotService = errors.New("mesh: only service identities may open tunnels")

// errNotReady refuses a handshake this node cannot serve yet: it has not
// received its services, or not yet the SVID of the one asked for. It is
// a start-up state, not a decision about the peer (flow.ReasonNotReady).
var errNotReady = errors.New("mesh: not ready")

// errUnknownService refuses a handshake for a service not on this node.
var errUnknownService = errors.New("mesh: unknown service")

// identityCode maps a refused peer's error to a reason code: a verdict on
// its certificate (mtls.ReasonCode), or this end's own refusals.
func identityCode(err error) string {
	if code := mtls.ReasonCode(err); code != "" {
		return code
	}
	switch {
	case errors.Is(err, errNotService):
		return flow.ReasonNotService
	case errors.Is(err, errNotReady):
		return flow.ReasonNotReady
	case errors.Is(err, errUnknownService):
		return flow.ReasonUnknownService
	}
	return flow.ReasonHandshake
}

// interimLoop writes a Traffic record for every live inbound connection
// each FlowInterval, so a long-lived connection is visible, and its bytes
// counted, while it lasts, and the summaries of the refused handshakes
// held back since the last.
func (m *Mesh) interimLoop() {
	tick := time.NewTicker(m.cfg.FlowInterval)
	defer tick.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-tick.C:
		}
		m.flushRefusals()
		m.mu.Lock()
		live := make([]*record, 0, len(m.inStreams))
		for s := range m.inStreams {
			live = append(live, s.rec)
		}
		m.mu.Unlock()
		for _, r := range live {
			m.emitInterim(r)
		}
	}
}
