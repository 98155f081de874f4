package check

import (
	"strings"
	"testing"
)

// TestSourceOfNetworkRangeThroughOutput: a rule admitting a VPC's range
// that a local module hands on as an output (module.net.vpc_cidr, or
// try(aws_vpc.this[0].cidr_block, null) as the public VPC module writes
// it) was read as admitting every address, where the same reference
// inside the module is a /16 somewhere: the group was flagged open to the
// whole internet and the public instance behind it exposed at high.
func TestSourceOfNetworkRangeThroughOutput(t *testing.T) {
	rep := run(t, "testdata/aws/vpc-range-output")
	for _, rule := range []string{RuleWorldOpen, RuleWorldOpenOther} {
		if got := activeOn(rep, rule, "aws_security_group.internal"); len(got) != 0 {
			t.Errorf("%s on the group admitting the VPC's range: %+v, want none", rule, got)
		}
	}
	got := activeOn(rep, RuleExposedPort, "aws_instance.app")
	if len(got) != 1 || got[0].Severity != Medium || !strings.Contains(got[0].Message, "not known statically but for its length (a /16 range)") {
		t.Errorf("%s on the instance: %+v, want one medium that says SSH may be reachable from a /16 range", RuleExposedPort, got)
	}
}
