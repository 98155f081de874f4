package check

import (
	"fmt"
	"strings"

	"moat/internal/check/tf"
)

// nlbForwarding reads what a public network load balancer without security
// groups forwards. Such a balancer keeps the client's address for instance
// targets (clientKept), so the targets' groups decide whether the internet
// gets through. A listener port is
// closed to the internet (Endpoint.ForwardBlocked) only when everything it
// forwards to is known: its target groups, every target of each (by
// aws_lb_target_group_attachment alone, no auto scaling group or service
// naming the group), their port and their groups; and no target admits an
// internet address on it. Otherwise the balancer is read as before,
// reached on every listener port.
func (m *Model) nlbForwarding(byType map[string][]*tf.Resource) {
	byAddr := map[string]*Endpoint{}
	for _, e := range m.Endpoints {
		byAddr[e.Addr] = e
	}
	// Target groups named by something other than a listener or an
	// attachment, or by a reference not known statically, may have targets
	// this reading does not see.
	named := map[string]bool{}
	anyNamed := false
	note := func(vals map[string]any, k string) {
		refs, unk := strs(vals, k)
		anyNamed = anyNamed || unk
		for _, ref := range refs {
			named[m.addr(ref)] = true
		}
	}
	for _, r := range byType["aws_autoscaling_group"] {
		note(r.Values, "target_group_arns")
	}
	for _, r := range byType["aws_autoscaling_attachment"] {
		note(r.Values, "lb_target_group_arn")
		note(r.Values, "alb_target_group_arn")
	}
	for _, r := range byType["aws_ecs_service"] {
		for _, b := range blocks(r.Values, "load_balancer") {
			note(b, "target_group_arn")
		}
	}
	attachments := map[string][]*tf.Resource{}
	for _, r := range byType["aws_lb_target_group_attachment"] {
		if unknown(r.Values, "target_group_arn") {
			anyNamed = true
			continue
		}
		tg := m.addr(str(r.Values, "target_group_arn"))
		attachments[tg] = append(attachments[tg], r)
	}
	if anyNamed {
		return
	}
	for _, typ := range []string{"aws_lb_listener", "aws_alb_listener"} {
		for _, l := range byType[typ] {
			lb := byAddr[m.addr(str(l.Values, "load_balancer_arn"))]
			if lb == nil || !lb.Public || lb.Res == nil || !strings.EqualFold(str(lb.Res.Values, "load_balancer_type"), "network") ||
				has(lb.Res.Values, "security_groups") || unknown(l.Values, "port") || unknown(l.Values, "protocol") ||
				!strings.EqualFold(str(l.Values, "protocol"), "TCP") && !strings.EqualFold(str(l.Values, "protocol"), "TLS") {
				continue
			}
			port := num(l.Values, "port", 0)
			if why, ok := m.listenerBlocked(l, port, byAddr, named, attachments); ok {
				if lb.ForwardBlocked == nil {
					lb.ForwardBlocked = map[int]string{}
				}
				lb.ForwardBlocked[port] = why
			}
		}
	}
}

// listenerBlocked says whether every target listener l forwards port to
// admits no internet address, and why.
func (m *Model) listenerBlocked(l *tf.Resource, port int, byAddr map[string]*Endpoint, named map[string]bool, attachments map[string][]*tf.Resource) (string, bool) {
	var tgs []string
	for _, a := range blocks(l.Values, "default_action") {
		if !strings.EqualFold(str(a, "type"), "forward") || unknown(a, "target_group_arn") {
			return "", false
		}
		if tg := str(a, "target_group_arn"); tg != "" {
			tgs = append(tgs, m.addr(tg))
		}
		for _, f := range blocks(a, "forward") {
			for _, t := range blocks(f, "target_group") {
				if unknown(t, "arn") {
					return "", false
				}
				tgs = append(tgs, m.addr(str(t, "arn")))
			}
		}
	}
	if len(tgs) == 0 {
		return "", false
	}
	inet := m.Internet()
	var targets []string
	for _, tg := range tgs {
		g := m.lookup(tg)
		if g == nil || named[tg] || len(attachments[tg]) == 0 {
			return "", false
		}
		if kept, known := clientKept(g); !kept || !known {
			return "", false
		}
		for _, a := range attachments[tg] {
			e := byAddr[m.addr(str(a.Values, "target_id"))]
			p := num(a.Values, "port", num(g.Values, "port", 0))
			if e == nil || e.SGsUnknown != "" || len(e.SGs) == 0 || p == 0 || unknown(a.Values, "port") || unknown(g.Values, "port") {
				return "", false
			}
			if got, _, _ := m.sgPass(e.SGs, "tcp", p, inet, inet.Set); !empty(got) {
				return "", false
			}
			targets = append(targets, fmt.Sprintf("%s on tcp %d", e.Addr, p))
		}
	}
	return fmt.Sprintf("network load balancer keeps the client's address, and every target %s forwards tcp %d to admits no internet address (%s)",
		l.Address, port, strings.Join(targets, ", ")), true
}

// clientKept reads whether the targets of g, a network load balancer's
// target group, see the client's address (preserve_client_ip) rather than
// the balancer's, as AWS defaults it: for instance targets, yes unless set
// to false; for IP targets, yes over UDP, TCP_UDP, QUIC and TCP_QUIC (where
// it cannot be turned off), and over TCP and TLS only when set to true.
// known is false when the code does not settle it: a value not known
// statically, another target type (alb), no target group in the code.
func clientKept(g *tf.Resource) (kept, known bool) {
	if g == nil || unknown(g.Values, "target_type") || unknown(g.Values, "protocol") {
		return false, false
	}
	typ := strings.ToLower(str(g.Values, "target_type"))
	if typ != "" && typ != "instance" && typ != "ip" {
		return false, false
	}
	switch strings.ToUpper(str(g.Values, "protocol")) {
	case "UDP", "TCP_UDP", "QUIC", "TCP_QUIC":
		return true, true
	}
	if unknown(g.Values, "preserve_client_ip") {
		return false, false
	}
	return boolean(g.Values, "preserve_client_ip", typ != "ip"), true
}

// nlbSource is what a target of the public network load balancer lb,
// forwarded to by target group g, sees the connection come from: the
// client (every internet address) when g keeps its address, else the
// balancer's own addresses in its subnets (own); either, when it is not
// known statically. A dual-stack balancer gives an instance target its own
// IPv4 address for an IPv6 client even so: it is then read as either.
func (m *Model) nlbSource(lb *Endpoint, own Source, g *tf.Resource) Source {
	kept, known := clientKept(g)
	if own.Name == "" || known && !kept {
		return own
	}
	src := own
	src.Name = lb.Addr + " (keeping the client's address)"
	src.Set = m.Internet().Set
	dual := unknown(lb.Res.Values, "ip_address_type") || !strings.EqualFold(str(lb.Res.Values, "ip_address_type"), "ipv4") && has(lb.Res.Values, "ip_address_type")
	if !known || dual {
		src.Name = lb.Addr + " (keeping the client's address, or giving its own)"
		src.Set = union(own.Set, src.Set)
	}
	return src
}
