package check

import (
	"strings"
	"testing"
)

// TestRedshiftPublicByProviderVersion: a Redshift cluster that leaves
// publicly_accessible unset was public whatever the provider, though the
// AWS provider defaults it to false from 5.0. It is now read with the
// version the configuration runs: public under 4.x, naming the
// constraint, private under 5.x.
func TestRedshiftPublicByProviderVersion(t *testing.T) {
	got := activeOn(run(t, "testdata/aws/redshift-default/aws4"), RuleDataTierPublic, "aws_redshift_cluster.dw")
	if len(got) != 1 || !strings.Contains(got[0].Message, `publicly_accessible is not set, and the provider is aws "~> 4.0"`) {
		t.Errorf("%s under aws 4.x: %+v, want one naming the provider's version", RuleDataTierPublic, got)
	}
	if got := activeOn(run(t, "testdata/aws/redshift-default/aws5"), RuleDataTierPublic, "aws_redshift_cluster.dw"); len(got) != 0 {
		t.Errorf("%s under aws 5.x: %+v, want none: publicly_accessible defaults to false", RuleDataTierPublic, got)
	}
}
