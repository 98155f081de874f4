package agent

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/netip"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/api"
	"moat/internal/flow"
	"moat/internal/identity"
)

// securityEvent records a refused access attempt as a flow record, shipped
// like the mesh's (detection matches on the reason code). The source is
// verified, the certificate's SPIFFE ID (verified) or else the
// administrator the control plane authenticated and relayed: a
// certificate that did not verify names an identity it only claims,
// recorded as such (flow.Moat.Claimed), where no key reads it.
//
// The records of one source (the administrator's address, as the control
// plane relays it) and reason code pass the access gate (flow.Gate), as
// the mesh's refused handshakes do theirs: a source refused as fast as it
// connects has its first refusals written in full and the rest summarised
// at the next flush (summarise), so a flood fills neither the spool nor
// the node's flow quota at the control plane.
func (x *access) securityEvent(hello api.RelayHello, cs tls.ConnectionState, verified spiffeid.ID, code, why, grant string) {
	now := x.a.cfg.Now()
	r := flow.Header(flow.ClassNetworkActivity, flow.ActivityRefuse, "moat-access", now)
	src, claimed, account := hello.Admin, "", ""
	if !verified.IsZero() {
		src = verified.String()
	}
	if len(cs.PeerCertificates) > 0 {
		if id, err := identity.LeafID(cs.PeerCertificates[0]); err == nil && verified.IsZero() {
			claimed = id.String()
		}
		// The account the certificate names, beside the name: detection
		// counts the refusals of one account together with the control
		// plane's, and apart from another account of the same name.
		if marks, err := identity.ReadAdminMarks(cs.PeerCertificates[0]); err == nil {
			account = marks.Account
		}
	}
	r.SrcEndpoint = &flow.Endpoint{UID: src, Name: hello.Remote}
	r.DstEndpoint = &flow.Endpoint{Name: x.a.cfg.Node}
	r.ConnectionInfo = &flow.ConnectionInfo{UID: hello.Session, ProtocolName: "tcp", DirectionID: flow.DirectionInbound, Direction: "Inbound"}
	r.Unmapped = &flow.Moat{Verdict: flow.VerdictDeny, Reason: why, ReasonCode: code, Kind: "access", Node: x.a.cfg.Node, Account: account, Claimed: claimed}
	r.SeverityID, r.Severity = flow.SeverityHigh, "High"
	if !x.refusals.Allow(remoteAddr(hello.Remote), code, r, now) {
		return
	}
	x.a.log.Warn("access: refused", "admin", hello.Admin, "grant", grant, "code", code, "reason", why)
	x.writeRefusal(r)
}

func (x *access) writeRefusal(r flow.Record) {
	if err := x.a.flows().Write(r); err != nil {
		x.a.log.Warn("access: security event not written", "err", err)
	}
}

// remoteAddr is the IP of the address the control plane relays as the
// administrator's ("host:port"), or the zero Addr, which the gate counts
// as one source.
func remoteAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	a, _ := netip.ParseAddr(remote)
	return a.Unmap()
}

// summarise writes, every FlowInterval until ctx ends, the summaries of
// the refusals the gate held back since the last: the last refusal of each
// source and reason, with how many it stands for (flow.Moat.Suppressed),
// then a count by reason of the sources past those summarised one by one.
func (x *access) summarise(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-x.a.cfg.After(x.a.cfg.FlowInterval):
		}
		for _, h := range x.refusals.Flush() {
			r := h.Last
			if h.Client {
				r.Unmapped.Reason = fmt.Sprintf("%s; %d such connections of this source were counted, not recorded one by one (this is the last)", r.Unmapped.Reason, h.N)
			} else {
				r = flow.Header(flow.ClassNetworkActivity, flow.ActivityRefuse, "moat-access", x.a.cfg.Now())
				r.DstEndpoint = &flow.Endpoint{Name: x.a.cfg.Node}
				r.Unmapped = &flow.Moat{Verdict: flow.VerdictDeny, ReasonCode: h.Kind, Kind: "access", Node: x.a.cfg.Node,
					Reason: fmt.Sprintf("%d access connections refused (%s) of sources past the %d summarised one by one were counted, not recorded", h.N, h.Kind, flow.GateMaxSummaries)}
				r.SeverityID, r.Severity = flow.SeverityHigh, "High"
			}
			r.Unmapped.Suppressed = h.N
			x.a.log.Warn("access: refusals summarised", "code", h.Kind, "suppressed", h.N, "reason", r.Unmapped.Reason)
			x.writeRefusal(r)
		}
	}
}
