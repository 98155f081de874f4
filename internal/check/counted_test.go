package check

import "testing"

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
