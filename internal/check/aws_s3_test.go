package check

import (
	"strings"
	"testing"
)

// TestBucketPolicyConditions: a bucket policy that allows Principal "*"
// under any condition was read as not public, so one open to everyone
// who sends the right Referer header, or who connects over TLS, went
// unreported. A condition bounds the statement only where it tests who
// sent the request or where from against fixed values (the source
// endpoint, network, account or ARN, the principal's organization or
// account, or an address range no wider than one network's); a negated
// or IfExists test, a wildcard, or a range wider than that bounds
// nothing, and a value not known statically under a wildcard test or for
// aws:SourceIp is read at its worst and said so. A search domain's
// policy is read alike: one admitting 0.0.0.0/0 by aws:SourceIp was not
// reported open to everyone.
func TestBucketPolicyConditions(t *testing.T) {
	rep := run(t, "testdata/aws/s3-policy-conditions")
	for key, want := range map[string]string{
		"referer":       "aws:Referer",
		"tls":           "aws:SecureTransport",
		"ip_world":      "aws:SourceIp",
		"if_exists":     "aws:SourceVpce",
		"arn_like_any":  "aws:SourceArn",
		"not_vpce":      "aws:SourceVpce",
		"ip_unknown":    "not known statically",
		"user_variable": "aws:userid",
	} {
		addr := `aws_s3_bucket_policy.b["` + key + `"]`
		got := activeOn(rep, RulePublicBucket, addr)
		if len(got) != 1 || !strings.Contains(got[0].Message, want) || got[0].Severity != Critical {
			t.Errorf("%s on %s: %+v, want one critical naming %q", RulePublicBucket, addr, got, want)
		}
	}
	for _, key := range []string{"vpce", "org", "ip_office", "vpce_unknown"} {
		addr := `aws_s3_bucket_policy.b["` + key + `"]`
		if got := activeOn(rep, RulePublicBucket, addr); len(got) > 0 {
			t.Errorf("%s on %s, whose condition bounds who gets in: %+v, want none", RulePublicBucket, addr, got)
		}
	}
	if got := activeOn(rep, RuleSearchOpenPols, `aws_opensearch_domain.logs["world"]`); len(got) != 1 || !strings.Contains(got[0].Message, "aws:SourceIp") {
		t.Errorf("%s on the domain whose policy admits 0.0.0.0/0: %+v, want one naming aws:SourceIp", RuleSearchOpenPols, got)
	}
	if got := activeOn(rep, RuleSearchOpenPols, `aws_opensearch_domain.logs["office"]`); len(got) > 0 {
		t.Errorf("%s on the domain whose policy admits one office range: %+v, want none", RuleSearchOpenPols, got)
	}
	if got := activeOn(rep, RulePublicBucket, "aws_s3_bucket.inline"); len(got) != 1 || !strings.Contains(got[0].Message, "policy") {
		t.Errorf("%s on the bucket whose own policy argument admits everyone: %+v, want one", RulePublicBucket, got)
	}
}
