package check

import (
	"strings"
	"testing"
)

// TestIGWElsewhere checks that a route to an internet gateway the scanned
// code does not make reaches the internet: AWS takes such a route only to
// a gateway attached to the table's VPC. A gateway named by its ID was read
// as no gateway, and one from a variable without a value as none when the
// code attaches none itself: an instance with SSH open to the world behind
// either passed with "no path proven". The second rests on an assumption,
// which is said; a route to a VPN gateway opens nothing.
func TestIGWElsewhere(t *testing.T) {
	rep := run(t, "testdata/aws/igw-elsewhere")
	written := activeOn(rep, RuleExposedPort, "aws_instance.written")
	if len(written) != 1 || written[0].Severity != Critical || !strings.Contains(written[0].Message, "tcp 22 (SSH) is reachable") {
		t.Errorf("route to a gateway named by ID: %+v, want one critical", written)
	}
	given := activeOn(rep, RuleExposedPort, "aws_instance.given")
	if len(given) != 1 || given[0].Severity != High || !strings.Contains(given[0].Message, "may be reachable") ||
		!strings.Contains(given[0].Message, "target not known statically (gateway_id)") {
		t.Errorf("route to a gateway not known statically: %+v, want one high that says why", given)
	}
	if got := activeOn(rep, RuleExposedPort, "aws_instance.office"); len(got) > 0 {
		t.Errorf("route to a VPN gateway: %+v, want none", got)
	}
	for _, addr := range []string{"aws_instance.written", "aws_instance.given"} {
		if got := activeOn(rep, RuleInternetFacing, addr); len(got) != 1 {
			t.Errorf("%s: %+v, want one %s", addr, got, RuleInternetFacing)
		}
	}
}
