package check

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
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
	// RuleNotebookInternet is a SageMaker notebook instance with a way to
	// the internet beside its VPC.
	RuleNotebookInternet = "AWS-SAGEMAKER-001"
	// RulePrivateAPIOpen is a private REST API every VPC endpoint reaches.
	RulePrivateAPIOpen = "AWS-APIGW-001"
	// RuleOpenPolicy is a queue, topic, repository, secret, key, vault or
	// event bus whose resource policy lets every caller in.
	RuleOpenPolicy = "AWS-POLICY-001"
	// RulePublicSnapshot is a database snapshot or machine image shared
	// with every AWS account.
	RulePublicSnapshot = "AWS-SNAP-001"
)

func publicServiceRules() []Rule {
	return []Rule{
		{RuleLambdaURLOpen, Medium, "Lambda function invoked without authentication",
			"A Lambda function URL sets authorization_type = \"NONE\": it takes unsigned HTTPS requests from the internet, and only the function's resource policy and its own code decide who gets in; or an aws_lambda_permission grants invocation to Principal \"*\" without a source_arn, source_account or principal_org_id, so any AWS account (and, for a function URL of type NONE, anyone) invokes it, or to an AWS service (apigateway.amazonaws.com, sns.amazonaws.com, …) without a source_arn or source_account, so that service invokes it for a resource of any AWS account. An authorization type or principal that is not known statically is read as open, and the finding says so.",
			"Set authorization_type = \"AWS_IAM\" on the function URL and grant lambda:InvokeFunctionUrl to the roles that call it, or put the function behind API Gateway with an authorizer; name the calling service and its source_arn in aws_lambda_permission."},
		{RuleSearchOpenPols, Critical, "OpenSearch domain open to everyone",
			"An OpenSearch or Elasticsearch domain with a public endpoint (no vpc_options) has an access policy (access_policies, or aws_opensearch_domain_policy / aws_elasticsearch_domain_policy) that allows Principal \"*\" without a condition that bounds who sends the request (read as for AWS-S3-001), and fine-grained access control (advanced_security_options) is off or admits anonymous users (anonymous_auth_enabled): anyone on the internet reads, writes and deletes its indices. Fine-grained access control whose enabled is not known statically is read as off, and one whose anonymous_auth_enabled is not as admitting anonymous users, and the finding says so. A policy only parts of which are known statically (the account or region named through data.aws_caller_identity or data.aws_region) is read for the statements those parts show, and the finding says so; one not known statically at all, or whose principal is not, is not judged here; the public endpoint itself is AWS-NET-002.",
			"Place the domain in a VPC (vpc_options), name the principals in its access policy or add an aws:SourceIp condition, or turn on fine-grained access control with an internal user database or IAM master user."},
		{RuleSearchHTTP, Medium, "OpenSearch domain takes plain HTTP from the internet",
			"An OpenSearch or Elasticsearch domain sets domain_endpoint_options.enforce_https = false (or a value not known statically, read so and said so; true unless set within the block), or has no domain_endpoint_options block, which leaves what the domain requires undocumented and is read as not HTTPS (but with fine-grained access control on, which AWS takes only with HTTPS required), and the internet reaches its endpoint on port 80: requests, credentials and indexed data cross the internet in the clear.",
			"Set enforce_https = true with tls_security_policy = \"Policy-Min-TLS-1-2-2019-07\" (or newer), and place the domain in a VPC (vpc_options)."},
		{RuleNotebookInternet, High, "SageMaker notebook instance with direct internet access",
			"A SageMaker notebook instance has direct internet access: direct_internet_access = \"Enabled\", which the provider sets when the attribute is left out, gives the notebook a network interface that SageMaker manages, with a route to the internet, beside the one in its VPC, so what it sends and fetches passes none of the VPC's security groups, network ACLs, routes, NAT or endpoint policies; a notebook that names no subnet_id runs in SageMaker's network alone, with internet access (SageMaker refuses Disabled without a subnet: CHECK-003). Whoever runs code in the notebook reaches the internet with its role's credentials. A value not known statically is read as Enabled, and the finding says so.",
			"Set subnet_id and security_groups to a private subnet and group of the VPC and direct_internet_access = \"Disabled\"; give the notebook the internet, if it needs it, through the VPC's NAT gateway and VPC endpoints for the AWS services it calls."},
		{RulePrivateAPIOpen, High, "Private API open to every VPC endpoint",
			"A private REST API (endpoint_configuration types = [\"PRIVATE\"]) has a resource policy (policy, or aws_api_gateway_rest_api_policy) with a statement that allows Principal \"*\" without an aws:SourceVpce or aws:SourceVpc condition, and no statement denies requests from other endpoints or networks: an execute-api interface endpoint in any VPC of any AWS account reaches the API, and only its methods' authorization stands in the way. A policy only parts of which are known statically (its own execution_arn, say) is read for what is known, and the finding says so; one not known statically at all is not judged. An API whose endpoint type is not known statically is read as private, and the finding says so.",
			"Add aws:SourceVpce (or aws:SourceVpc) to the Allow statement's condition, or a Deny for Principal \"*\" with a StringNotEquals condition on aws:SourceVpce naming the endpoints meant to reach the API."},
		{RuleOpenPolicy, High, "Resource policy open to every AWS account",
			"The resource policy of an SQS queue, SNS topic, ECR repository, Secrets Manager secret, KMS key, Glacier vault or EventBridge event bus (its policy or access_policy argument, or aws_sqs_queue_policy, aws_sns_topic_policy, aws_ecr_repository_policy, aws_secretsmanager_secret_policy, aws_kms_key_policy, aws_cloudwatch_event_bus_policy) has a statement that allows Principal \"*\" without a condition that bounds who sends the request (read as for AWS-S3-001; kms:CallerAccount bounds a key's too): every AWS account, and for some actions anyone, calls the actions it grants on the resource from the internet, reading secrets, decrypting with the key, pulling images or sending and receiving messages. A policy only parts of which are known statically is read for what is known, and the finding says so; one not known statically at all is not judged.",
			"Name the principals that need access (an account, role or service), or add a condition that bounds the callers: aws:PrincipalOrgID or aws:PrincipalAccount, aws:SourceArn or aws:SourceAccount for a service, kms:CallerAccount for a key."},
		{RulePublicSnapshot, Critical, "Snapshot or image shared with every AWS account",
			"An RDS snapshot (aws_db_snapshot, aws_db_cluster_snapshot) whose shared_accounts holds \"all\", or an AMI launch permission (aws_ami_launch_permission) for group \"all\", makes the snapshot or image public: every AWS account restores the database, with its data, or launches the image and reads its disks. A value not known statically is read as \"all\", and the finding says so.",
			"Share with the accounts that need it by their IDs (shared_accounts, account_id) or with an organization (organization_arn), never \"all\"."},
	}
}

