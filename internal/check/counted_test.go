package check

import (
	"strings"
	"testing"
)

// TestCountedGroupsAttached checks that a security group picked from
// counted groups by an index not known statically
// ([aws_security_group.web[count.index].id] under a count from a variable
// without a value) is that group: the element lost where it came from, so
// the server was read as behind any group at all (every port open to the
// internet, "may be reachable") and its own group as attached to nothing.
func TestCountedGroupsAttached(t *testing.T) {
	const dir = "testdata/aws/counted-groups"
	m := model(t, dir)
	inet := m.Internet()
	web := endpoint(t, m, "aws_instance.web")
	if res := m.Reach(inet, web, "tcp", 22); res.Reachable {
		t.Errorf("tcp 22 from the internet: reachable (%v), want blocked by the server's own group", res.Assumed)
	}
	if res := m.Reach(m.VPCSource(web.Subnets[0].VPC), web, "tcp", 443); !res.Reachable {
		t.Errorf("tcp 443 from the VPC: blocked, want admitted by the server's own group")
	}
	rep := run(t, dir)
	for _, rule := range []string{RuleExposedPort, RuleInternetFacing} {
		if got := activeOn(rep, rule, "aws_instance.web"); len(got) > 0 {
			t.Errorf("%s: %+v, want none", rule, got)
		}
	}
	if got := activeOn(rep, RuleUnusedSG, "aws_security_group.web"); len(got) > 0 {
		t.Errorf("the servers' group: %+v, want it attached", got)
	}
}

// TestTryOverUnknownLocal checks that try() over a local not known
// statically is not known either: the local was missing, not unknown,
// while the locals were settled, so try() took the error for a failure and
// answered with its fallback (HTTPS alone), and the ports the settings may
// open (SSH among them) went unreported.
func TestTryOverUnknownLocal(t *testing.T) {
	rep := run(t, "testdata/aws/try-fallback")
	got := activeOn(rep, RuleExposedPort, "aws_instance.web")
	if len(got) != 1 || got[0].Severity != High || !strings.Contains(got[0].Message, "may be reachable") || !strings.Contains(got[0].Message, "tcp 22 (SSH)") {
		t.Errorf("server whose ports come from unknown settings: %+v, want one high saying SSH may be reachable", got)
	}
}
