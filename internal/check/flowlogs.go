package check

import (
	"strings"

	"moat/internal/check/tf"
)

// flowTargets are the attributes that say what a flow log records.
var flowTargets = []string{"vpc_id", "subnet_id", "eni_id", "transit_gateway_id", "transit_gateway_attachment_id"}

// buildFlowLogs attaches flow logs to the VPCs and subnets they record, and
// keeps those that name nothing.
func (m *Model) buildFlowLogs(res []*tf.Resource) {
	for _, r := range res {
		named := false
		for _, k := range flowTargets {
			if unknown(r.Values, k) {
				m.note(r, "flow log's %s is not known statically", k)
				named = true
			} else if str(r.Values, k) != "" {
				named = true
			}
		}
		if !named {
			m.idleFlowLogs = append(m.idleFlowLogs, r)
		}
		if v := m.vpcs[m.addr(str(r.Values, "vpc_id"))]; v != nil {
			v.FlowLogs = append(v.FlowLogs, r.Address)
		}
		if s := m.subnets[m.addr(str(r.Values, "subnet_id"))]; s != nil {
			s.FlowLogs = append(s.FlowLogs, r.Address)
		}
	}
}

// flowLogRules flags VPCs whose traffic is not recorded: no flow log names
// the VPC, and some of its subnets have no subnet flow log either (flow logs
// of single network interfaces record only those). A flow log that names
// nothing records nothing.
func (m *Model) flowLogRules(fs *findings) {
	subnets := map[*VPC][]*Subnet{}
	for _, s := range m.Subnets {
		subnets[s.VPC] = append(subnets[s.VPC], s)
	}
	for _, v := range m.VPCs {
		if len(v.FlowLogs) > 0 || v.Res.Type != "aws_vpc" {
			continue
		}
		var bare []string
		for _, s := range subnets[v] {
			if len(s.FlowLogs) == 0 {
				bare = append(bare, s.Addr)
			}
		}
		switch {
		case len(subnets[v]) == 0:
			fs.add(RuleNoFlowLogs, v.Res, nil, "no aws_flow_log names this VPC")
		case len(bare) > 0:
			fs.add(RuleNoFlowLogs, v.Res, nil, "no aws_flow_log names this VPC, nor its subnets %s", strings.Join(bare, ", "))
		}
	}
	for _, r := range m.idleFlowLogs {
		fs.add(RuleNoFlowLogs, r, nil, "the flow log names no VPC, subnet, network interface or transit gateway (%s): it records nothing", strings.Join(flowTargets, ", "))
	}
}