// publicSnapshots reports database snapshots and machine images shared
// with every AWS account (AWS-SNAP-001).
func publicSnapshots(byType map[string][]*tf.Resource, fs *findings) {
	for _, typ := range []string{"aws_db_snapshot", "aws_db_cluster_snapshot"} {
		for _, r := range byType[typ] {
			accounts, u := strs(r.Values, "shared_accounts")
			switch {
			case slices.Contains(accounts, "all"):
				fs.add(RulePublicSnapshot, r, nil, "shared_accounts holds \"all\": every AWS account restores the snapshot and reads its data")
			case u:
				fs.add(RulePublicSnapshot, r, nil, "shared_accounts is not known statically: read as holding \"all\", so every AWS account may restore the snapshot and read its data")
			}
		}
	}
	for _, r := range byType["aws_ami_launch_permission"] {
		switch {
		case unknown(r.Values, "group"):
			fs.add(RulePublicSnapshot, r, nil, "group is not known statically: read as \"all\", so every AWS account may launch the image and read its disks")
		case str(r.Values, "group") == "all":
			fs.add(RulePublicSnapshot, r, nil, "group = \"all\": every AWS account launches the image and reads its disks")
		}
	}
}

// policyHolders are the arguments that hold a resource policy, which the
// service reads for callers of every account, by resource type, and what
// the resource is.
var policyHolders = []struct{ typ, attr, what string }{
	{"aws_sqs_queue", "policy", "queue"},
	{"aws_sqs_queue_policy", "policy", "queue"},
	{"aws_sns_topic", "policy", "topic"},
	{"aws_sns_topic_policy", "policy", "topic"},
	{"aws_ecr_repository_policy", "policy", "repository"},
	{"aws_secretsmanager_secret", "policy", "secret"},
	{"aws_secretsmanager_secret_policy", "policy", "secret"},
	{"aws_kms_key", "policy", "key"},
	{"aws_kms_key_policy", "policy", "key"},
	{"aws_glacier_vault", "access_policy", "vault"},
	{"aws_cloudwatch_event_bus_policy", "policy", "event bus"},
}

// openPolicies reports the resource policies of policyHolders that let
// every caller in (AWS-POLICY-001).
func (m *Model) openPolicies(byType map[string][]*tf.Resource, fs *findings) {
	for _, h := range policyHolders {
		for _, r := range byType[h.typ] {
			doc, partial := document(r.Values, h.attr)
			if sid, how, ok := m.publicStatement(doc); ok {
				fs.add(RuleOpenPolicy, r, nil, "statement %s of its %s allows Principal \"*\" %s: every AWS account calls what it grants on the %s%s", sid, h.attr, how, h.what, partial)
			}
		}
	}
}

