package main

// Documented disagreements: results of the corpus where moat's reading
// follows Terraform's or AWS's semantics and KICS's expectations do not.
// The harness reports its figures as measured and, beside them, with these
// cases set aside; each case names the query, the fixture file and the
// block, and why moat reads it otherwise. The list holds every case read by
// hand, by reason; a case that does not occur in a run is reported as
// stale, so the list cannot drift from what the harness measures.

// disagreementWhy explains each reason once.
var disagreementWhy = map[string]string{
	"not-a-cidr": `"/0" is not a CIDR block: the AWS provider validates every range (verify.ValidCIDRNetworkAddress), ` +
		"so terraform plan fails and no rule is created; moat reports CHECK-003. KICS reads it as the whole internet.",
	"call-rejected": "Terraform rejects the module call, so the plan fails and nothing is created; moat reports " +
		"CHECK-003 and reads the rest of the call as given: terraform-aws-modules/security-group takes " +
		"ingress_with_cidr_blocks and ingress_with_ipv6_cidr_blocks as list(map(string)), whose cidr_blocks is one " +
		"comma-separated string, and a list there is a type error (the module's split() of it yields no rule); " +
		"a module block takes no nested blocks (ingress {}).",
	"creates-nothing": "The module creates nothing that is open: terraform-aws-modules/security-group creates rules " +
		"only for ingress_rules or ingress_with_* entries (ingress_cidr_blocks alone is the ranges those would " +
		"use, and ingress_rules defaults to none); terraform-aws-modules/vpc maps public IPs only in public " +
		"subnets, and the call declares private subnets only.",
	"pre-0.12-module": "terraform-aws-modules/autoscaling 1.0.4 (2017-11-22) is a Terraform 0.10/0.11 module: its " +
		"launch configuration (modules/launch_configuration, the only version the public index holds, commit " +
		"cff5732) declares variable \"count\", a name Terraform 0.12 and later reserve, and assigns the disk lists " +
		"as arguments (ebs_block_device = \"${var.ebs_block_device}\"), where 0.12 and later take blocks only. Any " +
		"current Terraform rejects the module, so nothing is created; KICS reads it as Terraform 0.11 would.",
	"subnet-rejected": `A subnet of "0.0.0.0/0" cannot exist: AWS takes subnet blocks from /16 to /28 inside the VPC's ` +
		"range. KICS calls a database in it public; the database is not publicly_accessible.",
	"key-without-encryption": "RDS refuses a kms_key_id without storage_encrypted = true (the API answers " +
		"InvalidParameterCombination: \"You must enable StorageEncrypted when you specify KmsKeyId\"; " +
		"CloudFormation's KmsKeyId documentation says the same): the instance is not encrypted as written, " +
		"and KICS's negative accepts it.",
	"tls11-policy": "The predefined policy ELBSecurityPolicy-TLS-1-1-2017-01 admits TLS 1.1 (deprecated by RFC 8996); " +
		"KICS flags only protocols a policy enables by name.",
	"strong-cipher": "TLS_ECDHE_ECDSA_WITH_ARIA_256_GCM_SHA384 is forward-secret AEAD, not a broken cipher " +
		"(and classic load balancers do not offer it).",
	"aws-managed-key": "server_side_encryption { enabled = true } without kms_key_arn uses the AWS-managed key " +
		"aws/dynamodb, which its owner cannot restrict, rotate or revoke; KICS's negative accepts it, while its " +
		"own SNS, DocumentDB and Secrets Manager queries flag AWS-managed keys.",
	"sse-s3": "AES256 is the S3-managed key that encrypts every bucket by default since January 2023; KICS " +
		"accepts it written out but flags it left to the default (and removed its S3 SSE queries in 2.0.0, " +
		"Checkmarx/kics#6953). moat reports both as not customer-managed. " +
		"In negative2.tf the AES256 rule is a server_side_encryption_configuration {} block in the call of " +
		"terraform-aws-modules/s3-bucket, which Terraform rejects (a module block takes no nested blocks; moat " +
		"reports CHECK-003): read as given, the bucket has the S3-managed default, which is AES256 as written.",
	"kics-inconsistent": "KICS's fixtures disagree: alb_protocol_is_http expects this very listener " +
		"(HTTP on 8080, no redirect); these expectations are of an older version of the file.",
}

type disagreement struct {
	Query, File, Block, Why string
	Alarm                   bool // a false alarm; otherwise a miss
	Module                  bool // met only when the registry module the file calls is initialised
}

func miss(q, f, b, why string) disagreement  { return disagreement{q, f, b, why, false, false} }
func alarm(q, f, b, why string) disagreement { return disagreement{q, f, b, why, true, false} }

// withModule marks a case met only when the fixture's registry module is
// initialised: without it moat reads nothing from the call.
func withModule(d disagreement) disagreement { d.Module = true; return d }

const (
	qSensitive    = "sensitive_port_is_exposed_to_entire_network"
	qUnknownPort  = "unknown_port_exposed_to_internet"
	qUnrestricted = "unrestricted_security_group_ingress"
	qRDP          = "remote_desktop_port_open_to_internet"
	qSSH          = "security_group_with_unrestricted_access_to_ssh"
)

