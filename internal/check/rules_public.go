package check

import (
	"encoding/json"
	"fmt"
	"strings"

	"moat/internal/check/tf"
)

// AWS services that face the internet on their own endpoints, outside any
// VPC: an S3 bucket, a Lambda function URL and an OpenSearch domain without
// vpc_options.
// What stands in the way is their own authentication and resource policy.

// Public-service rule IDs.
const (
	RuleLambdaURLOpen  = "AWS-LAMBDA-001"
	RuleSearchOpenPols = "AWS-OS-001"
	RuleSearchHTTP     = "AWS-OS-002"
)

func publicServiceRules() []Rule {
	return []Rule{
		{RuleLambdaURLOpen, Medium, "Lambda function invoked without authentication",
			"A Lambda function URL sets authorization_type = \"NONE\": it takes unsigned HTTPS requests from the internet, and only the function's resource policy and its own code decide who gets in; or an aws_lambda_permission grants invocation to Principal \"*\" without a source_arn, source_account or principal_org_id, so any AWS account (and, for a function URL of type NONE, anyone) invokes it. An authorization type or principal that is not known statically is read as open, and the finding says so.",
			"Set authorization_type = \"AWS_IAM\" on the function URL and grant lambda:InvokeFunctionUrl to the roles that call it, or put the function behind API Gateway with an authorizer; name the calling service and its source_arn in aws_lambda_permission."},
		{RuleSearchOpenPols, Critical, "OpenSearch domain open to everyone",
			"An OpenSearch or Elasticsearch domain with a public endpoint (no vpc_options) has an access policy (access_policies, or aws_opensearch_domain_policy / aws_elasticsearch_domain_policy) that allows Principal \"*\" without a condition, and fine-grained access control (advanced_security_options) is off: anyone on the internet reads, writes and deletes its indices. A policy only parts of which are known statically (the account or region named through data.aws_caller_identity or data.aws_region) is read for the statements those parts show, and the finding says so; one not known statically at all, or whose principal is not, is not judged here; the public endpoint itself is AWS-NET-002.",
			"Place the domain in a VPC (vpc_options), name the principals in its access policy or add an aws:SourceIp condition, or turn on fine-grained access control with an internal user database or IAM master user."},
		{RuleSearchHTTP, Medium, "OpenSearch domain takes plain HTTP from the internet",
			"An OpenSearch or Elasticsearch domain sets domain_endpoint_options.enforce_https = false (or a value not known statically, read so and said so), and the internet reaches its endpoint on port 80: requests, credentials and indexed data cross the internet in the clear.",
			"Set enforce_https = true with tls_security_policy = \"Policy-Min-TLS-1-2-2019-07\" (or newer), and place the domain in a VPC (vpc_options)."},
	}
}

// publicServices checks Lambda function URLs and permissions, and
// OpenSearch domain policies and plain HTTP.
func (m *Model) publicServices(byType map[string][]*tf.Resource, fs *findings) {
	m.searchHTTP(fs)
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
			where := "access_policies"
			doc, partial := document(r.Values, "access_policies")
			sid, open := publicStatement(doc)
			for _, p := range policies[r.Address] {
				pdoc, ppartial := document(p.Values, "access_policies")
				if s, ok := publicStatement(pdoc); ok && !open {
					where, sid, open, partial = p.Address, s, true, ppartial
				}
			}
			if open {
				fs.add(RuleSearchOpenPols, r, nil, "its endpoint is public (no vpc_options), statement %s of %s allows Principal \"*\" without a condition and %s: anyone on the internet reads and writes its indices%s", sid, where, fgac, partial)
			}
		}
	}
}