// publicServices checks Lambda function URLs and permissions, and
// OpenSearch domain policies and plain HTTP.
func (m *Model) publicServices(byType map[string][]*tf.Resource, fs *findings) {
	m.searchHTTP(fs)
	m.notebookInternet(byType, fs)
	m.openPolicies(byType, fs)
	publicSnapshots(byType, fs)
	m.privateAPIs(byType, fs)
	for _, r := range byType["aws_lambda_function_url"] {
		switch t := str(r.Values, "authorization_type"); {
		case unknown(r.Values, "authorization_type"):
			fs.add(RuleLambdaURLOpen, r, nil, "authorization_type is not known statically: read as NONE, so the URL may take unsigned requests from the internet")
		case strings.EqualFold(t, "NONE"):
			fs.add(RuleLambdaURLOpen, r, nil, "authorization_type is NONE: the URL of %s takes unsigned requests from the internet; only its resource policy and code decide who gets in", orDash(str(r.Values, "function_name")))
		}
	}
	for _, r := range byType["aws_lambda_permission"] {
		// A source bounds the grant to one caller, whoever the principal;
		// an Alexa skill's token to the skill that presents it.
		bounded := false
		for _, k := range []string{"source_arn", "source_account", "principal_org_id", "event_source_token"} {
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
		case strings.HasSuffix(str(r.Values, "principal"), ".amazonaws.com"):
			fs.add(RuleLambdaURLOpen, r, nil, "grants %s to the service %s without source_arn or source_account: a resource of that service in any AWS account may be set to invoke the function", orDash(str(r.Values, "action")), str(r.Values, "principal"))
		}
	}
	policies := m.searchPolicies(byType)
	for _, typ := range []string{"aws_opensearch_domain", "aws_elasticsearch_domain"} {
		for _, r := range byType[typ] {
			if block(r.Values, "vpc_options") != nil || unknown(r.Values, "vpc_options") {
				continue // reached through its VPC's security groups
			}
			on, fgac := fineGrained(r)
			if on {
				continue // fine-grained access control authenticates every request
			}
			where := "access_policies"
			doc, partial := document(r.Values, "access_policies")
			sid, how, open := m.publicStatement(doc)
			for _, p := range policies[r.Address] {
				pdoc, ppartial := document(p.Values, "access_policies")
				if s, h, ok := m.publicStatement(pdoc); ok && !open {
					where, sid, how, open, partial = p.Address, s, h, true, ppartial
				}
			}
			if open {
				fs.add(RuleSearchOpenPols, r, nil, "its endpoint is public (no vpc_options), statement %s of %s allows Principal \"*\" %s and %s: anyone on the internet reads and writes its indices%s", sid, where, how, fgac, partial)
			}
		}
	}
}

// searchPolicies returns the domain policies (aws_opensearch_domain_policy,
// aws_elasticsearch_domain_policy) of each search domain, by its address.
func (m *Model) searchPolicies(byType map[string][]*tf.Resource) map[string][]*tf.Resource {
	policies := map[string][]*tf.Resource{}
	for _, pt := range [][2]string{{"aws_opensearch_domain_policy", "aws_opensearch_domain"}, {"aws_elasticsearch_domain_policy", "aws_elasticsearch_domain"}} {
		for _, p := range byType[pt[0]] {
			// A domain is named by domain_name, which the model's
			// lookup by name does not index, or by a reference to it
			// where its name is not known statically.
			name := m.ref(p.Values, "domain_name")
			for _, d := range byType[pt[1]] {
				if name != "" && (str(d.Values, "domain_name") == name || d.Address == m.addr(name)) {
					policies[d.Address] = append(policies[d.Address], p)
				}
			}
		}
	}
	return policies
}

// fineGrained reports whether the fine-grained access control of search
// domain r authenticates every request: on, without anonymous access,
// both known statically. Else it says why not; what is not known
// statically is read at its worst (off, admitting anonymous users), and
// said so.
func fineGrained(r *tf.Resource) (bool, string) {
	if unknown(r.Values, "advanced_security_options") {
		return false, "fine-grained access control is read as off (advanced_security_options is not known statically)"
	}
	aso := block(r.Values, "advanced_security_options")
	switch {
	case unknown(aso, "enabled"):
		return false, "fine-grained access control is read as off (advanced_security_options.enabled is not known statically)"
	case !boolean(aso, "enabled", false):
		return false, "fine-grained access control is off"
	case unknown(aso, "anonymous_auth_enabled"):
		return false, "fine-grained access control is read as admitting anonymous users (anonymous_auth_enabled is not known statically)"
	case boolean(aso, "anonymous_auth_enabled", false):
		return false, "fine-grained access control admits anonymous users (anonymous_auth_enabled)"
	}
	return true, ""
}

// principalKeys are the condition keys that name who signed a request:
// a statement for every principal under one of them still takes signed
// requests alone.
var principalKeys = []string{"aws:PrincipalOrgID", "aws:PrincipalOrgPaths", "aws:PrincipalAccount", "aws:PrincipalArn"}

