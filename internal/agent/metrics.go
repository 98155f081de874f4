package agent

import (
	"github.com/prometheus/client_golang/prometheus"

	"moat/internal/flow"
)

// collector reports the agent's state at scrape time: the mesh's counters,
// flow delivery, and each local SVID's expiry.
type collector struct {
	a *Agent

	handshakes, hsFailures, tunnels, conns, refused, cut, plaintext *prometheus.Desc
	svidExpiry, renewals, reattests                                 *prometheus.Desc
	listenFail, listenersFailing, uidRefused, acceptFail            *prometheus.Desc
	auditSize, auditInconsistent                                    *prometheus.Desc
}

func newCollector(a *Agent) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, prometheus.Labels{"node": a.cfg.Node})
	}
	return &collector{
		a:                 a,
		handshakes:        d("moat_mesh_handshakes_total", "Completed mutual-TLS handshakes of mesh tunnels, by side.", "side"),
		hsFailures:        d("moat_mesh_handshake_failures_total", "Failed mesh handshakes, both sides."),
		tunnels:           d("moat_mesh_tunnels_open", "Outbound mesh tunnels open now."),
		conns:             d("moat_mesh_connections_total", "Connections carried by the mesh, by direction.", "direction"),
		refused:           d("moat_mesh_refused_total", "Inbound connections refused by policy or identity."),
		cut:               d("moat_mesh_cut_total", "Live connections closed by a policy or revocation change."),
		plaintext:         d("moat_mesh_plaintext_total", "Plaintext connections accepted by PERMISSIVE services."),
		svidExpiry:        d("moat_svid_expiry_timestamp_seconds", "When each local service's current SVID expires.", "service"),
		renewals:          d("moat_svid_renewals_total", "SVID renewals by this agent (node and services)."),
		listenFail:        d("moat_mesh_listener_bind_failures_total", "Failed attempts to bind a local listener (upstream or plaintext port); each is retried with backoff."),
		listenersFailing:  d("moat_mesh_listeners_failing", "Local listeners not bound now (address taken or refused)."),
		reattests:         d("moat_agent_reattestations_total", "New node certificates obtained without the old one (expired or refused), by method: node-key or join-token.", "method"),
		uidRefused:        d("moat_mesh_uid_refused_total", "Local connections to an upstream port refused because the caller's uid is not the service's."),
		acceptFail:        d("moat_mesh_accept_failures_total", "Failed accepts on the mesh port and local listeners (out of file descriptors, say); each is retried with backoff."),
		auditSize:         d("moat_agent_audit_witnessed_entries", "Entries of the control plane's audit log covered by the newest checkpoint this agent checked."),
		auditInconsistent: d("moat_agent_audit_inconsistent_total", "Audit checkpoints refused because the log no longer extends the one witnessed (cut back or rewritten)."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.handshakes, c.hsFailures, c.tunnels, c.conns, c.refused, c.cut, c.plaintext,
		c.svidExpiry, c.renewals, c.reattests, c.listenFail, c.listenersFailing, c.uidRefused, c.acceptFail, c.auditSize, c.auditInconsistent} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	st := c.a.mesh.Stats()
	counter(c.handshakes, float64(st.ClientHandshakes), "client")
	counter(c.handshakes, float64(st.ServerHandshakes), "server")
	counter(c.hsFailures, float64(st.HandshakeFailures))
	gauge(c.tunnels, float64(st.TunnelsOpen))
	counter(c.conns, float64(st.StreamsOut), "outbound")
	counter(c.conns, float64(st.StreamsIn), "inbound")
	counter(c.refused, float64(st.Refused))
	counter(c.cut, float64(st.Cut))
	counter(c.plaintext, float64(st.Plaintext))
	counter(c.listenFail, float64(st.ListenFailures))
	gauge(c.listenersFailing, float64(st.ListenersFailing))
	counter(c.uidRefused, float64(st.UIDRefused))
	counter(c.acceptFail, float64(st.AcceptFailures))
	c.a.mu.RLock()
	for name, s := range c.a.svids {
		if s.cert != nil {
			gauge(c.svidExpiry, float64(s.cert.Leaf.NotAfter.Unix()), name)
		}
	}
	c.a.mu.RUnlock()
	counter(c.renewals, float64(c.a.renewals.Load()))
	counter(c.reattests, float64(c.a.reattestKey.Load()), methodNodeKey)
	counter(c.reattests, float64(c.a.reattestToken.Load()), methodJoinToken)
	size, bad := c.a.AuditWitnessed()
	gauge(c.auditSize, float64(size))
	counter(c.auditInconsistent, float64(bad))
}

// registerMetrics registers the agent's collector and the flow-derived
// counters (decisions by rule, bytes, refused handshakes by reason).
func (a *Agent) registerMetrics(reg prometheus.Registerer) (flow.Writer, error) {
	for _, c := range []prometheus.Collector{newCollector(a), a.spool.Collector(), a.shipper.Collector()} {
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
