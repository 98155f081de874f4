//go:build linux

package firewall

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"moat/internal/flow"
)

// ProductName names the firewall in flow records.
const ProductName = "moat-firewall"

// recorder turns log events into flow records, once per connection
// attempt within dedupWindow.
type recorder struct {
	m    *Manager
	seen map[string]time.Time // guarded by being used from Log.Run's goroutine only
}

const (
	dedupWindow = 10 * time.Second
	dedupMax    = 4096
)

func newRecorder(m *Manager) *recorder { return &recorder{m: m, seen: map[string]time.Time{}} }

func (r *recorder) record(ev logEvent) {
	now := r.m.cfg.Now()
	key := fmt.Sprint(ev.in, ev.protoNum, ev.src.Addr(), ev.dst, ev.src.Port())
	if t, ok := r.seen[key]; ok && now.Sub(t) < dedupWindow {
		return
	}
	if len(r.seen) >= dedupMax {
		for k, t := range r.seen {
			if now.Sub(t) >= dedupWindow {
				delete(r.seen, k)
			}
		}
		if len(r.seen) >= dedupMax {
			r.seen = map[string]time.Time{}
		}
	}
	r.seen[key] = now
	if r.m.cfg.Flows == nil {
		return
	}
	if err := r.m.cfg.Flows.Write(ev.toRecord(now, r.m.cfg.Node, r.m.cfg.Owner)); err != nil {
		r.m.log.Warn("firewall: record not written", "err", err)
	}
}

func (ev logEvent) toRecord(now time.Time, node string, owner func(int) string) flow.Record {
	activity := flow.ActivityRefuse
	verdict, action, disp := flow.VerdictDeny, flow.ActionDenied, flow.DispositionBlocked
	what := "dropped"
	if ev.action == "audit" {
		activity, verdict, action, disp = flow.ActivityOpen, flow.VerdictAudit, flow.ActionAllowed, flow.DispositionLogged
		what = "would drop (audit mode)"
	}
	r := flow.Header(flow.ClassNetworkActivity, activity, ProductName, now)
	dir, dirID, caption := "outbound", flow.DirectionOutbound, "Outbound"
	if ev.in {
		dir, dirID, caption = "inbound", flow.DirectionInbound, "Inbound"
	}
	proto := string(ev.proto)
	if proto == "" {
		proto = "ip/" + strconv.Itoa(ev.protoNum)
	}
	r.SecurityControl()
	r.ActionID, r.DispositionID = action, disp
	r.Action, r.Disposition = map[int]string{flow.ActionAllowed: "Allowed", flow.ActionDenied: "Denied"}[action], map[int]string{flow.DispositionBlocked: "Blocked", flow.DispositionLogged: "Logged"}[disp]
	r.SrcEndpoint = &flow.Endpoint{IP: addrString(ev.src.Addr()), Port: int(ev.src.Port())}
	r.DstEndpoint = &flow.Endpoint{IP: addrString(ev.dst.Addr()), Port: int(ev.dst.Port())}
	if !ev.in && ev.uid >= 0 && owner != nil {
		r.SrcEndpoint.SvcName = owner(ev.uid)
	}
	r.ConnectionInfo = &flow.ConnectionInfo{ProtocolName: proto, ProtocolNum: ev.protoNum, DirectionID: dirID, Direction: caption}
	r.FirewallRule = &flow.Rule{Name: "host-firewall-default"}
	r.Message = fmt.Sprintf("host firewall %s %s %s %s → %s", what, dir, proto, ev.src, ev.dst)
	r.Unmapped = &flow.Moat{Verdict: verdict, Kind: "firewall", Node: node, ReasonCode: flow.ReasonFirewall,
		Reason: fmt.Sprintf("no %s rule of the host firewall admits %s to %s", dir, proto, ev.dst)}
	if ev.uid >= 0 && !ev.in {
		r.Unmapped.Reason += fmt.Sprintf(" (local uid %d)", ev.uid)
	}
	return r
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