// s3Public reports buckets open to everyone through their policy or ACL
// (AWS-S3-001).
func s3Public(byType map[string][]*tf.Resource, fs *findings) {
	blocked, aclBlocked := map[string]bool{}, map[string]bool{}
	for _, r := range byType["aws_s3_bucket_public_access_block"] {
		if boolean(r.Values, "block_public_policy", false) || boolean(r.Values, "restrict_public_buckets", false) {
			blocked[str(r.Values, "bucket")] = true
		}
		if boolean(r.Values, "block_public_acls", false) || boolean(r.Values, "ignore_public_acls", false) {
			aclBlocked[str(r.Values, "bucket")] = true
		}
	}
	// A canned ACL or grant for everyone (AllUsers) or every AWS account
	// (AuthenticatedUsers), on the bucket (inline before the AWS provider 4.0)
	// or in aws_s3_bucket_acl.
	for _, typ := range []string{"aws_s3_bucket", "aws_s3_bucket_acl"} {
		for _, r := range byType[typ] {
			bucket := str(r.Values, "bucket")
			if aclBlocked[bucket] || typ == "aws_s3_bucket" && (aclBlocked[r.Address] || aclBlocked[str(r.Values, "id")]) {
				continue
			}
			if acl := str(r.Values, "acl"); acl == "public-read" || acl == "public-read-write" || acl == "authenticated-read" {
				fs.add(RulePublicBucket, r, nil, "acl = %q lets %s read the bucket, and no public access block with block_public_acls or ignore_public_acls stands in the way", acl, aclWho(acl))
				continue
			}
			for _, acp := range blocks(r.Values, "access_control_policy") {
				for _, g := range blocks(acp, "grant") {
					for _, gr := range blocks(g, "grantee") {
						if uri := str(gr, "uri"); strings.HasSuffix(uri, "/global/AllUsers") || strings.HasSuffix(uri, "/global/AuthenticatedUsers") {
							fs.add(RulePublicBucket, r, nil, "a grant gives %s to %s, and no public access block with block_public_acls or ignore_public_acls stands in the way", orDash(str(g, "permission")), uri)
						}
					}
				}
			}
		}
	}
	for _, r := range byType["aws_s3_bucket_policy"] {
		if blocked[str(r.Values, "bucket")] {
			continue
		}
		doc, partial := document(r.Values, "policy")
		if sid, ok := publicStatement(doc); ok {
			fs.add(RulePublicBucket, r, nil, "statement %s allows Principal \"*\" without a condition on %s%s", sid, str(r.Values, "bucket"), partial)
		}
	}
}

// aclWho names whom a public canned ACL admits.
func aclWho(acl string) string {
	if acl == "authenticated-read" {
		return "every AWS account"
	}
	return "anyone"
}

// publicStatement finds an Allow statement for every principal without a
// condition in an IAM policy document.
func publicStatement(doc string) (string, bool) {
	var p struct {
		Statement json.RawMessage
	}
	if json.Unmarshal([]byte(doc), &p) != nil {
		return "", false
	}
	type stmt struct {
		Sid       string
		Effect    string
		Principal any
		Condition map[string]any
	}
	var list []stmt
	if json.Unmarshal(p.Statement, &list) != nil {
		var one stmt
		if json.Unmarshal(p.Statement, &one) != nil {
			return "", false
		}
		list = []stmt{one}
	}
	everyone := func(v any) bool {
		switch v := v.(type) {
		case string:
			return v == "*"
		case []any:
			for _, e := range v {
				if e == "*" {
					return true
				}
			}
		}
		return false
	}
	for i, s := range list {
		if s.Effect != "Allow" || len(s.Condition) > 0 {
			continue
		}
		pub := everyone(s.Principal)
		if m, ok := s.Principal.(map[string]any); ok {
			pub = everyone(m["AWS"])
		}
		if pub {
			if s.Sid == "" {
				return fmt.Sprintf("[%d]", i), true
			}
			return fmt.Sprintf("%q", s.Sid), true
		}
	}
	return "", false
}

// searchHTTP reports search domains that do not enforce HTTPS, where the
// internet reaches their endpoint on port 80 (AWS-OS-002). Left unset,
// enforce_https is the provider's to decide and is not reported here.
func (m *Model) searchHTTP(fs *findings) {
	for _, e := range m.Endpoints {
		if e.Kind != "search" {
			continue
		}
		opts := block(e.Res.Values, "domain_endpoint_options")
		why := "enforce_https = false"
		switch {
		case unknown(e.Res.Values, "domain_endpoint_options") || opts != nil && unknown(opts, "enforce_https"):
			why = "enforce_https is not known statically: read as false"
		case opts == nil || !has(opts, "enforce_https") || boolean(opts, "enforce_https", true):
			continue
		}
		if res := m.Reach(m.Internet(), e, "tcp", 80); res.Reachable {
			fs.add(RuleSearchHTTP, e.Res, res.Path, "%s: the internet reaches its endpoint on tcp 80, in the clear", why)
		}
	}
}
