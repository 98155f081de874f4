package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"moat/internal/api"
	"moat/internal/egress"
	"moat/internal/mesh"
	"moat/internal/policy"
)

// newMesh builds the node's data plane: the inbound mesh port on MeshAddr
// and, once the registry is known, a loopback listener per upstream.
func (a *Agent) newMesh() (*mesh.Mesh, error) {
	return mesh.New(mesh.Config{
		Node:          a.cfg.Node,
		Listen:        a.cfg.MeshAddr,
		TrustDomain:   a.td,
		Trust:         a.trust,
		Identities:    a,
		Flows:         a.flows(),
		Resolve:       a.resolve,
		Now:           a.cfg.Now,
		Logger:        a.log.With("part", "mesh"),
		FlowInterval:  a.cfg.FlowInterval,
		StreamBuffer:  a.cfg.StreamBuffer,
		HealthChanged: a.wakeHealth,
	})
}

// wakeHealth has the health report sent now, without waiting.
func (a *Agent) wakeHealth() {
	select {
	case a.healthWake <- struct{}{}:
	default:
	}
}

// resolve finds the mesh address of the agent that runs service.
func (a *Agent) resolve(service string) (string, error) {
	reg, ok := a.Registration(service)
	if !ok {
		return "", fmt.Errorf("agent: service %q is not registered", service)
	}
	addr, ok := a.NodeAddr(reg.Node)
	if !ok {
		return "", fmt.Errorf("agent: node %q of service %q has not joined", reg.Node, service)
	}
	return addr, nil
}

// runMesh serves the mesh and keeps it in step with the watch stream:
// services and upstreams from the registry, intentions from the policy.
// Until the first snapshot, the mesh has no policy and denies everything.
func (a *Agent) runMesh(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- a.mesh.Run(ctx) }()
	applied := ""
	for {
		updated := a.Updates()
		if a.Synced() {
			// Each service and listener stands alone: what fails is
			// reported (and retried by the mesh), the rest applies.
			if err := a.mesh.SetServices(a.meshServices()); err != nil {
				a.log.Error("mesh services", "err", err)
			}
			a.wakeHealth()
			p := a.Policy()
			if key := fmt.Sprint(p.Version, len(p.YAML)); key != applied {
				t, err := policy.ParseDocument([]byte(p.YAML), a.td.Name())
				switch {
				case p.YAML == "":
					a.pol.Store(nil)
					a.polChanged.Notify()
					a.mesh.SetPolicy(nil)
					applied = key
				case err != nil:
					// The server validated it; a document this agent cannot
					// read keeps the previous policy rather than opening up.
					a.log.Error("policy from the control plane does not parse; keeping the previous one", "version", p.Version, "err", err)
				default:
					a.pol.Store(t)
					a.polChanged.Notify()
					a.mesh.SetPolicy(t)
					applied = key
					a.log.Info("policy applied", "version", p.Version, "digest", t.Version())
				}
			}
			a.meshSynced.Store(true)
			a.meshApplied.Notify()
		}
		select {
		case <-ctx.Done():
			return <-done
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		case <-updated:
		}
	}
}

// meshServices turns this node's registrations into mesh services. An
// upstream whose service is not registered yet waits for it.
func (a *Agent) meshServices() []mesh.Service {
	var out []mesh.Service
	meshHost, _, _ := net.SplitHostPort(a.cfg.MeshAddr)
	for _, r := range a.LocalServices() {
		s := mesh.Service{Name: r.Name, Port: r.Port, AppAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Port)), UID: r.UID}
		if r.PlaintextPort != 0 {
			s.PlaintextAddr = net.JoinHostPort(meshHost, strconv.Itoa(r.PlaintextPort))
		}
		if r.Name == a.cfg.Egress.ServeGateway && a.point != nil {
			s.Handler = &egress.Gateway{Point: a.point, Service: r.Name}
		}
		a.warnNoUID(r)
		for _, u := range r.Upstreams {
			dst, ok := a.Registration(u.Service)
			if !ok {
				continue
			}
			s.Upstreams = append(s.Upstreams, mesh.Upstream{
				Service: u.Service, Port: dst.Port, LocalAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(u.LocalPort)),
			})
		}
		out = append(out, s)
	}
	return out
}

// Mesh returns the node's data plane (nil before New returns).
func (a *Agent) Mesh() *mesh.Mesh { return a.mesh }

// warnNoUID says once per service that a registration without a uid does
// not isolate the node's local users from each other.
func (a *Agent) warnNoUID(r api.Registration) {
	if r.UID != nil {
		return
	}
	a.mu.Lock()
	warned := a.warnedUID[r.Name]
	a.warnedUID[r.Name] = true
	a.mu.Unlock()
	if !warned {
		a.log.Warn("service registered without a uid: any local user can fetch its SVID and call through its upstream ports as it", "service", r.Name)
	}
}

// healthReport is how often the listener report is sent even when nothing
// changed, so svc list shows a recent one.
const healthReport = 5 * time.Minute

// reportHealth sends the state of this node's local listeners and of its
// host firewall's bypasses to the control plane whenever it changes (and
// every healthReport), so that svc list shows a listener that cannot bind
// and the control plane alerts on a bypass. A failed report is retried
// with backoff.
func (a *Agent) reportHealth(ctx context.Context) error {
	fails := 0
	var last string
	for {
		wait := healthReport
		if a.Synced() {
			h := a.listenerHealth()
			key := fmt.Sprint(h)
			err := a.api().Call(ctx, http.MethodPost, api.PathNodeHealth, h, nil)
			switch {
			case ctx.Err() != nil:
				return nil
			case err != nil:
				fails++
				wait = a.backoff(fails)
				a.log.Debug("listener health not reported", "err", err)
			default:
				fails = 0
				if key != last {
					a.log.Debug("listener health reported")
				}
				last = key
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-a.healthWake:
		case <-a.cfg.After(wait):
		}
	}
}

// firewallHealth is the host firewall's part of the health report: the
// first api.MaxFirewallBypasses rules of other tables that take packets
// round it, and how many there are; nil when there is none (or no
// firewall), which the server reads as none, so that a report carries
// the part only when it has something to say (a server from before it
// refuses the field).
func (a *Agent) firewallHealth() *api.FirewallHealth {
	if a.fw == nil {
		return nil
	}
	bs := a.fw.Bypasses()
	if len(bs) == 0 {
		return nil
	}
	f := &api.FirewallHealth{BypassCount: len(bs)}
	for _, b := range bs[:min(len(bs), api.MaxFirewallBypasses)] {
		f.Bypasses = append(f.Bypasses, api.FirewallBypass{Family: b.Family, Table: b.Table, Chain: b.Chain, Handle: b.Handle, Kind: string(b.Kind)})
	}
	return f
}

func (a *Agent) listenerHealth() api.NodeHealth {
	h := api.NodeHealth{Services: map[string][]api.ListenerHealth{}, Firewall: a.firewallHealth()}
	for _, r := range a.LocalServices() {
		h.Services[r.Name] = []api.ListenerHealth{}
	}
	for _, l := range a.mesh.Health() {
		if _, ok := h.Services[l.Service]; !ok {
			continue
		}
		h.Services[l.Service] = append(h.Services[l.Service], api.ListenerHealth{
			Kind: l.Kind, Upstream: l.Upstream, Addr: l.Addr, OK: l.OK, Error: l.Error, Failures: l.Failures, Since: l.Since,
		})
	}
	return h
}
