package check

import (
	"strings"
	"testing"
)

// TestInvalidReferencesRejected: references Terraform refuses before it
// plans were read quietly (a splat on a resource type, each.id outside
// for_each: not known statically) or not at all (two groups whose rules
// name each other). Each is now CHECK-003, naming what Terraform says.
func TestInvalidReferencesRejected(t *testing.T) {
	for dir, c := range map[string]struct{ addr, says string }{
		"splat": {"aws_security_group_rule.r", "names the resource type aws_security_group without a resource's name"},
		"each":  {"aws_security_group.a", "each.id refers to each, which only a block with for_each has"},
		"cycle": {"aws_security_group.a", "aws_security_group.a, aws_security_group.b refer to each other in a cycle"},
	} {
		got := activeOn(run(t, "testdata/aws/invalid-refs/"+dir), RuleRejected, c.addr)
		if len(got) != 1 || !strings.Contains(got[0].Message, c.says) {
			t.Errorf("%s: %s on %s: %+v, want one saying %q", dir, RuleRejected, c.addr, got, c.says)
		}
	}
}