var disagreements = []disagreement{
	miss(qSensitive, "positive1.tf", "aws_security_group.positive2", "not-a-cidr"),
	miss(qSensitive, "positive1.tf", "aws_security_group.positive4", "not-a-cidr"),
	miss(qSensitive, "positive2.tf", "aws_vpc_security_group_ingress_rule.positive2_ingress_rule", "not-a-cidr"),
	miss(qSensitive, "positive2.tf", "aws_vpc_security_group_ingress_rule.positive4_ingress_rule", "not-a-cidr"),
	miss(qSensitive, "positive3.tf", "aws_security_group_rule.positive2_rule", "not-a-cidr"),
	miss(qSensitive, "positive3.tf", "aws_security_group_rule.positive4_rule", "not-a-cidr"),

	miss(qSensitive, "positive4.tf", "module.vote_service_sg_ipv4", "call-rejected"),
	miss(qSensitive, "positive4.tf", "module.vote_service_sg_ipv4_array", "call-rejected"),
	miss(qSensitive, "positive4.tf", "module.vote_service_sg_ipv6", "call-rejected"),
	miss(qUnknownPort, "positive4.tf", "module.vote_service_sg_ipv4", "call-rejected"),
	miss(qUnknownPort, "positive4.tf", "module.vote_service_sg_ipv4_array", "call-rejected"),
	miss(qUnknownPort, "positive4.tf", "module.vote_service_sg_ipv6", "call-rejected"),
	miss(qUnknownPort, "positive4.tf", "module.vote_service_sg_ipv6_array", "call-rejected"),
	miss(qUnrestricted, "positive4.tf", "module.positive_4_whole_ingresses", "call-rejected"),
	miss(qRDP, "positive4.tf", "module.vote_service_sg", "call-rejected"),
	miss(qRDP, "positive4.tf", "module.vote_service_sg_array", "call-rejected"),
	miss(qSSH, "positive4.tf", "module.vote_service_sg_ipv4", "call-rejected"),
	miss(qSSH, "positive4.tf", "module.vote_service_sg_ipv4_array", "call-rejected"),
	miss(qSSH, "positive4.tf", "module.vote_service_sg_ipv6", "call-rejected"),
	miss(qSSH, "positive4.tf", "module.vote_service_sg_ipv6_array", "call-rejected"),
	miss(qSSH, "positive7.tf", "module.vote_service_sg", "call-rejected"),
	miss(qSSH, "positive8.tf", "module.vote_service_sg", "call-rejected"),
	miss(qSSH, "positive11.tf", "module.vote_service_sg", "call-rejected"),
	miss(qSSH, "positive12.tf", "module.vote_service_sg", "call-rejected"),
	miss(qSSH, "positive15.tf", "module.vote_service_sg", "call-rejected"),
	miss(qSSH, "positive16.tf", "module.vote_service_sg", "call-rejected"),
	miss(qSSH, "positive19.tf", "module.vote_service_sg", "call-rejected"),
	miss(qSSH, "positive20.tf", "module.vote_service_sg", "call-rejected"),
	miss(qSSH, "positive22.tf", "module.vote_service_sg", "call-rejected"),

	miss(qUnrestricted, "positive4.tf", "module.positive_4_ipv4", "creates-nothing"),
	miss(qUnrestricted, "positive4.tf", "module.positive_4_ipv4_array", "creates-nothing"),
	miss(qUnrestricted, "positive4.tf", "module.positive_4_ipv6", "creates-nothing"),
	miss(qUnrestricted, "positive4.tf", "module.positive_4_ipv6_array", "creates-nothing"),
	miss(qUnrestricted, "positive5.tf", "module.web_server_sg", "creates-nothing"),
	miss(qUnrestricted, "positive9.tf", "module.web_server_sg", "creates-nothing"),
	miss(qUnrestricted, "positive10.tf", "module.web_server_sg", "creates-nothing"),
	miss("vpc_subnet_assigns_public_ip", "positive2.tf", "module.vpc", "creates-nothing"),
	miss("vpc_subnet_assigns_public_ip", "positive3.tf", "module.vpc", "creates-nothing"),

	miss("block_device_is_not_encrypted", "positive2.tf", "module.asg", "pre-0.12-module"),
	miss("block_device_is_not_encrypted", "positive3.tf", "module.asg", "pre-0.12-module"),
	miss("block_device_is_not_encrypted", "positive4.tf", "module.asg", "pre-0.12-module"),

	miss("rds_associated_with_public_subnet", "positive1.tf", "aws_db_instance.positive1", "subnet-rejected"),
	miss("rds_associated_with_public_subnet", "positive2.tf", "aws_db_instance.positive2", "subnet-rejected"),

	alarm("db_instance_storage_not_encrypted", "negative.tf", "aws_db_instance.default2", "key-without-encryption"),
	alarm("elb_using_insecure_protocols", "negative.tf", "aws_load_balancer_policy.negative5", "tls11-policy"),
	alarm("elb_using_insecure_protocols", "positive.tf", "aws_load_balancer_policy.positive6", "tls11-policy"),
	miss("elb_using_weak_ciphers", "positive.tf", "aws_load_balancer_policy.wu-tang-ssl3", "strong-cipher"),
	alarm("dynamodb_table_not_encrypted", "negative1.tf", "aws_dynamodb_table.example", "aws-managed-key"),
	alarm("s3_bucket_sse_disabled", "negative4.tf", "aws_s3_bucket_server_side_encryption_configuration.example33", "sse-s3"),
	withModule(alarm("s3_bucket_sse_disabled", "negative2.tf", "module.s3_bucket", "sse-s3")),
	alarm("alb_listening_on_http", "positive1.tf", "aws_alb_listener.positive4", "kics-inconsistent"),
}

// disputed returns the reason of the documented disagreement on a case, if
// there is one.
func disputed(query, file, block string, isAlarm bool) string {
	for _, d := range disagreements {
		if d.Query == query && d.File == file && d.Block == block && d.Alarm == isAlarm {
			return d.Why
		}
	}
	return ""
}
