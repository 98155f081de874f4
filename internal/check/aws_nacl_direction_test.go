package check

import (
	"strings"
	"testing"
)

// TestNACLRuleDirectionUnknown: an aws_network_acl_rule whose egress is
// not known statically was read as an ingress entry, so a deny of SSH
// that may be an egress entry hid the bastion behind it, and an allow
// that may be an ingress entry was not read as admitting anything. A deny
// is read as in neither direction and an allow as in both, and each is
// said so.
func TestNACLRuleDirectionUnknown(t *testing.T) {
	rep := run(t, "testdata/aws/nacl-direction-unknown")
	ssh := activeOn(rep, RuleExposedPort, "aws_instance.bastion")
	if len(ssh) != 1 || !strings.Contains(ssh[0].Message, "tcp 22 (SSH)") || !strings.Contains(ssh[0].Message, "may be reachable") {
		t.Errorf("%s on the bastion past a deny that may be egress: %+v, want one that says SSH may be reachable", RuleExposedPort, ssh)
	}
	wantNotes(t, rep, "direction not known statically: the deny is assumed to be in neither direction",
		"direction not known statically: the allow is assumed to be in both directions")
}
