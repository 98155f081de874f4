package check

import (
	"strings"
	"testing"
)

// TestAssumedExposureNamesRange: an exposure whose path was assumed (the
// instance's subnet is not in the scanned code) from one office address
// was graded medium, as one from a bounded range is, but its message said
// only "from the internet", leaving the grading unexplained. It names
// whom the port admits, as a proven exposure does.
func TestAssumedExposureNamesRange(t *testing.T) {
	rep := run(t, "testdata/aws/assumed-from-range")
	got := activeOn(rep, RuleExposedPort, "aws_instance.nat")
	if len(got) != 1 || got[0].Severity != Medium || !strings.Contains(got[0].Message, "may be reachable from the internet (198.51.100.7/32)") {
		t.Errorf("%s on the instance: %+v, want one medium naming 198.51.100.7/32", RuleExposedPort, got)
	}
}