// searchGate says what authenticates every request from the internet at
// large that a public search domain (r) takes, given its domain policies;
// "" when a request may get in unsigned from there, or that is not known.
// Fine-grained access control without anonymous access authenticates every
// request, whatever the policy. Else every access policy shown must be
// known statically, and each statement that may allow must name its
// principals, bound every principal by a condition on who signed
// (principalKeys), or admit unsigned requests only from addresses of its
// aws:SourceIp condition that no more than one network holds (wide): from
// anywhere else an unsigned request matches none. A domain with no policy
// in the scanned code may have one elsewhere, and is not judged.
func (m *Model) searchGate(r *tf.Resource, policies []*tf.Resource) string {
	if on, _ := fineGrained(r); on {
		return "fine-grained access control authenticates every request (advanced_security_options, without anonymous access)"
	}
	var docs []string
	if has(r.Values, "access_policies") || unknown(r.Values, "access_policies") {
		doc, _ := document(r.Values, "access_policies")
		docs = append(docs, doc)
	}
	for _, p := range policies {
		doc, _ := document(p.Values, "access_policies")
		docs = append(docs, doc)
	}
	if len(docs) == 0 {
		return ""
	}
	var unsigned []string
	for _, doc := range docs {
		ss := statements(doc)
		if len(ss) == 0 {
			return ""
		}
		for _, s := range ss {
			switch {
			case s.Effect == "Deny":
			case strings.Contains(fmt.Sprint(s.Principal), tf.UnknownJSON):
				return ""
			case !s.everyone() || s.conditionOn(principalKeys...):
			default:
				ips, ok := m.sourceIPs(s)
				if !ok {
					return ""
				}
				unsigned = append(unsigned, ips...)
			}
		}
	}
	if len(unsigned) > 0 {
		return fmt.Sprintf("its access policy admits unsigned requests only from %s (aws:SourceIp), and from elsewhere only requests signed (SigV4) by the principals it names", strings.Join(dedup(unsigned), ", "))
	}
	return "its access policy admits only requests signed (SigV4) by the principals it names"
}

// sourceIPs returns the addresses an IpAddress condition on aws:SourceIp
// of s bounds it to, when every one is known statically and together they
// are no more than one network holds (wide).
func (m *Model) sourceIPs(s statement) ([]string, bool) {
	var out []string
	var ps []netip.Prefix
	for op, tests := range s.Condition {
		if !strings.EqualFold(op, "IpAddress") {
			continue
		}
		t, _ := tests.(map[string]any)
		for k, v := range t {
			if !strings.EqualFold(k, "aws:SourceIp") {
				continue
			}
			vals, _ := v.([]any)
			if str, ok := v.(string); ok {
				vals = []any{str}
			}
			for _, e := range vals {
				text, _ := e.(string)
				p, ok := prefixOrAddr(text)
				if !ok {
					return nil, false
				}
				out, ps = append(out, text), append(ps, p)
			}
		}
	}
	if len(ps) == 0 || wide(m.Internet().Set, setOf(ps...), nil) {
		return nil, false
	}
	return out, true
}

// notebookInternet reports SageMaker notebook instances with direct
// internet access (AWS-SAGEMAKER-001): Enabled, the provider's default,
// or no subnet, which puts the notebook in SageMaker's own network alone.
func (m *Model) notebookInternet(byType map[string][]*tf.Resource, fs *findings) {
	for _, r := range byType["aws_sagemaker_notebook_instance"] {
		noSubnet := !has(r.Values, "subnet_id") && !unknown(r.Values, "subnet_id")
		where := "beside its VPC, past the VPC's security groups, network ACLs, routes and endpoints"
		if noSubnet {
			where = "in SageMaker's own network (subnet_id is not set), outside any VPC of the account"
		}
		switch v := str(r.Values, "direct_internet_access"); {
		case unknown(r.Values, "direct_internet_access"):
			fs.add(RuleNotebookInternet, r, nil, "direct_internet_access is not known statically: read as Enabled, so the notebook may reach the internet %s", where)
		case !has(r.Values, "direct_internet_access"):
			fs.add(RuleNotebookInternet, r, nil, "direct_internet_access is not set (the provider's default, Enabled): the notebook reaches the internet %s", where)
		case v == "Enabled":
			fs.add(RuleNotebookInternet, r, nil, "direct_internet_access = \"Enabled\": the notebook reaches the internet %s", where)
		case v != "Disabled":
			// The provider validates the value case for case.
			m.reject(r, "direct_internet_access = %q: the AWS provider takes Enabled or Disabled alone, as written, so the plan fails and nothing is created from it", v)
		case noSubnet:
			m.reject(r, "direct_internet_access = \"Disabled\" without a subnet_id: SageMaker disables direct internet access only for a notebook in a subnet of a VPC and refuses the notebook (ValidationException)")
		}
	}
}

