package agent

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"moat/internal/api"
	"moat/internal/egress"
	"moat/internal/firewall"
	"moat/internal/policy"
	"moat/internal/sockdiag"
)

// EgressConfig is the node's way out of the mesh (see package egress).
type EgressConfig struct {
	// Proxy is the loopback HTTP CONNECT proxy's address (apps set
	// HTTPS_PROXY to it); "" runs none.
	Proxy string
	// SNI is the loopback TLS listener's address, which takes the host
	// from the ClientHello; "" runs none.
	SNI string
	// SNIPort is where SNI connections go; zero means 443.
	SNIPort int
	// Direct lets this node connect out itself (its firewall admits the
	// pins); otherwise egress goes through the Gateway.
	Direct bool
	// Gateway is the service the fleet's egress gateway is registered as;
	// "" means "egress".
	Gateway string
	// ServeGateway, when set, makes this node the egress gateway: the
	// local service of that name is served by the agent itself.
	ServeGateway string
	// Resolver, when set, is the DNS server (host:port) the egress point
	// asks; "" means the system's resolver.
	Resolver string
	// IdleTimeout closes a connection the egress point relays once no
	// byte moved either way for that long; zero means an hour.
	IdleTimeout time.Duration
}

// newEgress builds the egress point (when this node connects out) and the
// proxy (when it serves one).
func (a *Agent) newEgress() error {
	ec := a.cfg.Egress
	if ec.Direct || ec.ServeGateway != "" {
		pc := egress.PointConfig{
			Node: a.cfg.Node, TrustDomain: a.td, Policy: a.policyTable, Flows: a.flows(),
			IdleTimeout: ec.IdleTimeout, Now: a.cfg.Now, Logger: a.log.With("part", "egress"),
		}
		if a.fw != nil {
			pc.Pin, pc.Control = a.fw.Pin, firewall.Control
		}
		if ec.Resolver != "" {
			addr := ec.Resolver
			pc.Resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			}}
		}
		p, err := egress.NewPoint(pc)
		if err != nil {
			return err
		}
		a.point = p
	}
	// The proxy runs on every node: its CONNECT and SNI listeners when
	// configured, and the listeners of external upstreams.
	pc := egress.ProxyConfig{
		Node: a.cfg.Node, TrustDomain: a.td, ConnectAddr: ec.Proxy, SNIAddr: ec.SNI, SNIPort: ec.SNIPort,
		Policy: a.policyTable, PeerUID: sockdiag.PeerUID, Callers: a.callers, Flows: a.flows(),
		Now: a.cfg.Now, Logger: a.log.With("part", "egress"),
	}
	if ec.Direct {
		pc.Point = a.point
	} else {
		pc.Gateway = a.dialEgressGateway
	}
	p, err := egress.NewProxy(pc)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	a.proxy = p
	return nil
}

// callers lists the local services a uid may act as: those registered with
// it, and those registered without a uid unless the node requires one.
func (a *Agent) callers(uid int) []string {
	var out []string
	for _, r := range a.LocalServices() {
		if r.UID != nil && *r.UID == uid || r.UID == nil && !a.cfg.RequireUID {
			out = append(out, r.Name)
		}
	}
	return out
}

// dialEgressGateway opens a mesh stream as src to the egress gateway.
func (a *Agent) dialEgressGateway(ctx context.Context, src string) (net.Conn, error) {
	gw := a.cfg.Egress.Gateway
	if gw == "" {
		gw = "egress"
	}
	reg, ok := a.Registration(gw)
	if !ok {
		return nil, fmt.Errorf("no egress gateway: service %q is not registered", gw)
	}
	return a.mesh.Dial(ctx, src, gw, reg.Port)
}

// recheckEgress closes the egress connections this node's point relays
// that the intentions in force no longer allow, or whose names no longer
// resolve to their addresses, each time the intentions change: in a loop
// of its own, so that the lookups hold back no update.
func (a *Agent) recheckEgress(ctx context.Context) error {
	if a.point == nil {
		return nil
	}
	for {
		changed := a.polChanged.C()
		a.point.Recheck(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

// policyTable is the intentions the mesh applies now (nil before any).
func (a *Agent) policyTable() *policy.Table { return a.pol.Load() }

// EgressProxy returns the node's egress proxy (nil when it runs none).
func (a *Agent) EgressProxy() *egress.Proxy { return a.proxy }

// runEgress serves the egress proxy and keeps the listeners of the local
// services' external upstreams in step with the registry.
func (a *Agent) runEgress(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- a.proxy.Run(ctx) }()
	last := ""
	for {
		updated := a.Updates()
		if a.Synced() {
			ext := a.externalUpstreams()
			if err := a.proxy.SetExternal(ext); err != nil {
				if msg := err.Error(); msg != last {
					a.log.Error("egress upstream listener", "err", err)
					last = msg
				}
			} else {
				last = ""
			}
		}
		select {
		case <-ctx.Done():
			return <-done
		case err := <-done:
			return err
		case <-updated:
		}
	}
}

// externalUpstreams lists the local services' upstreams outside the mesh.
func (a *Agent) externalUpstreams() []egress.External {
	var out []egress.External
	for _, r := range a.LocalServices() {
		for _, u := range r.Upstreams {
			if u.External == "" {
				continue
			}
			host, port, err := api.ExternalHostPort(u.External)
			if err != nil {
				continue // the server and the cache refuse these
			}
			out = append(out, egress.External{Service: r.Name, UID: r.UID, Host: host, Port: port,
				LocalAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(u.LocalPort))})
		}
	}
	return out
}
