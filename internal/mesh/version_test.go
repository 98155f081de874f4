package mesh

import (
	"testing"

	"moat/internal/flow"
)

// beforeV2 makes an agent speak as agents did before tunnel header
// version 2: it offers and accepts only moat-tunnel/1 and reads only
// version 1 headers.
func beforeV2(c *Config) { c.protocols = []string{alpnTunnelV1} }

// beforeV3 makes an agent speak as agents did before version 3: it
// records the connection IDs sources send as they are.
func beforeV3(c *Config) { c.protocols = []string{alpnTunnelV2, alpnTunnelV1} }

// TestMixedVersionFleet upgrades a fleet node by node: an upgraded agent
// and one from before version 2 call each other in both directions, the
// tunnel negotiating version 1 by ALPN; with one from before version 3,
// version 2, whose connection IDs the two share only when the old one is
// the destination (an upgraded destination records the ID derived from
// the caller's identity, whatever the version); two upgraded agents speak
// version 3, connection IDs and reason codes included.
func TestMixedVersionFleet(t *testing.T) {
	for _, c := range []struct {
		name         string
		src, dst     func(*Config)
		wantV        int
		wantSharedID bool
	}{
		{"upgraded source, old destination", nil, beforeV2, headerV1, false},
		{"old source, upgraded destination", beforeV2, nil, headerV1, false},
		{"upgraded source, destination before version 3", nil, beforeV3, headerV2, true},
		{"source before version 3, upgraded destination", beforeV3, nil, headerV2, false},
		{"both upgraded", nil, nil, headerV3, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			app := startApp(t, echo)
			opt := func(o func(*Config)) []func(*Config) {
				if o == nil {
					return nil
				}
				return []func(*Config){o}
			}
			b := f.newAgent(t, "node-b", []Service{{Name: "api", Port: 8080, AppAddr: app}, {Name: "cache", Port: 6379, AppAddr: app}}, opt(c.dst)...)
			a := f.newAgent(t, "node-a", []Service{{Name: "frontend", Port: 3000, AppAddr: app,
				Upstreams: []Upstream{{Service: "api", Port: 8080}, {Service: "cache", Port: 6379}}}}, opt(c.src)...)
			if got, err := call(a.local(t, "frontend", "api"), "hello"); err != nil || got != "hello" {
				t.Fatalf("frontend → api: %q, %v", got, err)
			}
			in := b.flows.waitFor(t, "the destination's record", isFlow(flow.DirectionInbound, "frontend", "api"))
			out := a.flows.waitFor(t, "the source's record", isFlow(flow.DirectionOutbound, "frontend", "api"))
			if in.Verdict() != flow.VerdictAllow || out.Verdict() != flow.VerdictAllow {
				t.Fatalf("verdicts %s / %s", in.Verdict(), out.Verdict())
			}
			if shared := in.ConnectionInfo.UID == out.ConnectionInfo.UID; shared != c.wantSharedID {
				t.Fatalf("connection IDs %s / %s: shared %v, want %v", in.ConnectionInfo.UID, out.ConnectionInfo.UID, shared, c.wantSharedID)
			}
			a.m.mu.Lock()
			for _, e := range a.m.pool {
				if e.cur.hdr != c.wantV {
					t.Errorf("tunnel speaks header version %d, want %d", e.cur.hdr, c.wantV)
				}
			}
			a.m.mu.Unlock()

			t.Log("a refusal crosses too, with its rule")
			if got, err := call(a.local(t, "frontend", "cache"), "q"); err == nil && got == "q" {
				t.Fatal("frontend → cache was let through")
			}
			refused := a.flows.waitFor(t, "the refusal at the source", func(r flow.Record) bool {
				return isFlow(flow.DirectionOutbound, "frontend", "cache")(r) && r.Verdict() == flow.VerdictDeny
			})
			if refused.FirewallRule == nil || refused.FirewallRule.Name != "default-deny" || refused.Unmapped.ReasonCode != flow.ReasonPolicyDenied {
				t.Fatalf("refusal recorded as rule %+v, code %q", refused.FirewallRule, refused.Unmapped.ReasonCode)
			}
		})
	}
}