// privateAPIs reports private REST APIs whose resource policy allows every
// principal without bounding the VPC endpoints or networks it is reached
// from (AWS-APIGW-001): any endpoint of any account reaches them.
func (m *Model) privateAPIs(byType map[string][]*tf.Resource, fs *findings) {
	policies := map[string][]*tf.Resource{}
	for _, p := range byType["aws_api_gateway_rest_api_policy"] {
		id := m.addr(m.ref(p.Values, "rest_api_id"))
		policies[id] = append(policies[id], p)
	}
	vpceKeys := []string{"aws:SourceVpce", "aws:SourceVpc"}
	for _, r := range byType["aws_api_gateway_rest_api"] {
		ec := block(r.Values, "endpoint_configuration")
		types, unk := strs(ec, "types")
		private := slices.ContainsFunc(types, func(t string) bool { return strings.EqualFold(t, "PRIVATE") })
		assumed := ""
		if !private && (unk || unknown(ec, "types") || unknown(r.Values, "endpoint_configuration")) {
			private, assumed = true, " (its endpoint type is not known statically: read as PRIVATE)"
		}
		if !private {
			continue // a public endpoint is the front-door model's
		}
		type source struct{ where, doc, partial string }
		var srcs []source
		if has(r.Values, "policy") {
			doc, partial := document(r.Values, "policy")
			srcs = append(srcs, source{"policy", doc, partial})
		}
		for _, p := range policies[r.Address] {
			doc, partial := document(p.Values, "policy")
			srcs = append(srcs, source{p.Address, doc, partial})
		}
		// A deny for other endpoints or networks, in any of the API's
		// policies, bounds every allow.
		bounded := false
		for _, src := range srcs {
			for _, s := range statements(src.doc) {
				if s.Effect == "Deny" && s.conditionOn(vpceKeys...) {
					bounded = true
				}
			}
		}
		if bounded {
			continue
		}
	sources:
		for _, src := range srcs {
			for i, s := range statements(src.doc) {
				if s.Effect == "Allow" && s.everyone() && !s.conditionOn(vpceKeys...) {
					fs.add(RulePrivateAPIOpen, r, nil, "the API is private, but statement %s of %s allows Principal \"*\" without an aws:SourceVpce or aws:SourceVpc condition: any VPC endpoint, in any AWS account, reaches it%s%s", s.name(i), src.where, src.partial, assumed)
					break sources
				}
			}
		}
	}
}

