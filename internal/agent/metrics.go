package agent

import (
	"moat/internal/firewall"
	"moat/internal/flow"
	"moat/internal/metrics"
)

// collector reports the agent's state at scrape time: the mesh's counters,
// flow delivery, and each local SVID's expiry.
type collector struct {
	a *Agent

	handshakes, hsFailures, tunnels, conns, refused, cut, plaintext *metrics.Desc
	svidExpiry, renewals, reattests                                 *metrics.Desc
	listenFail, listenersFailing, uidRefused, acceptFail, shed      *metrics.Desc
	tunnelsShed, streamsShed, workloadShed, appUnreachable          *metrics.Desc
	streamBuffer                                                    *metrics.Desc
	auditSize, auditInconsistent, rollbacks                         *metrics.Desc
	fwBypasses                                                      *metrics.Desc
}

func newCollector(a *Agent) *collector {
	node := metrics.Labels{"node": a.cfg.Node}
	c := func(name, help string, labels ...string) *metrics.Desc {
		return metrics.NewDesc(name, help, metrics.CounterValue, node, labels...)
	}
	g := func(name, help string, labels ...string) *metrics.Desc {
		return metrics.NewDesc(name, help, metrics.GaugeValue, node, labels...)
	}
	return &collector{
		a:                 a,
		handshakes:        c("moat_mesh_handshakes_total", "Completed mutual-TLS handshakes of mesh tunnels, by side.", "side"),
		hsFailures:        c("moat_mesh_handshake_failures_total", "Failed mesh handshakes, both sides."),
		tunnels:           g("moat_mesh_tunnels_open", "Outbound mesh tunnels open now."),
		conns:             c("moat_mesh_connections_total", "Connections carried by the mesh, by direction.", "direction"),
		refused:           c("moat_mesh_refused_total", "Inbound connections refused by policy or identity."),
		cut:               c("moat_mesh_cut_total", "Live connections closed by a policy or revocation change."),
		plaintext:         c("moat_mesh_plaintext_total", "Plaintext connections accepted by PERMISSIVE services."),
		svidExpiry:        g("moat_svid_expiry_timestamp_seconds", "When each local service's current SVID expires.", "service"),
		renewals:          c("moat_svid_renewals_total", "SVID renewals by this agent (node and services)."),
		listenFail:        c("moat_mesh_listener_bind_failures_total", "Failed attempts to bind a local listener (upstream or plaintext port); each is retried with backoff."),
		listenersFailing:  g("moat_mesh_listeners_failing", "Local listeners not bound now (address taken or refused)."),
		reattests:         c("moat_agent_reattestations_total", "New node certificates obtained without the old one (expired or refused), by method: node-key or join-token.", "method"),
		uidRefused:        c("moat_mesh_uid_refused_total", "Local connections to an upstream port refused because the caller's uid is not the service's."),
		acceptFail:        c("moat_mesh_accept_failures_total", "Failed accepts on the mesh port and local listeners (out of file descriptors, say); each is retried with backoff."),
		shed:              c("moat_mesh_handshakes_shed_total", "Connections to the mesh port closed at once because too many were in their handshake (64 from one address or IPv6 /64, 4096 in all)."),
		tunnelsShed:       c("moat_mesh_tunnels_shed_total", "Inbound mesh tunnels closed once their handshake ended because too many were held (1024 from one address, 16384 in all)."),
		streamsShed:       c("moat_mesh_streams_shed_total", "Inbound mesh streams shed, by reason: header_wait (reset at once: too many waiting for their tunnel header, 1024 from one address, 8192 in all), buffer (reset: the stream buffer was full and their caller held the most of it), app_dials (refused: too many connections to apps being made for their caller, 256, or 4096 in all), streams (refused: too many streams open from their caller, one per 4 KiB of stream_buffer, 16384 by default).", "reason"),
		streamBuffer:      g("moat_mesh_stream_buffer_bytes", "What inbound mesh streams hold of their callers' bytes, received and not yet delivered to their apps (bounded by stream_buffer)."),
		appUnreachable:    c("moat_mesh_app_unreachable_total", "Allowed inbound mesh streams whose service's app could not be reached (each recorded; logged at most once a minute per service)."),
		workloadShed:      c("moat_agent_workload_connections_shed_total", "Connections to the Workload API socket closed at once because their uid held 256 already, or 1024 were held in all."),
		auditSize:         g("moat_agent_audit_witnessed_entries", "Entries of the control plane's audit log covered by the newest checkpoint this agent checked."),
		auditInconsistent: c("moat_agent_audit_inconsistent_total", "Audit checkpoints refused because the log no longer extends the one witnessed (cut back or rewritten)."),
		rollbacks:         c("moat_agent_rollbacks_refused_total", "Watch frames and cached state refused because they are older than the state held (a revocation list, a policy or a snapshot's store revision below the highest taken)."),
		fwBypasses:        g("moat_firewall_bypass_rules", "Rules of other nftables tables that take packets round the host firewall, by kind: mark (sets moat's mark; the egress pins are withheld) or notrack (beyond loopback).", "kind"),
	}
}

