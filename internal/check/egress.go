package check

import (
	"fmt"

	"gopkg.in/yaml.v3"

	"moat/internal/policy"
)

// RuleWideEgress reports egress rules that admit more of the outside than
// one service should need: every name ("*"), every address (0.0.0.0/0),
// a whole top-level domain ("*.com"), a network shorter than /8, or every
// service as the source.
const RuleWideEgress = "MOAT-008"

func egressRules() []Rule {
	return []Rule{
		{RuleWideEgress, High, "Egress wider than needed",
			"An egress rule of the intentions lets services reach far more of the outside than one integration needs (any host, any address, a whole top-level domain), or lets every service out: a compromised service can then send data anywhere.",
			"Name the hosts the service calls (api.stripe.com, *.s3.amazonaws.com) or the partner's network, and the services that call them."},
	}
}

// checkEgress adds a finding for each wide egress rule of a policy file
// that the policy package accepts (it reads the file with moat's own
// parser, so it judges what moat would load).
func checkEgress(doc *yaml.Node, src []byte, add func(rule string, line int, addr, format string, args ...any)) {
	t, err := policy.Parse(src)
	if err != nil {
		return
	}
	for i, r := range t.EgressRules() {
		addr := fmt.Sprintf("policy.egress[%q]", r.Name)
		line := seqLine(doc, "egress", i)
		if why := policy.EgressWidth(r.To); why != "" {
			add(RuleWideEgress, line, addr, "egress to %q admits %s (rule ports %v)", r.To, why, r.Ports)
		}
		for _, s := range r.From {
			if s == policy.Wildcard {
				add(RuleWideEgress, line, addr, "source \"*\" lets every service reach %s", r.To)
			}
		}
	}
}