// s3Public reports buckets open to everyone through their policy or ACL
// (AWS-S3-001). A public access block, ACL or policy names its bucket by
// its name or ID, or by a reference to it where neither is known
// statically (bucketOf). An account's public access block
// (aws_s3_account_public_access_block) stands for every bucket of its
// provider configuration's account. A bucket the configuration creates
// (not one it adopts with an import block, nor one read from a plan) takes
// the defaults S3 gives every bucket created since April 2023, public
// access blocked and ACLs disabled, unless its own public access block
// or ownership controls turn them off: a policy or ACL that would open it
// is then refused on a new bucket and opens only an older one, graded
// medium and said so (s3Defaults).
func (m *Model) s3Public(byType map[string][]*tf.Resource, fs *findings) {
	bucketOf := func(r *tf.Resource) string { return m.addr(m.ref(r.Values, "bucket")) }
	blocked, aclBlocked := map[string]bool{}, map[string]bool{}
	d := s3Defaults{blockSet: map[string]bool{}, aclsOn: map[string]bool{}, newBucket: map[string]bool{}}
	for _, r := range byType["aws_s3_bucket_public_access_block"] {
		b := bucketOf(r)
		policy := boolean(r.Values, "block_public_policy", false) || boolean(r.Values, "restrict_public_buckets", false)
		acls := boolean(r.Values, "block_public_acls", false) || boolean(r.Values, "ignore_public_acls", false)
		if b == "" {
			// A bucket not known statically: it blocks none the project
			// knows, and may turn off the defaults of any.
			d.anyPolicyOff = d.anyPolicyOff || !policy
			d.anyACLsOff = d.anyACLsOff || !acls
			continue
		}
		d.blockSet[b] = true
		blocked[b] = blocked[b] || policy
		aclBlocked[b] = aclBlocked[b] || acls
	}
	// Ownership controls that enforce the bucket owner disable ACLs: S3
	// refuses a public one on the bucket or its objects. Others enable
	// them.
	for _, r := range byType["aws_s3_bucket_ownership_controls"] {
		b := bucketOf(r)
		enforced := str(block(r.Values, "rule"), "object_ownership") == "BucketOwnerEnforced"
		switch {
		case b == "":
			d.anyACLsOn = d.anyACLsOn || !enforced
		case enforced:
			aclBlocked[b] = true
		default:
			d.aclsOn[b] = true
		}
	}
	accountPolicy, accountACLs := map[string]bool{}, map[string]bool{}
	for _, r := range byType["aws_s3_account_public_access_block"] {
		c := m.configs[r.Address]
		accountPolicy[c] = accountPolicy[c] || boolean(r.Values, "block_public_policy", false) || boolean(r.Values, "restrict_public_buckets", false)
		accountACLs[c] = accountACLs[c] || boolean(r.Values, "block_public_acls", false) || boolean(r.Values, "ignore_public_acls", false)
	}
	for _, r := range byType["aws_s3_bucket"] {
		if r.ImportID == "" && !r.Planned {
			d.newBucket[r.Address] = true
		}
	}
	// configOf is the provider configuration of the bucket b, named by r:
	// the bucket's own where the project holds it, else r's.
	configOf := func(r *tf.Resource, b string) string {
		if br := m.byRef[b]; br != nil && br.Type == "aws_s3_bucket" {
			return m.configs[br.Address]
		}
		return m.configs[r.Address]
	}
	// A canned ACL or grant for everyone (AllUsers) or every AWS account
	// (AuthenticatedUsers), on the bucket (inline before the AWS provider 4.0)
	// or in aws_s3_bucket_acl, or on an object, which its own ACL opens
	// whatever the bucket's say.
	for _, typ := range []string{"aws_s3_bucket", "aws_s3_bucket_acl", "aws_s3_object", "aws_s3_bucket_object"} {
		what := "bucket"
		if strings.HasSuffix(typ, "_object") {
			what = "object"
		}
		for _, r := range byType[typ] {
			bucket := bucketOf(r)
			if aclBlocked[bucket] || typ == "aws_s3_bucket" && (aclBlocked[r.Address] || aclBlocked[str(r.Values, "id")]) {
				continue
			}
			if typ == "aws_s3_bucket" {
				bucket = r.Address
			}
			if accountACLs[configOf(r, bucket)] {
				continue
			}
			sev, refused := Critical, d.acls(m.byRef[bucket])
			if refused != "" {
				sev = Medium
			} else {
				refused = ", and no public access block with block_public_acls or ignore_public_acls stands in the way"
			}
			if acl := str(r.Values, "acl"); acl == "public-read" || acl == "public-read-write" || acl == "authenticated-read" {
				fs.addSev(RulePublicBucket, sev, r, nil, "acl = %q lets %s read the %s%s", acl, aclWho(acl), what, refused)
				continue
			}
			for _, acp := range blocks(r.Values, "access_control_policy") {
				for _, g := range blocks(acp, "grant") {
					for _, gr := range blocks(g, "grantee") {
						if uri := str(gr, "uri"); strings.HasSuffix(uri, "/global/AllUsers") || strings.HasSuffix(uri, "/global/AuthenticatedUsers") {
							fs.addSev(RulePublicBucket, sev, r, nil, "a grant gives %s to %s%s", orDash(str(g, "permission")), uri, refused)
						}
					}
				}
			}
		}
	}
	for _, r := range byType["aws_s3_bucket_policy"] {
		bucket := bucketOf(r)
		if blocked[bucket] && bucket != "" || accountPolicy[configOf(r, bucket)] {
			continue
		}
		sev, refused := Critical, d.policy(m.byRef[bucket])
		if refused != "" {
			sev = Medium
		}
		if bucket == "" {
			bucket = "a bucket not known statically"
		}
		doc, partial := document(r.Values, "policy")
		if sid, how, ok := m.publicStatement(doc); ok {
			fs.addSev(RulePublicBucket, sev, r, nil, "statement %s allows Principal \"*\" %s on %s%s%s", sid, how, bucket, partial, refused)
		}
	}
	// The bucket's own policy argument, which the AWS provider takes
	// beside aws_s3_bucket_policy (deprecated, not removed).
	for _, r := range byType["aws_s3_bucket"] {
		if !has(r.Values, "policy") || blocked[r.Address] || blocked[str(r.Values, "id")] || accountPolicy[m.configs[r.Address]] {
			continue
		}
		sev, refused := Critical, d.policy(r)
		if refused != "" {
			sev = Medium
		}
		doc, partial := document(r.Values, "policy")
		if sid, how, ok := m.publicStatement(doc); ok {
			fs.addSev(RulePublicBucket, sev, r, nil, "statement %s of its policy argument allows Principal \"*\" %s%s%s", sid, how, partial, refused)
		}
	}
}

// s3Defaults holds what says whether a bucket keeps the defaults S3 gives
// every bucket created since April 2023: all four public access block
// settings on, and ACLs disabled (object ownership BucketOwnerEnforced).
type s3Defaults struct {
	newBucket map[string]bool // buckets the configuration creates, by address
	blockSet  map[string]bool // buckets a public access block of the project names
	aclsOn    map[string]bool // buckets whose ownership controls enable ACLs
	// A public access block or ownership controls of a bucket not known
	// statically, that may turn a bucket's defaults off.
	anyPolicyOff, anyACLsOff, anyACLsOn bool
}

