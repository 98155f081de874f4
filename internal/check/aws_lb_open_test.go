package check

import (
	"strings"
	"testing"
)

// TestLoadBalancerGroupOpenOnAllPorts: a group that admits the world on
// every port, carried by a load balancer alone, was high ("it is
// attached"), though a load balancer answers only on its listeners'
// ports. It is now graded by what those ports reach and says so: nothing
// (web on 80 and 443, an NLB with a group on 443) is medium; an
// application's listener port (app on 8443) is high, not critical; a
// listener whose port is not known statically is read at its worst, and
// the finding says why.
func TestLoadBalancerGroupOpenOnAllPorts(t *testing.T) {
	rep := run(t, "testdata/aws/alb-open-all")
	for _, c := range []struct {
		rule, group string
		sev         Severity
		says        string
	}{
		{RuleWorldOpen, "aws_security_group.alb", Medium, "aws_lb.web answers only on its listeners' ports (80, 443)"},
		{RuleWorldOpenOther, "aws_security_group.alb", Medium, "aws_lb.web answers only on its listeners' ports (80, 443)"},
		{RuleWorldOpen, "aws_security_group.nlb", Medium, "aws_lb.nlb answers only on its listeners' ports (443)"},
		{RuleWorldOpenOther, "aws_security_group.nlb", Medium, "aws_lb.nlb answers only on its listeners' ports (443)"},
		{RuleWorldOpen, "aws_security_group.app", Medium, "aws_lb.app answers only on its listeners' ports (8443)"},
		{RuleWorldOpenOther, "aws_security_group.app", High, "reached from the internet on tcp 8443; it answers only on its listeners' ports (8443)"},
		{RuleWorldOpen, "aws_security_group.dyn", Critical, "its listeners' ports are not known statically"},
	} {
		got := activeOn(rep, c.rule, c.group)
		if len(got) != 1 || got[0].Severity != c.sev || !strings.Contains(got[0].Message, c.says) {
			t.Errorf("%s on %s: %+v, want one %s saying %q", c.rule, c.group, got, c.sev, c.says)
		}
	}
}
