package check

import (
	"strings"

	"moat/internal/check/tf"
)

// AWS services that face the internet on their own endpoints, outside any
// VPC: a Lambda function URL and an OpenSearch domain without vpc_options.
// What stands in the way is their own authentication and resource policy.

// Public-service rule IDs.
const (
	RuleLambdaURLOpen  = "AWS-LAMBDA-001"
	RuleSearchOpenPols = "AWS-OS-001"
)

func publicServiceRules() []Rule {
	return []Rule{
		{RuleLambdaURLOpen, Medium, "Lambda function invoked without authentication",
			"A Lambda function URL sets authorization_type = \"NONE\": it takes unsigned HTTPS requests from the internet, and only the function's resource policy and its own code decide who gets in; or an aws_lambda_permission grants invocation to Principal \"*\" without a source_arn, source_account or principal_org_id, so any AWS account (and, for a function URL of type NONE, anyone) invokes it. An authorization type or principal that is not known statically is read as open, and the finding says so.",
			"Set authorization_type = \"AWS_IAM\" on the function URL and grant lambda:InvokeFunctionUrl to the roles that call it, or put the function behind API Gateway with an authorizer; name the calling service and its source_arn in aws_lambda_permission."},
		{RuleSearchOpenPols, Critical, "OpenSearch domain open to everyone",
			"An OpenSearch or Elasticsearch domain with a public endpoint (no vpc_options) has an access policy (access_policies, or aws_opensearch_domain_policy / aws_elasticsearch_domain_policy) that allows Principal \"*\" without a condition, and fine-grained access control (advanced_security_options) is off: anyone on the internet reads, writes and deletes its indices. A policy that is not known statically is not judged here; the public endpoint itself is AWS-NET-002.",
			"Place the domain in a VPC (vpc_options), name the principals in its access policy or add an aws:SourceIp condition, or turn on fine-grained access control with an internal user database or IAM master user."},
	}
}

// publicServices checks Lambda function URLs and permissions, and
// OpenSearch domain policies.
func (m *Model) publicServices(byType map[string][]*tf.Resource, fs *findings) {
	for _, r := range byType["aws_lambda_function_url"] {
		switch t := str(r.Values, "authorization_type"); {
		case unknown(r.Values, "authorization_type"):
			fs.add(RuleLambdaURLOpen, r, nil, "authorization_type is not known statically: read as NONE, so the URL may take unsigned requests from the internet")
		case strings.EqualFold(t, "NONE"):
			fs.add(RuleLambdaURLOpen, r, nil, "authorization_type is NONE: the URL of %s takes unsigned requests from the internet; only its resource policy and code decide who gets in", orDash(str(r.Values, "function_name")))
		}
	}
	for _, r := range byType["aws_lambda_permission"] {
		// A source bounds the grant to one caller, whoever the principal.
		bounded := false
		for _, k := range []string{"source_arn", "source_account", "principal_org_id"} {
			if has(r.Values, k) {
				bounded = true
			}
		}
		switch {
		case bounded:
		case unknown(r.Values, "principal"):
			fs.add(RuleLambdaURLOpen, r, nil, "principal is not known statically and no source_arn, source_account or principal_org_id bounds the grant: read as \"*\", so every AWS account may invoke the function")
		case str(r.Values, "principal") == "*":
			fs.add(RuleLambdaURLOpen, r, nil, "grants %s to Principal \"*\" without source_arn, source_account or principal_org_id: every AWS account invokes the function", orDash(str(r.Values, "action")))
		}
	}
	// Domain policies may be resources of their own, naming the domain.
	policies := map[string][]*tf.Resource{}
	for _, pt := range [][2]string{{"aws_opensearch_domain_policy", "aws_opensearch_domain"}, {"aws_elasticsearch_domain_policy", "aws_elasticsearch_domain"}} {
		for _, p := range byType[pt[0]] {
			// A domain is named by domain_name, which the model's
			// lookup by name does not index.
			name := str(p.Values, "domain_name")
			for _, d := range byType[pt[1]] {
				if name != "" && (str(d.Values, "domain_name") == name || d.Address == m.addr(name)) {
					policies[d.Address] = append(policies[d.Address], p)
				}
			}
		}
	}
	for _, typ := range []string{"aws_opensearch_domain", "aws_elasticsearch_domain"} {
		for _, r := range byType[typ] {
			if block(r.Values, "vpc_options") != nil || unknown(r.Values, "vpc_options") {
				continue // reached through its VPC's security groups
			}
			fgac := "fine-grained access control is off"
			if aso := block(r.Values, "advanced_security_options"); aso != nil && (boolean(aso, "enabled", false) || unknown(aso, "enabled")) {
				if !boolean(aso, "anonymous_auth_enabled", false) {
					continue // fine-grained access control authenticates every request
				}
				fgac = "fine-grained access control admits anonymous users (anonymous_auth_enabled)"
			}
			where, doc := "access_policies", str(r.Values, "access_policies")
			sid, open := publicStatement(doc)
			for _, p := range policies[r.Address] {
				if s, ok := publicStatement(str(p.Values, "access_policies")); ok && !open {
					where, sid, open = p.Address, s, true
				}
			}
			if open {
				fs.add(RuleSearchOpenPols, r, nil, "its endpoint is public (no vpc_options), statement %s of %s allows Principal \"*\" without a condition and %s: anyone on the internet reads and writes its indices", sid, where, fgac)
			}
		}
	}
}