const s3DefaultsLost = ": applying it fails on a bucket created since then, and only an older one is open"

// policy says why S3 refuses a public policy on b, "" where it may take it.
func (d s3Defaults) policy(b *tf.Resource) string {
	if b == nil || !d.newBucket[b.Address] || d.blockSet[b.Address] || d.anyPolicyOff {
		return ""
	}
	return "; but S3 blocks public policies on every bucket created since April 2023 unless its public access block turns block_public_policy and restrict_public_buckets off, and none here does" + s3DefaultsLost
}

// acls says why S3 refuses a public ACL on b or its objects, "" where it
// may take it.
func (d s3Defaults) acls(b *tf.Resource) string {
	switch {
	case b == nil || !d.newBucket[b.Address]:
		return ""
	case !d.blockSet[b.Address] && !d.anyACLsOff:
		return "; but S3 blocks public ACLs on every bucket created since April 2023 unless its public access block turns block_public_acls and ignore_public_acls off, and none here does" + s3DefaultsLost
	case !d.aclsOn[b.Address] && !d.anyACLsOn:
		return "; but S3 disables ACLs on every bucket created since April 2023 (object ownership BucketOwnerEnforced) unless its ownership controls enable them, and none here do" + s3DefaultsLost
	}
	return ""
}

// aclWho names whom a public canned ACL admits.
func aclWho(acl string) string {
	if acl == "authenticated-read" {
		return "every AWS account"
	}
	return "anyone"
}

// statement is one statement of an IAM policy document, as far as the
// rules read it.
type statement struct {
	Sid       string
	Effect    string
	Principal any
	Condition map[string]any
}

// statements reads the statements of an IAM policy document (a list, or
// one statement alone); nil when it is not one.
func statements(doc string) []statement {
	var p struct {
		Statement json.RawMessage
	}
	if json.Unmarshal([]byte(doc), &p) != nil {
		return nil
	}
	var list []statement
	if json.Unmarshal(p.Statement, &list) != nil {
		var one statement
		if json.Unmarshal(p.Statement, &one) != nil {
			return nil
		}
		list = []statement{one}
	}
	return list
}

