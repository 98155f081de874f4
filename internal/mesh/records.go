package mesh

import (
	"net"
	"strconv"
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
)

// record gathers one connection's facts until it ends.
type record struct {
	start                 time.Time
	dir                   int
	srcID, dstID          string
	srcSvc, dstSvc        string
	srcAddr, dstAddr      net.Addr
	dstPort               int // the service port asked for; records show it as the destination port
	in, out               int64
	verdict, rule, reason string
	mode, kind            string
	claimed               string // unverified peer ID of a failed handshake
	tls                   uint16
	activity              int
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

// emit writes r as an OCSF Network Activity record.
func (m *Mesh) emit(r *record) {
	end := m.now()
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
	rec := flow.Header(flow.ClassNetworkActivity, activity, "moat-mesh", end)
	rec.SrcEndpoint = endpoint(r.srcID, r.srcSvc, r.srcAddr, 0)
	rec.DstEndpoint = endpoint(r.dstID, r.dstSvc, r.dstAddr, r.dstPort)
	if r.claimed != "" {
		peer := rec.SrcEndpoint
		if r.dir == outboundDir {
			peer = rec.DstEndpoint
		}
		peer.Name = r.claimed
	}
	dir := "Inbound"
	if r.dir == outboundDir {
		dir = "Outbound"
	}
	rec.ConnectionInfo = &flow.ConnectionInfo{ProtocolName: "tcp", ProtocolNum: 6, DirectionID: r.dir, Direction: dir}
	rec.Traffic = &flow.Traffic{BytesIn: r.in, BytesOut: r.out, Bytes: r.in + r.out}
	rec.StartTime = flow.Millis(r.start)
	rec.EndTime = flow.Millis(end)
	rec.Duration = end.Sub(r.start).Milliseconds()
	if r.kind != kindHandshake { // a failed handshake negotiated nothing
		rec.TLS = &flow.TLS{Version: mtls.VersionName(r.tls)}
	}
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
	rec.Unmapped = &flow.Moat{Verdict: r.verdict, Reason: r.reason, Mode: r.mode, Node: m.cfg.Node, Kind: r.kind}
	if err := m.flows.Write(rec); err != nil {
		m.log.Warn("mesh: flow record lost", logErr, err.Error())
	}
}

// handshakeRecord records a failed TLS handshake. claimed is the SPIFFE ID
// the refused peer presented, unverified (it goes in the endpoint's name,
// never its uid), or "".
func (m *Mesh) handshakeRecord(start time.Time, dir int, src, dst net.Addr, srcID, dstID, claimed string, err error) {
	r := m.newRecord(start, dir)
	r.srcAddr, r.dstAddr, r.srcID, r.dstID, r.claimed = src, dst, srcID, dstID, claimed
	r.verdict, r.reason, r.kind = flow.VerdictDeny, err.Error(), kindHandshake
	m.emit(r)
}