func (c *collector) Describe() []*metrics.Desc {
	return []*metrics.Desc{c.handshakes, c.hsFailures, c.tunnels, c.conns, c.refused, c.cut, c.plaintext,
		c.svidExpiry, c.renewals, c.reattests, c.listenFail, c.listenersFailing, c.uidRefused, c.acceptFail, c.shed, c.tunnelsShed, c.streamsShed, c.streamBuffer, c.appUnreachable, c.workloadShed, c.auditSize, c.auditInconsistent, c.rollbacks, c.fwBypasses}
}

func (c *collector) Collect(emit metrics.Emit) {
	st := c.a.mesh.Stats()
	emit(c.handshakes, float64(st.ClientHandshakes), "client")
	emit(c.handshakes, float64(st.ServerHandshakes), "server")
	emit(c.hsFailures, float64(st.HandshakeFailures))
	emit(c.tunnels, float64(st.TunnelsOpen))
	emit(c.conns, float64(st.StreamsOut), "outbound")
	emit(c.conns, float64(st.StreamsIn), "inbound")
	emit(c.refused, float64(st.Refused))
	emit(c.cut, float64(st.Cut))
	emit(c.plaintext, float64(st.Plaintext))
	emit(c.listenFail, float64(st.ListenFailures))
	emit(c.listenersFailing, float64(st.ListenersFailing))
	emit(c.uidRefused, float64(st.UIDRefused))
	emit(c.acceptFail, float64(st.AcceptFailures))
	emit(c.shed, float64(st.HandshakesShed))
	emit(c.tunnelsShed, float64(st.TunnelsShed))
	emit(c.streamsShed, float64(st.StreamsShed), "header_wait")
	emit(c.streamsShed, float64(st.BufferShed), "buffer")
	emit(c.streamsShed, float64(st.DialsShed), "app_dials")
	emit(c.streamsShed, float64(st.CallerStreamsShed), "streams")
	emit(c.streamBuffer, float64(st.StreamBuffered))
	emit(c.appUnreachable, float64(st.AppUnreachable))
	emit(c.workloadShed, float64(c.a.workloadShedCount.Load()))
	c.a.mu.RLock()
	for name, s := range c.a.svids {
		if s.cert != nil {
			emit(c.svidExpiry, float64(s.cert.Leaf.NotAfter.Unix()), name)
		}
	}
	c.a.mu.RUnlock()
	emit(c.renewals, float64(c.a.renewals.Load()))
	emit(c.reattests, float64(c.a.reattestKey.Load()), methodNodeKey)
	emit(c.reattests, float64(c.a.reattestToken.Load()), methodJoinToken)
	size, bad := c.a.AuditWitnessed()
	emit(c.auditSize, float64(size))
	emit(c.auditInconsistent, float64(bad))
	emit(c.rollbacks, float64(c.a.RollbacksRefused()))
	if c.a.fw != nil {
		n := map[firewall.BypassKind]int{}
		for _, b := range c.a.fw.Bypasses() {
			n[b.Kind]++
		}
		for _, k := range []firewall.BypassKind{firewall.BypassMark, firewall.BypassNotrack} {
			emit(c.fwBypasses, float64(n[k]), string(k))
		}
	}
}

// registerMetrics registers the agent's collector and the flow-derived
// counters (decisions by rule, bytes, refused handshakes by reason).
func (a *Agent) registerMetrics(reg *metrics.Registry) (flow.Writer, error) {
	for _, c := range []metrics.Collector{newCollector(a), a.spool.Collector(), a.shipper.Collector()} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	fm, err := flow.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	return fm, nil
}
