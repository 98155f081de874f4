package check

import "testing"

// A search domain whose TLS policy admits TLS 1.0 is AWS-LB-002; one that
// requires TLS 1.2, or leaves the policy unset (its default has changed
// across the provider's versions, so none is relied on), is not.
func TestSearchDomainTLSPolicy(t *testing.T) {
	rep := checkSource(t, `
resource "aws_elasticsearch_domain" "old" {
  domain_name = "old"
  domain_endpoint_options {
    enforce_https       = true
    tls_security_policy = "Policy-Min-TLS-1-0-2019-07"
  }
}
resource "aws_opensearch_domain" "strict" {
  domain_name = "strict"
  domain_endpoint_options {
    enforce_https       = true
    tls_security_policy = "Policy-Min-TLS-1-2-PFS-2023-10"
  }
}
resource "aws_opensearch_domain" "unset" {
  domain_name = "unset"
  domain_endpoint_options {
    enforce_https = true
  }
}
`)
	wantMessages(t, rep, RuleWeakTLS, map[string]string{
		"aws_elasticsearch_domain.old": "Policy-Min-TLS-1-0-2019-07",
		"aws_opensearch_domain.strict": "",
		"aws_opensearch_domain.unset":  "",
	})
}
