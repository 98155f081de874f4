package check

import (
	"strings"
	"testing"
)

// TestFleets checks that the instances of EC2 Fleets and Spot Fleet
// requests are endpoints: a fleet whose workers had SSH open to the world
// on public addresses had none, and passed unreported. A fleet kept in an
// unrouted subnet is not reached; one that names no subnet launches in the
// default VPC, which is assumed and said.
func TestFleets(t *testing.T) {
	const dir = "testdata/aws/fleet"
	m := model(t, dir)
	inet := m.Internet()
	for _, c := range []struct {
		addr string
		want bool
	}{
		{"aws_spot_fleet_request.workers", true},
		{"aws_ec2_fleet.batch", false},
		{"aws_ec2_fleet.loose", true},
	} {
		if got := m.Reach(inet, endpoint(t, m, c.addr), "tcp", 22).Reachable; got != c.want {
			t.Errorf("%s tcp 22 from the internet: reachable %v, want %v", c.addr, got, c.want)
		}
	}
	rep := run(t, dir)
	workers := activeOn(rep, RuleExposedPort, "aws_spot_fleet_request.workers")
	if len(workers) != 1 || workers[0].Severity != Critical || !strings.Contains(workers[0].Message, "tcp 22 (SSH) is reachable") {
		t.Errorf("spot workers with SSH open on public addresses: %+v, want one critical", workers)
	}
	if got := activeOn(rep, RuleExposedPort, "aws_ec2_fleet.batch"); len(got) > 0 {
		t.Errorf("fleet in an unrouted subnet: %+v, want none", got)
	}
	loose := activeOn(rep, RuleExposedPort, "aws_ec2_fleet.loose")
	if len(loose) != 1 || loose[0].Severity != High || !strings.Contains(loose[0].Message, "may be reachable") || !strings.Contains(loose[0].Message, "default VPC") {
		t.Errorf("fleet in the default VPC: %+v, want one high that says the default VPC is assumed", loose)
	}
}
