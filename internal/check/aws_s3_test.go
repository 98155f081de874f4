package check

import (
	"fmt"
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

// s3NewDefaults is a bucket the configuration creates, with a public
// policy and a public ACL and nothing else: S3 blocks public access and
// disables ACLs on every bucket created since April 2023.
const s3NewDefaults = `
provider "aws" {
  region = "eu-west-1"
}
resource "aws_s3_bucket" "site" {
  bucket = "example-site"
}
resource "aws_s3_bucket_policy" "site" {
  bucket = aws_s3_bucket.site.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "PublicRead"
      Effect    = "Allow"
      Principal = "*"
      Action    = "s3:GetObject"
      Resource  = "arn:aws:s3:::example-site/*"
    }]
  })
}
resource "aws_s3_bucket_acl" "site" {
  bucket = aws_s3_bucket.site.id
  acl    = "public-read"
}
`

// s3Unblocked turns the bucket's public access block off.
const s3Unblocked = `
resource "aws_s3_bucket_public_access_block" "site" {
  bucket                  = aws_s3_bucket.site.id
  block_public_acls       = false
  block_public_policy     = false
  ignore_public_acls      = false
  restrict_public_buckets = false
}
`

// s3ACLsOn enables the bucket's ACLs.
const s3ACLsOn = `
resource "aws_s3_bucket_ownership_controls" "site" {
  bucket = aws_s3_bucket.site.id
  rule {
    object_ownership = "BucketOwnerPreferred"
  }
}
`

// TestBucketNewDefaults: a public bucket policy or ACL on a bucket the
// configuration creates, with no public access block of its own, was
// critical; S3 refuses both on a bucket created since April 2023 (public
// access blocked, ACLs disabled), so it is open only if the bucket is
// older: medium, and said so. A block that turns the defaults off, or a
// bucket the configuration adopts (import), is as before; an account's
// public access block (aws_s3_account_public_access_block) closes the
// buckets of its provider configuration.
func TestBucketNewDefaults(t *testing.T) {
	const (
		policy = "aws_s3_bucket_policy.site"
		acl    = "aws_s3_bucket_acl.site"
	)
	one := func(t *testing.T, rep *Report, addr string, sev Severity, says string) {
		t.Helper()
		got := activeOn(rep, RulePublicBucket, addr)
		if len(got) != 1 || got[0].Severity != sev || !strings.Contains(got[0].Message, says) {
			t.Errorf("%s on %s: %+v, want one %s saying %q", RulePublicBucket, addr, got, sev, says)
		}
	}
	none := func(t *testing.T, rep *Report, addr string) {
		t.Helper()
		if got := activeOn(rep, RulePublicBucket, addr); len(got) > 0 {
			t.Errorf("%s on %s: %+v, want none", RulePublicBucket, addr, got)
		}
	}
	t.Run("new bucket", func(t *testing.T) {
		rep := checkSource(t, s3NewDefaults)
		one(t, rep, policy, Medium, "April 2023")
		one(t, rep, acl, Medium, "April 2023")
	})
	t.Run("block turned off", func(t *testing.T) {
		rep := checkSource(t, s3NewDefaults+s3Unblocked)
		one(t, rep, policy, Critical, "without a condition")
		// ACLs stay disabled until ownership controls enable them.
		one(t, rep, acl, Medium, "ACLs")
	})
	t.Run("block off and ACLs on", func(t *testing.T) {
		rep := checkSource(t, s3NewDefaults+s3Unblocked+s3ACLsOn)
		one(t, rep, policy, Critical, "without a condition")
		one(t, rep, acl, Critical, "public-read")
	})
	t.Run("ACLs on, block left", func(t *testing.T) {
		rep := checkSource(t, s3NewDefaults+s3ACLsOn)
		one(t, rep, acl, Medium, "block_public_acls")
	})
	t.Run("adopted bucket", func(t *testing.T) {
		rep := checkSource(t, s3NewDefaults+"import {\n  to = aws_s3_bucket.site\n  id = \"example-site\"\n}\n")
		one(t, rep, policy, Critical, "without a condition")
		one(t, rep, acl, Critical, "public-read")
	})
	t.Run("block of a bucket not known statically", func(t *testing.T) {
		// It may be this bucket's, turning the defaults off.
		rep := checkSource(t, s3NewDefaults+"variable \"bucket\" {\n  type = string\n}\n"+strings.Replace(s3Unblocked, "aws_s3_bucket.site.id", "var.bucket", 1)+s3ACLsOn)
		one(t, rep, policy, Critical, "without a condition")
		one(t, rep, acl, Critical, "public-read")
	})
	account := func(policy, acls bool) string {
		return fmt.Sprintf("resource \"aws_s3_account_public_access_block\" \"all\" {\n  block_public_policy = %t\n  ignore_public_acls  = %t\n}\n", policy, acls)
	}
	t.Run("account block", func(t *testing.T) {
		rep := checkSource(t, s3NewDefaults+s3Unblocked+s3ACLsOn+account(true, true))
		none(t, rep, policy)
		none(t, rep, acl)
		rep = checkSource(t, s3NewDefaults+s3Unblocked+s3ACLsOn+account(false, true))
		one(t, rep, policy, Critical, "without a condition")
		none(t, rep, acl)
	})
	t.Run("account block of another configuration", func(t *testing.T) {
		other := "provider \"aws\" {\n  alias  = \"other\"\n  region = \"us-east-1\"\n  profile = \"other\"\n}\n" +
			strings.Replace(account(true, true), "{\n", "{\n  provider = aws.other\n", 1)
		rep := checkSource(t, s3NewDefaults+s3Unblocked+s3ACLsOn+other)
		one(t, rep, policy, Critical, "without a condition")
		one(t, rep, acl, Critical, "public-read")
	})
}
