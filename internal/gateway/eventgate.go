package gateway

import (
	"fmt"
	"time"

	"moat/internal/flow"
)

// eventGate bounds the security events the gateway writes (flow.Gate): a
// client answered 429, 400 or 403 as fast as it can send has its first
// events written in full and the rest summarised at each flush.
type eventGate struct{ gate flow.Gate[event] }

// eventClientBurst is how many events of one client and kind are written
// in full before the gate summarises.
const eventClientBurst = flow.GateClientBurst

// allow reports whether ev is written now; when not, it is counted for the
// next flush.
func (g *eventGate) allow(ev *event, now time.Time) bool {
	return g.gate.Allow(ev.client, ev.kind, *ev, now)
}

// flush returns the summaries of what was left out since the last flush.
func (g *eventGate) flush() []event {
	var out []event
	for _, h := range g.gate.Flush() {
		if !h.Client {
			out = append(out, event{kind: h.Kind, suppressed: h.N, blocked: true,
				reason: fmt.Sprintf("%d %s events from clients past the %d summarised one by one were counted, not recorded", h.N, h.Kind, flow.GateMaxSummaries)})
			continue
		}
		ev := h.Last
		ev.suppressed = h.N
		ev.reason = fmt.Sprintf("%s; %d such events from this client were counted, not recorded one by one (this is the last)", ev.reason, h.N)
		out = append(out, ev)
	}
	return out
}
