package check

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"moat/internal/check/tf"
)

// ecsDynamicPorts is the range a task's container port is published on
// when bridge networking maps it to no fixed host port: the container
// instance's ephemeral ports (32768-60999 on ECS-optimized Linux, up to
// 65535 on older agents: the wider range is taken).
const ecsDynamicFrom, ecsDynamicTo = 32768, 65535

// ecsServices adds each ECS service as the endpoint its tasks are. On
// awsvpc networking (network_configuration) a task is an interface of its
// own in the service's subnets behind its groups. On bridge or host
// networking (EC2, no network_configuration) its tasks run on the
// container instances and answer on their addresses: the service is read
// as the instances of the auto scaling groups of its capacity providers
// (its own capacity_provider_strategy, else its cluster's default one),
// placed and guarded as they are, listening on the host ports of its task
// definition. Instances registered otherwise (user data naming the
// cluster) are not followed: such a service is in subnets not known.
func (m *Model) ecsServices(byType map[string][]*tf.Resource, add func(*Endpoint)) {
	for _, r := range byType["aws_ecs_service"] {
		if nc := block(r.Values, "network_configuration"); nc != nil {
			// Each task answers on its containers' ports alone.
			ports, listens, text := m.ecsHostPorts(r, true)
			e := &Endpoint{Addr: r.Address, Kind: "ecs-tasks", Res: r, Ports: ports, Listens: listens, ListensOn: text, AppPorts: listens != nil}
			e.Subnets = m.subnetsIn(e, nc, "subnets")
			m.attachSGs(e, nc, "security_groups")
			if lt := strings.ToUpper(str(r.Values, "launch_type")); (lt == "EC2" || lt == "EXTERNAL") && boolean(nc, "assign_public_ip", false) {
				// ECS gives public addresses to Fargate tasks alone and
				// refuses the service: no task, no address.
				m.reject(r, "assign_public_ip = true on the %s launch type: ECS gives public addresses to Fargate tasks alone and refuses the service (InvalidParameterException)", lt)
			} else {
				publicFlag(e, nc, "assign_public_ip")
			}
			add(e)
			continue
		}
		if lt := strings.ToUpper(str(r.Values, "launch_type")); lt == "FARGATE" || lt == "EXTERNAL" {
			continue // Fargate takes awsvpc alone; EXTERNAL runs outside AWS
		}
		ports, listens, text := m.ecsHostPorts(r, false)
		hosts, why := m.ecsHosts(byType, r)
		if len(hosts) == 0 {
			add(&Endpoint{Addr: r.Address, Kind: "ecs-tasks", Res: r, Ports: ports, Listens: listens, ListensOn: text, AppPorts: true, SubnetsAny: true, SubnetsUnknown: why})
			continue
		}
		for _, h := range hosts {
			e := *h
			e.Addr, e.Kind, e.Res = r.Address, "ecs-tasks", r
			e.Ports, e.Listens, e.ListensOn, e.AppPorts = ports, listens, text, true
			e.Gateway, e.DataTier, e.Published, e.ForwardBlocked, e.InternetPorts = false, false, nil, nil, nil
			e.Subnets, e.SubnetsMaybe, e.SGs = slices.Clone(h.Subnets), slices.Clone(h.SubnetsMaybe), slices.Clone(h.SGs)
			e.Why = h.Why + " (the container instances of " + h.Addr + ")"
			add(&e)
		}
	}
}

// ecsHosts returns the endpoints of the auto scaling groups whose
// instances run r's tasks, or why they are not known.
func (m *Model) ecsHosts(byType map[string][]*tf.Resource, r *tf.Resource) ([]*Endpoint, string) {
	strategy := blocks(r.Values, "capacity_provider_strategy")
	if len(strategy) == 0 && !unknown(r.Values, "capacity_provider_strategy") {
		cluster := m.addrOf("aws_ecs_cluster", str(r.Values, "cluster"))
		for _, c := range byType["aws_ecs_cluster_capacity_providers"] {
			if m.addrOf("aws_ecs_cluster", str(c.Values, "cluster_name")) == cluster {
				strategy = blocks(c.Values, "default_capacity_provider_strategy")
			}
		}
	}
	asgs := map[string]bool{}
	for _, s := range strategy {
		p := m.lookup(m.addrOf("aws_ecs_capacity_provider", str(s, "capacity_provider")))
		if p == nil || p.Type != "aws_ecs_capacity_provider" {
			continue
		}
		asgs[m.addr(str(block(p.Values, "auto_scaling_group_provider"), "auto_scaling_group_arn"))] = true
	}
	var out []*Endpoint
	for _, e := range m.Endpoints {
		if e.Kind == "asg" && asgs[e.Addr] {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil, "bridge or host networking: its tasks run on container instances that no capacity provider of the project names"
	}
	return out, ""
}

// ecsHostPorts returns the ports r's tasks answer on at their container
// instances' addresses, or at their own interfaces' (awsvpc: each
// container port, as in host mode): in host mode each container port, in
// bridge mode each fixed host port, and the dynamic range for a container
// port mapped to none (its lowest port stands for it in Ports), and text
// saying so. nil listens: the task definition is not known statically, so
// any port may be one.
func (m *Model) ecsHostPorts(r *tf.Resource, awsvpc bool) (ports []int, listens func(string, int) bool, text string) {
	td := m.lookup(m.addrOf("aws_ecs_task_definition", str(r.Values, "task_definition")))
	if td == nil || td.Type != "aws_ecs_task_definition" || unknown(td.Values, "network_mode") || unknown(td.Values, "container_definitions") {
		return nil, nil, ""
	}
	var defs []struct {
		PortMappings []struct {
			ContainerPort int    `json:"containerPort"`
			HostPort      int    `json:"hostPort"`
			Protocol      string `json:"protocol"`
		} `json:"portMappings"`
	}
	if err := json.Unmarshal([]byte(str(td.Values, "container_definitions")), &defs); err != nil {
		return nil, nil, ""
	}
	host := awsvpc || strings.EqualFold(str(td.Values, "network_mode"), "host")
	type pp struct {
		proto string
		port  int
	}
	fixed := map[pp]bool{}
	dynamic := map[string]bool{}
	for _, d := range defs {
		for _, pm := range d.PortMappings {
			proto := strings.ToLower(pm.Protocol)
			if proto == "" {
				proto = "tcp"
			}
			p := pm.HostPort
			switch {
			case host && pm.ContainerPort != 0:
				p = pm.ContainerPort // the container's port is the host's
			case host && p == 0:
				continue
			case p == 0:
				dynamic[proto] = true
				p = ecsDynamicFrom
			}
			if p != ecsDynamicFrom || !dynamic[proto] {
				fixed[pp{proto, p}] = true
			}
			if proto == "tcp" && !slices.Contains(ports, p) {
				ports = append(ports, p)
			}
		}
	}
	slices.Sort(ports)
	var said []string
	for k := range fixed {
		said = append(said, fmt.Sprintf("%s %d", k.proto, k.port))
	}
	slices.Sort(said)
	for _, proto := range []string{"tcp", "udp"} {
		if dynamic[proto] {
			said = append(said, fmt.Sprintf("%s %d-%d (dynamic host ports of bridge networking)", proto, ecsDynamicFrom, ecsDynamicTo))
		}
	}
	if len(said) == 0 {
		said = []string{"no port (its task definition maps none)"}
	}
	return ports, func(proto string, port int) bool {
		return fixed[pp{proto, port}] || dynamic[proto] && ecsDynamicFrom <= port && port <= ecsDynamicTo
	}, strings.Join(said, ", ")
}
