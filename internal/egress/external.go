package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"moat/internal/flow"
	"moat/internal/mesh"
	"moat/internal/policy"
)

// External is one service's upstream outside the mesh: a loopback
// listener whose connections go to Host:Port through the egress path, as
// Service. The caller's identity is the listener's, so a registration with
// a uid admits only that uid's processes.
type External struct {
	Service   string
	UID       *int // the one local uid admitted; nil admits any
	Host      string
	Port      int
	LocalAddr string
}

func (u External) key() string {
	k := u.Service + "|" + u.Host + "|" + strconv.Itoa(u.Port) + "|" + u.LocalAddr
	if u.UID != nil {
		k += "|uid=" + strconv.Itoa(*u.UID)
	}
	return k
}

type extListener struct {
	up External
	ln net.Listener
}

// SetExternal makes the external upstreams' listeners match ups: new ones
// bind, gone ones close. A listener that cannot bind is named in the
// error and tried again at the next call; the rest serve.
func (p *Proxy) SetExternal(ups []External) error {
	want := map[string]External{}
	for _, u := range ups {
		want[u.key()] = u
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, l := range p.ext {
		if _, ok := want[k]; !ok {
			_ = l.ln.Close()
			delete(p.ext, k)
		}
	}
	var errs []error
	for k, u := range want {
		if _, ok := p.ext[k]; ok {
			continue
		}
		ln, err := mesh.ListenLoopback(u.LocalAddr)
		if err != nil {
			errs = append(errs, fmt.Errorf("egress: %s's upstream %s:%d on %s: %w", u.Service, u.Host, u.Port, u.LocalAddr, err))
			continue
		}
		l := &extListener{up: u, ln: ln}
		p.ext[k] = l
		if p.runCtx != nil {
			p.serveExternal(p.runCtx, l)
		}
	}
	return errors.Join(errs...)
}

// ExternalAddr returns the bound address of service's listener for host.
func (p *Proxy) ExternalAddr(service, host string) net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.ext {
		if l.up.Service == service && l.up.Host == host {
			return l.ln.Addr()
		}
	}
	return nil
}

// serveExternal accepts on l until it closes. p.mu is held.
func (p *Proxy) serveExternal(ctx context.Context, l *extListener) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.accept(l.ln, func(c net.Conn) { p.handleExternal(ctx, c, l.up) })
	}()
}

func (p *Proxy) handleExternal(ctx context.Context, c net.Conn, up External) {
	defer c.Close()
	start := p.cfg.Now()
	t := Target{Src: up.Service, SrcIP: addrOnly(c.RemoteAddr()), Host: up.Host, Port: up.Port, ConnID: flow.NewID()}
	if up.UID != nil {
		uid, err := p.peerUID(c)
		if err != nil || uid != *up.UID {
			why := fmt.Sprintf("%s's upstream to %s admits only uid %d", up.Service, t, *up.UID)
			if err != nil {
				why += ": " + err.Error()
			} else {
				why += fmt.Sprintf(", the caller runs as uid %d", uid)
			}
			p.refuse(start, t, &Refusal{Code: flow.ReasonUIDMismatch, Reason: why})
			return
		}
	}
	if d := p.cfg.Policy().DecideEgress(t.Src, t.Host, t.Port); !d.Allow {
		p.refuse(start, t, &Refusal{Code: flow.ReasonEgressDenied, Rule: policy.DefaultDeny, Reason: fmt.Sprintf("no egress rule lets %s reach %s", t.Src, t)})
		return
	}
	p.forward(ctx, start, c, t, func(*Refusal) {}, func() error { return nil }, nil)
}
