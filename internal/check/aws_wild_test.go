package check

import (
	"strings"
	"testing"
)

// TestNACLUnknownRuleNumberFailsClosed checks that a network ACL deny
// whose rule number is not known statically is read as deciding after
// the allows, and said so.
func TestNACLUnknownRuleNumberFailsClosed(t *testing.T) {
	rep := run(t, "testdata/aws/nacl-unknown-number")
	var ssh []Finding
	for _, f := range active(rep, RuleExposedPort) {
		if f.Address == "aws_instance.bastion" && strings.Contains(f.Message, "tcp 22 (SSH)") {
			ssh = append(ssh, f)
		}
	}
	if len(ssh) != 1 {
		t.Fatalf("SSH past a deny at an unknown rule number: %+v, want one finding", ssh)
	}
	said := false
	for _, f := range active(rep, RuleNotEvaluated) {
		if f.Address == "aws_network_acl.public" && strings.Contains(f.Message, "rule number not known statically") {
			said = true
		}
	}
	if !said {
		t.Error("no note that the deny's rule number was assumed")
	}
}
