package check

import (
	"fmt"
	"sort"
	"strings"

	"moat/internal/check/tf"
)

// Severity orders findings; --fail-on compares against it.
type Severity int

// Severities, lowest first.
const (
	Info Severity = iota
	Low
	Medium
	High
	Critical
)

var severityNames = []string{"info", "low", "medium", "high", "critical"}

func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return "unknown"
	}
	return severityNames[s]
}

// ParseSeverity reads a severity name (any case).
func ParseSeverity(s string) (Severity, error) {
	for i, n := range severityNames {
		if strings.EqualFold(s, n) {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("check: unknown severity %q (want one of %s)", s, strings.Join(severityNames, ", "))
}

// Rule is one check.
type Rule struct {
	ID          string
	Severity    Severity
	Title       string
	Description string
	Remediation string
}

// Finding is one rule violated by one resource (or file).
type Finding struct {
	RuleID   string   `json:"rule"`
	Severity Severity `json:"severity"`
	Address  string   `json:"address"`
	File     string   `json:"file"`
	Line     int      `json:"line,omitempty"`
	Message  string   `json:"message"`
	Path     []Hop    `json:"path,omitempty"`
	// Paths holds, for a finding that groups several ports, each port's
	// path (ports whose paths are the same hop for hop share one); Path is
	// then the first of them.
	Paths []PortPath `json:"paths,omitempty"`
	// Fix, when set, is the remedy for this finding, naming the settings
	// of the resource it is on, in place of its rule's Remediation.
	Fix string `json:"fix,omitempty"`
	// Suppressed holds the reason given in the source when the finding is
	// suppressed; suppressed findings are reported but never fail a run.
	Suppressed string `json:"suppressed,omitempty"`

	end int // last line of the resource block, for suppressions
}

// PortPath is the path on which some of a finding's ports are reached.
type PortPath struct {
	Ports string `json:"ports"`
	Path  []Hop  `json:"path"`
}

// ID names the finding for --explain: RULE@address.
func (f *Finding) ID() string { return f.RuleID + "@" + f.Address }

// Rule IDs.
const (
	RuleExposedPort      = "AWS-NET-001"
	RuleDataTierPublic   = "AWS-NET-002"
	RuleWorldOpen        = "AWS-NET-003"
	RuleInternetFacing   = "AWS-NET-004"
	RulePeeringOverlap   = "AWS-NET-005"
	RuleTransitivePeer   = "AWS-NET-006"
	RulePeeringDefault   = "AWS-NET-007"
	RuleUnusedSG         = "AWS-NET-008"
	RuleNoFlowLogs       = "AWS-LOG-001"
	RuleCloudTrail       = "AWS-LOG-002"
	RuleTrailRegions     = "AWS-LOG-003"
	RuleTrailValidation  = "AWS-LOG-004"
	RuleTrailKMS         = "AWS-LOG-005"
	RuleUnencrypted      = "AWS-ENC-001"
	RuleNoCMK            = "AWS-ENC-002"
	RuleTransitPlain     = "AWS-ENC-003"
	RuleKMSRotation      = "AWS-KMS-001"
	RuleHTTPNoRedirect   = "AWS-LB-001"
	RuleWeakTLS          = "AWS-LB-002"
	RulePublicBucket     = "AWS-S3-001"
	RuleDefaultAllow     = "MOAT-001"
	RuleWildcard         = "MOAT-002"
	RulePermissive       = "MOAT-003"
	RuleLongSVID         = "MOAT-004"
	RuleGatewayNoHSTSWAF = "MOAT-005"
	RuleWAFDetect        = "MOAT-006"
	RuleMetricsExposed   = "MOAT-007"
	RuleNotEvaluated     = "CHECK-001"
	RuleBadSuppression   = "CHECK-002"
	RuleRejected         = "CHECK-003"
)

// Rules is the catalogue, in ID order.
func Rules() []Rule {
	rs := []Rule{
		{RuleExposedPort, Critical, "Data-store or admin port reachable from the internet",
			"A port used by a database, cache, search engine, cluster store or remote administration (SSH, RDP, Kubernetes API) can be opened from internet addresses: the path from an internet gateway through route table, network ACL and security group reaches the resource. The ports that the same addresses reach make one finding that lists them; it is critical when they are the internet at large (public ranges wider than a /8 of IPv4 or a /13 of IPv6, the most any one network holds) and medium, naming the range, when they are a bounded one such as an office's /24. A load balancer's HTTP or HTTPS listener on such a port's number (an application load balancer's HTTPS listener on 445) is a web application's port, not the service's: named as the listener, its finding is graded one step lower (high from the internet at large) when those listeners are all it lists. A public search domain that authenticates every request from the internet at large (fine-grained access control, or an access policy that admits only principals it names, or unsigned requests only from a bounded aws:SourceIp range) is medium: its endpoint faces the internet, but only credentials get in (the finding says which). An EKS public API endpoint is high when it admits the internet at large (public_access_cidrs unset, 0.0.0.0/0 or not known statically) and medium when it admits bounded ranges alone: the Kubernetes API authenticates every request (an anonymous one gets only what RBAC grants system:anonymous, by default the version and health endpoints), but its control plane then takes every address's attempts with stolen credentials and on the API server's flaws; a private endpoint is not reached from the internet. Its findings carry a fix that names the cluster's settings.",
			"Remove the public address or the route to the internet gateway, and admit the port only from the security groups of the services that need it."},
		{RuleDataTierPublic, High, "Data-tier resource with a public path",
			"A database, cache, warehouse, search domain, Kafka cluster (MSK public access), DMS replication instance or Neptune instance has a public address in a subnet routed to an internet gateway (or a public managed endpoint): only its security groups stand between it and the internet. Configured public (publicly_accessible, public_access) in subnets the scanned code does not show, it is reported at medium. A Redshift cluster that leaves publicly_accessible unset is public under an AWS provider before 5.0 (by the lock file or the version constraints), whose default it was, and private from 5.0. DocumentDB has no public-access setting; its instances are checked for paths from peered networks (AWS-NET-010). A public search domain that authenticates every request from the internet at large is medium, as for AWS-NET-001.",
			"Place data-tier resources in private subnets without a route to an internet gateway and set publicly_accessible = false (or use vpc_options)."},
		{RuleWorldOpen, High, "Admin, data-store or well-known service port open to the whole internet",
			"A security group rule admits the internet at large: every internet address, or public ranges wider than a /8 of IPv4 or a /13 of IPv6 (the most any one network holds), such as 0.0.0.0/1, 2600::/12 or a firewall range from 1.2.3.4 to 2.3.4.5; private ranges such as 10.0.0.0/8 hold no internet address (IPv4 or IPv6; ranges are compared as address sets, so ranges split over several rules count together) on a port of remote administration, a data store or a well-known service that must not face the internet (SSH, RDP, WinRM, databases, caches, message brokers, SMB, DNS, SNMP, LDAP, …, and the port a data store the group guards listens on, such as a database moved to 3307), or a network ACL of a public subnet does (on ports below 1024, or, above, on a data-store or admin port a rule of its own admits: the range up to 65535 that return traffic needs is not reported). The finding is reported at every resource that declares such a rule, wherever the group is declared; its severity follows what is proven: critical when a path from the internet at large reaches a listener behind it, high when it is attached but no path is proven or the paths found admit only narrower ranges (routes to the internet gateway for one /24: the finding names them), medium when nothing in the scanned code attaches it or only what takes no connection does (a Lambda function's, App Runner VPC connector's, HTTP API VPC link's, Client VPN's or EC2 Instance Connect endpoint's interfaces) or only load balancers none of whose listeners is on those ports (a load balancer answers on its listeners' ports alone: the finding names them, and one whose listener ports are not known statically is read as answering on every port, and said so; what a load balancer answers with HTTP or HTTPS, every listener of an application load balancer, is an application's port whatever its number, graded one step lower as AWS-NET-011 is, and named by that listener, not by the service its number stands for, unless something else that carries the group may answer there) or what no internet address reaches, whatever its subnet (EFS mount targets, which never have a public address: what reaches them is every address their VPC routes to them, which AWS-NET-010 judges). A network ACL is stateless and subnet-wide, and allowing all is AWS's default: its finding is low while no security group of the public resources it guards admits the internet at large on those ports, medium, naming the group, where one does too.",
			"Admit only 80 and 443 from the world, on load balancers; admit other ports from known ranges or security groups."},
		{RuleInternetFacing, Medium, "Internet-facing resource that is not a load balancer or gateway",
			"A resource other than a load balancer or gateway can be reached from the internet on some port.",
			"Put the resource in a private subnet behind a load balancer or the moat gateway."},
		{RulePeeringOverlap, High, "Peering between overlapping CIDRs",
			"Two peered VPCs have overlapping address ranges, so routes between them are ambiguous or impossible.",
			"Re-address one VPC so that peered ranges are disjoint."},
		{RuleTransitivePeer, High, "Route relies on transitive peering",
			"A route sends traffic for a range outside the peer VPC through a peering connection. Peering is not transitive: A→C via B's peering is dropped, and the intent suggests isolation was misunderstood.",
			"Peer the VPCs directly, use a transit gateway, or remove the route."},
		{RulePeeringDefault, High, "Peering route to 0.0.0.0/0",
			"A default route points at a peering connection, sending all traffic to another VPC. A route whose destination is not known statically may be one, and is medium; one known to be of a prefix length (a subnet's or VPC's cidr_block) is not.",
			"Route only the peer VPC's CIDR through the peering connection."},
		{RuleUnusedSG, Low, "Security group not used",
			"No resource in the project uses this security group.",
			"Delete the group or attach it where it was meant to be."},
		{RuleNoFlowLogs, Medium, "VPC traffic not recorded by flow logs",
			"No aws_flow_log names this VPC and some of its subnets have no subnet flow log either (interface flow logs record single interfaces only), or a flow log names nothing to record: the VPC's traffic is not recorded.",
			"Add an aws_flow_log with vpc_id set to this VPC (or subnet_id for every subnet)."},
		{RuleCloudTrail, Medium, "No CloudTrail trail, or a trail that records nothing",
			"The project builds networks but defines no CloudTrail trail, or a trail sets enable_logging = false, so API activity in the account is not recorded where it keeps its configuration.",
			"Add an aws_cloudtrail with is_multi_region_trail, enable_log_file_validation and kms_key_id set (or check the account's organization trail)."},
		{RuleTrailRegions, Medium, "CloudTrail trail not multi-region",
			"A trail records one region only, or leaves out global service events (IAM, STS, CloudFront): activity elsewhere is not recorded.",
			"Set is_multi_region_trail = true and leave include_global_service_events at true."},
		{RuleTrailValidation, Medium, "CloudTrail log file validation off",
			"A trail does not sign digests of its log files, so deleted or altered log files cannot be detected.",
			"Set enable_log_file_validation = true."},
		{RuleTrailKMS, Medium, "CloudTrail logs not encrypted with a KMS key",
			"A trail's log files are encrypted only with S3-managed keys, so anyone who can read the bucket can read the account's API history.",
			"Set kms_key_id to a customer-managed aws_kms_key whose policy lets CloudTrail encrypt and only auditors decrypt."},
		{RuleUnencrypted, High, "Data at rest without encryption",
			"Storage (RDS, Aurora and global clusters, DocumentDB, Neptune, EBS volumes, instance, launch-template and launch-configuration disks, EBS default encryption, Redshift, ElastiCache replication groups, EFS, SNS, SQS, Kinesis streams and Firehose Direct PUT, OpenSearch, DAX, WorkSpaces volumes, snapshots) is not encrypted at rest. Defaults are followed where they hold for every resource (Aurora Serverless v1, Valkey replication groups, EBS encryption by default in the project, resources made from an encrypted source); a default that holds only for resources created after some date, or only with some provider versions, is not relied on: set the flag.",
			"Enable encryption at rest (storage_encrypted, encrypted, at_rest_encryption_enabled) with a customer-managed KMS key."},
		{RuleNoCMK, Low, "Encrypted without a customer-managed KMS key",
			"Data is encrypted only with an AWS-managed or S3-managed key, which cannot be rotated, restricted or revoked by the owner.",
			"Set kms_key_id (kms_master_key_id, kms_key_arn) to a customer-managed aws_kms_key."},
		{RuleTransitPlain, High, "Data store takes traffic in the clear",
			"A data store lets its clients, or its own nodes, talk to it without TLS: an MSK cluster whose encryption_info.encryption_in_transit.client_broker is TLS_PLAINTEXT or PLAINTEXT (TLS alone is the default from the AWS provider 3.0 on; unset under a provider before 3.0, by the lock file or the required_providers constraints, is TLS_PLAINTEXT) or whose brokers replicate in the clear (in_cluster = false); an ElastiCache replication group whose transit_encryption_enabled is false or left unset (off unless set), or whose transit_encryption_mode is preferred, which still takes plaintext connections; an ElastiCache cluster outside a replication group (aws_elasticache_cluster) whose transit_encryption_enabled is false or left unset (a serverless cache takes TLS alone); a MemoryDB cluster with tls_enabled = false (on unless set); a DocumentDB cluster whose cluster parameter group sets tls = \"disabled\" (AWS's default groups require TLS; a group named outside the scanned code is read as disabling it). Whoever is on the path reads and alters queries, messages and credentials. A value not known statically is read as plaintext, and the finding says so.",
			"Set client_broker = \"TLS\" and in_cluster = true on MSK, transit_encryption_enabled = true with transit_encryption_mode = \"required\" on ElastiCache, and leave tls_enabled at true on MemoryDB and tls at enabled in a DocumentDB cluster parameter group; point clients at the TLS port and endpoint."},
		{RuleKMSRotation, Medium, "KMS key rotation off",
			"A symmetric customer-managed KMS key does not rotate.",
			"Set enable_key_rotation = true."},
		{RuleHTTPNoRedirect, Medium, "HTTP listener without an HTTPS redirect",
			"A load balancer listener accepts plain HTTP and does not redirect to HTTPS.",
			"Make the HTTP listener's default action a redirect to HTTPS (status HTTP_301)."},
		{RuleWeakTLS, High, "TLS policy below 1.2 or with broken ciphers",
			"A listener's TLS policy admits TLS 1.0 or 1.1 (the default policy ELBSecurityPolicy-2016-08 does), or an OpenSearch or Elasticsearch domain's tls_security_policy is Policy-Min-TLS-1-0-2019-07, or a REST API custom domain name's security_policy is TLS_1_0 or unset (its default for a custom domain is not documented; API Gateway's own endpoints speak TLS 1.0), or a CloudFront distribution on a certificate of its own has a viewer_certificate minimum_protocol_version below TLSv1.2_2018 (TLSv1, the default when unset; CloudFront's own certificate is not reported: no setting changes its policy), or a classic load balancer's SSL negotiation policy enables SSLv2, SSLv3, TLS 1.0 or 1.1 or a broken cipher (RC4, DES, 3DES, NULL, export-grade, MD5, anonymous key exchange), or references a predefined policy that admits TLS below 1.2. A policy not known statically is read at its worst, admitting TLS 1.0, and the finding says so.",
			"Use ssl_policy = \"ELBSecurityPolicy-TLS13-1-2-2021-06\" or another TLS 1.2+ policy, tls_security_policy = \"Policy-Min-TLS-1-2-PFS-2023-10\" on a search domain, security_policy = \"TLS_1_2\" on an API Gateway domain name and minimum_protocol_version = \"TLSv1.2_2021\" on a CloudFront distribution."},
		{RulePublicBucket, Critical, "S3 bucket open to everyone",
			"A bucket policy (aws_s3_bucket_policy, or the bucket's own policy argument) allows Principal \"*\" without a condition that bounds who sends the request (one that tests the source VPC endpoint, network, account or ARN, or the principal's organization or account, against fixed values, or aws:SourceIp against ranges no wider than one network's; a condition on aws:Referer, which any client writes, or on aws:SecureTransport, a negated, IfExists or ForAllValues test, a wildcard or a policy variable bounds nothing, and a value not known statically under a wildcard test or for aws:SourceIp is read at its worst, and the finding says so) (a policy only parts of which are known statically, such as the account named through data.aws_caller_identity, is read for what is known, and the finding says so), and no public access block with block_public_policy stands in the way; or the bucket's ACL (acl = public-read, public-read-write or authenticated-read, or a grant to the AllUsers or AuthenticatedUsers group), or an object's (aws_s3_object, aws_s3_bucket_object), admits everyone or every AWS account, and no public access block with block_public_acls or ignore_public_acls, nor ownership controls that disable ACLs (BucketOwnerEnforced), stands in the way. An account's public access block (aws_s3_account_public_access_block) stands in the way for the buckets of its provider configuration. A bucket the configuration creates takes the defaults S3 gives every bucket created since April 2023 (public access blocked, ACLs disabled) unless its own public access block or ownership controls turn them off: a public policy or ACL is then refused on a new bucket and opens only one created before then, graded medium, and the finding says so.",
			"Name the principals that need access, add a condition (aws:SourceVpce, aws:PrincipalOrgID), use a private ACL, or set block_public_policy, restrict_public_buckets, block_public_acls and ignore_public_acls."},
		{RuleDefaultAllow, Critical, "moat policy default other than deny",
			"The intentions file allows what no rule names.",
			"Set default: deny and list the connections that are allowed."},
		{RuleWildcard, High, "Wildcard intention",
			"An intention names \"*\" as source or destination, admitting every service.",
			"Name the services explicitly."},
		{RulePermissive, Medium, "PERMISSIVE mode",
			"A service accepts connections without mutual TLS (permissive mode) or a rule only audits.",
			"Set mode: strict for services and mode: enforce for rules once clients have identities."},
		{RuleLongSVID, Medium, "SVID TTL over 24h",
			"Service identities live longer than a day, widening the window for a stolen key.",
			"Set svid_ttl to 24h or less (1h is typical)."},
		{RuleGatewayNoHSTSWAF, High, "Gateway without HSTS or WAF",
			"The edge gateway does not send HSTS or does not run its web application firewall.",
			"Remove hsts.disabled and waf.disabled (both are on by default); keep hsts.max_age at 180 days or more."},
		{RuleWAFDetect, Medium, "WAF in detection-only mode",
			"The gateway's WAF logs attacks but does not block them.",
			"Remove waf.detection_only, after tuning exclusions on the traffic it logged."},
		{RuleMetricsExposed, Medium, "Metrics beyond loopback without authentication",
			"A server's or agent's Prometheus metrics listen beyond loopback; they are plain HTTP without authentication and name services, nodes, rules and rates. (The control-plane API takes a client certificate and checks its role on every call but the trust bundle, a join and a re-attestation, wherever it listens.)",
			"Set metrics to a loopback address (127.0.0.1:9100) and scrape through a local collector, or keep the port behind a firewall."},
		{RuleNotEvaluated, Info, "Construct not evaluated",
			"Part of the configuration could not be evaluated statically; findings that depend on it may be missing.",
			"Give the value statically (a default or a .tfvars file), or check the plan JSON instead."},
		{RuleRejected, Medium, "Value the provider or Terraform rejects",
			"A value cannot be applied as written (an address range that is not a CIDR block, has host bits set or is of the wrong family, or a list of ranges within the list (cidr_blocks = [\"${split(\",\", var.ranges)}\"], as Terraform 0.11 wrote it), or one string where a security group rule, or another AWS resource, takes a list of ranges, groups or subnets (cidr_blocks = \"0.0.0.0/0\", read as that range); a security group's ingress or egress written as an attribute (ingress = [{…}]) whose object leaves a field of the rule out; network rules on a container registry below the Premium SKU; in a module call, an argument of the wrong type or for no variable, a nested block, a required variable left out; a reference to anything the module does not declare, a resource type with no resource's name after it (aws_security_group.*.id), each outside a block with for_each or with an attribute other than key and value (each.id), or resources that refer to each other in a cycle; a block defined twice, or a provider configured twice with one alias; a resource's nested block written as an argument, or an argument written as a block (tags { … }, as Terraform 0.11 took it); a call to list() or map(), which Terraform removed; a module source that is neither a local path (./ or ../ first) nor a registry or remote address, such as \"modules/vpc\"; a variable's type in quotes (type = \"map\"), as Terraform 0.11 wrote it, or not a type at all; an Azure peering between overlapping address spaces; an Azure NSG or firewall address that is neither an address, a range nor of a service tag's form, a placeholder such as \"my-local-ip\", which is still read as every address where its rule is used so that nothing is hidden; a subnet whose range lies outside every range of its VPC or virtual network; a database, cache or Redshift cluster that names no subnet group, which AWS places in the default VPC, whose security groups are of a VPC the code declares; assign_public_ip on an ECS service of the EC2 launch type; direct_internet_access = \"Disabled\" on a SageMaker notebook instance without a subnet_id; a value the AWS provider takes in one case alone written in another, such as direct_internet_access = \"disabled\" or client_broker = \"tls\"): the provider, the cloud or Terraform rejects it, terraform plan or apply fails, and nothing is created from it. What was meant cannot be known, so the value is reported rather than read as any range.",
			"Write the value as Terraform and the provider take it: the message names what they refuse and how (a CIDR block of the attribute's family, a reference to what the module declares, one definition of each block, a nested block written as a block). As written, the plan fails and nothing is created from it."},
		{RuleBadSuppression, Medium, "Suppression without a reason",
			"A moat:ignore comment gives no reason, so it is not honoured.",
			"Write the reason after the rule ID: # moat:ignore RULE-ID reason why this is acceptable"},
	}
	rs = append(rs, storeRules()...)
	rs = append(rs, azureRules()...)
	rs = append(rs, azurePaaSRules()...)
	rs = append(rs, azureBastionRule())
	rs = append(rs, azureAppRules()...)
	rs = append(rs, publicServiceRules()...)
	rs = append(rs, egressRules()...)
	rs = append(rs, adminAuthRules()...)
	rs = append(rs, storeAuthRules()...)
	sort.Slice(rs, func(i, j int) bool { return rs[i].ID < rs[j].ID })
	return rs
}

// RuleByID returns the rule with id.
func RuleByID(id string) (Rule, bool) {
	for _, r := range Rules() {
		if strings.EqualFold(r.ID, id) {
			return r, true
		}
	}
	return Rule{}, false
}

type findings struct {
	list  []Finding
	rules map[string]Rule
}

func newFindings() *findings {
	f := &findings{rules: map[string]Rule{}}
	for _, r := range Rules() {
		f.rules[r.ID] = r
	}
	return f
}

func (fs *findings) add(rule string, r *tf.Resource, path []Hop, format string, args ...any) {
	fs.addSev(rule, fs.rules[rule].Severity, r, path, format, args...)
}

// addSev adds a finding at a severity other than the rule's own, for rules
// whose severity follows what is proven.
func (fs *findings) addSev(rule string, sev Severity, r *tf.Resource, path []Hop, format string, args ...any) {
	f := Finding{RuleID: rule, Severity: sev, Message: fmt.Sprintf(format, args...), Path: path}
	if r != nil {
		f.Address, f.File, f.Line, f.end = r.Address, r.Pos.File, r.Pos.Line, r.End
		if fromAzapi(r) {
			f.Message = azapiWords(r.Type, f.Message)
		}
	}
	fs.list = append(fs.list, f)
}

// MarshalText writes the severity's name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a severity's name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}
