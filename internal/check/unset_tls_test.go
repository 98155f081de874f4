package check

import (
	"strings"
	"testing"
)

// Settings left out are what the provider or AWS then chooses, and one
// whose default is not documented is read at its worst, saying so: a REST
// API custom domain without security_policy is read as TLS_1_0; a
// CloudFront distribution on its own certificate without
// minimum_protocol_version takes the provider's default, TLSv1, while one
// on CloudFront's certificate is not reported; a search domain without
// domain_endpoint_options is read as taking HTTP (port 80 answers), but
// not one with fine-grained access control, which AWS takes only with
// HTTPS required, nor one whose block leaves enforce_https to its
// default, true.
func TestUnsetTLSSettings(t *testing.T) {
	rep := run(t, "testdata/aws/unset-tls")
	for addr, want := range map[string]string{
		"aws_api_gateway_domain_name.api":  "security_policy is not set",
		"aws_cloudfront_distribution.www":  "minimum_protocol_version is not set: the default, TLSv1",
		"aws_opensearch_domain.logs@OS002": "no domain_endpoint_options block",
	} {
		rule := RuleWeakTLS
		if a, ok := strings.CutSuffix(addr, "@OS002"); ok {
			addr, rule = a, RuleSearchHTTP
		}
		if f := findingOn(rep, rule, addr); f == nil || !strings.Contains(f.Message, want) {
			t.Errorf("%s on %s: %+v, want one saying %q", rule, addr, f, want)
		}
	}
	for _, addr := range []string{"aws_api_gateway_domain_name.api_v2", "aws_cloudfront_distribution.preview"} {
		if f := findingOn(rep, RuleWeakTLS, addr); f != nil {
			t.Errorf("%s: %s", addr, f.Message)
		}
	}
	for _, addr := range []string{"aws_opensearch_domain.audit", "aws_opensearch_domain.search"} {
		if f := findingOn(rep, RuleSearchHTTP, addr); f != nil {
			t.Errorf("%s: %s", addr, f.Message)
		}
		if f := findingOn(rep, RuleExposedPort, addr); f == nil || strings.Contains(f.Message, "tcp 80") {
			t.Errorf("%s: %+v, want HTTPS alone reached", addr, f)
		}
	}
}