// everyone reports whether a statement's principal is every principal:
// "*", or "*" among the AWS principals.
func (s statement) everyone() bool {
	star := func(v any) bool {
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
	if m, ok := s.Principal.(map[string]any); ok {
		return star(m["AWS"])
	}
	return star(s.Principal)
}

// name names the i-th statement s: its Sid, quoted, or its index.
func (s statement) name(i int) string {
	if s.Sid == "" {
		return fmt.Sprintf("[%d]", i)
	}
	return fmt.Sprintf("%q", s.Sid)
}

// conditionOn reports whether any of the statement's conditions, under
// whatever operator, tests one of keys (case-insensitive, as IAM reads
// condition keys).
func (s statement) conditionOn(keys ...string) bool {
	for _, op := range s.Condition {
		tests, _ := op.(map[string]any)
		for k := range tests {
			for _, want := range keys {
				if strings.EqualFold(k, want) {
					return true
				}
			}
		}
	}
	return false
}

// publicStatement finds an Allow statement for every principal that no
// condition bounds (unbounded) in an IAM policy document: its name, and
// how it is open.
func (m *Model) publicStatement(doc string) (sid, how string, ok bool) {
	for i, s := range statements(doc) {
		if s.Effect != "Allow" || !s.everyone() {
			continue
		}
		if how, open := m.unbounded(s); open {
			return s.name(i), how, true
		}
	}
	return "", "", false
}

// boundKeys are the condition keys that, tested against fixed values,
// bound a statement for every principal to the callers they name: who
// signed the request (principalKeys), or the resource, account,
// organization, VPC endpoint or network it was sent from, as AWS reads a
// policy as not public. aws:SourceIp bounds it by range (sourceIPs).
var boundKeys = append(slices.Clone(principalKeys), "aws:userid", "aws:SourceArn", "aws:SourceAccount", "aws:SourceOwner", "aws:SourceOrgID", "aws:SourceOrgPaths", "aws:SourceVpc", "aws:SourceVpce", "s3:DataAccessPointArn", "s3:DataAccessPointAccount", "s3:x-amz-server-side-encryption-aws-kms-key-id", "kms:CallerAccount")

// unbounded says whether a statement for every principal is open to
// every caller under its conditions, and how: without one, or under
// conditions none of which bounds who gets in. A condition bounds it when
// it tests a key of boundKeys for equality with fixed values (a pattern
// without wildcards, neither holding a policy variable), or aws:SourceIp
// against ranges no wider than one network holds (wide). A negated test (StringNotEquals, NotIpAddress),
// an IfExists one (true where the request lacks the key) or a ForAllValues
// one (true of an empty set) bounds nothing. A value not known statically
// bounds under an equality test, which takes it as written; under a
// pattern test it is read as a wildcard, and for aws:SourceIp as every
// address, and the answer says so.
func (m *Model) unbounded(s statement) (string, bool) {
	if len(s.Condition) == 0 {
		return "without a condition", true
	}
	var keys, unread []string
	for op, tests := range s.Condition {
		t, _ := tests.(map[string]any)
		name := strings.ToLower(op)
		set := strings.HasPrefix(name, "forallvalues:")
		name = strings.TrimPrefix(strings.TrimPrefix(name, "foranyvalue:"), "forallvalues:")
		negated := strings.Contains(name, "not") || strings.HasSuffix(name, "ifexists") || set
		for k, v := range t {
			keys = append(keys, k)
			if negated {
				continue
			}
			vals, _ := v.([]any)
			if one, ok := v.(string); ok {
				vals = []any{one}
			}
			if len(vals) == 0 {
				continue
			}
			switch {
			case strings.EqualFold(k, "aws:SourceIp") && name == "ipaddress":
				var ps []netip.Prefix
				why := ""
				for _, e := range vals {
					text, _ := e.(string)
					p, ok := prefixOrAddr(text)
					switch {
					case ok:
						ps = append(ps, p)
					case strings.Contains(text, tf.UnknownJSON):
						why = k + " is not known statically: read as every address"
					default:
						why = fmt.Sprintf("%s %q is neither an address nor a range: read as every address", k, text)
					}
				}
				if why != "" {
					unread = append(unread, why)
					continue
				}
				if !wide(m.Internet().Set, setOf(ps...), nil) {
					return "", false
				}
			case slices.ContainsFunc(boundKeys, func(b string) bool { return strings.EqualFold(b, k) }):
				like := strings.HasSuffix(name, "like")
				if !like && name != "stringequals" && name != "stringequalsignorecase" && name != "arnequals" {
					continue
				}
				fixed := true
				for _, e := range vals {
					text, ok := e.(string)
					switch {
					case !ok:
						fixed = false
					case like && strings.Contains(text, tf.UnknownJSON):
						fixed = false
						unread = append(unread, k+" is not known statically: read as a wildcard")
					case like && strings.ContainsAny(text, "*?"), strings.Contains(text, "${"):
						fixed = false
					}
				}
				if fixed {
					return "", false
				}
			}
		}
	}
	slices.Sort(keys)
	how := fmt.Sprintf("under a condition on %s that does not bound who sends the request", strings.Join(dedup(keys), ", "))
	if len(unread) > 0 {
		how += " (" + strings.Join(dedup(unread), "; ") + ")"
	}
	return how, true
}

// prefixOrAddr reads a range or a single address of an aws:SourceIp
// condition.
func prefixOrAddr(text string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(text); err == nil {
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(text)
	if err != nil {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, a.BitLen()), true
}

// searchHTTPS says whether a search domain requires HTTPS, and when it
// does not, why: enforce_https = false, or not known statically (read as
// false), or no domain_endpoint_options block at all, where the provider
// sends no endpoint options and what the domain then requires is not
// documented (read as not HTTPS) but for a domain with fine-grained
// access control, which AWS turns on only with HTTPS required. Within the
// block, enforce_https is true unless set.
func searchHTTPS(vals map[string]any) (bool, string) {
	opts := block(vals, "domain_endpoint_options")
	switch {
	case unknown(vals, "domain_endpoint_options") || opts != nil && unknown(opts, "enforce_https"):
		return false, "enforce_https is not known statically: read as false"
	case opts == nil && boolean(block(vals, "advanced_security_options"), "enabled", false):
		// Fine-grained access control takes HTTPS required, or the
		// domain is not made.
	case opts == nil:
		return false, "no domain_endpoint_options block: the provider sends no endpoint options, and whether the domain then requires HTTPS is not documented: read as not"
	case !boolean(opts, "enforce_https", true):
		return false, "enforce_https = false"
	}
	return true, ""
}

// searchHTTP reports search domains that do not require HTTPS
// (searchHTTPS), where the internet reaches their endpoint on port 80
// (AWS-OS-002).
func (m *Model) searchHTTP(fs *findings) {
	for _, e := range m.Endpoints {
		if e.Kind != "search" {
			continue
		}
		https, why := searchHTTPS(e.Res.Values)
		if https {
			continue
		}
		if res := m.Reach(m.Internet(), e, "tcp", 80); res.Reachable {
			fs.add(RuleSearchHTTP, e.Res, res.Path, "%s: the internet reaches its endpoint on tcp 80, in the clear", why)
		}
	}
}
