package check

import (
	"strings"

	"moat/internal/check/tf"
)

// Rule IDs of the configuration rules scanners are expected to cover.
const (
	RulePublicIP      = "AWS-EC2-001"
	RuleIMDSv1        = "AWS-EC2-002"
	RuleDefaultSGOpen = "AWS-NET-009"
	RuleLateral       = "AWS-NET-010"
	RulePlainListener = "AWS-LB-003"
	// RuleWorldOpenOther is AWS-NET-003's counterpart for the ports no
	// known service uses.
	RuleWorldOpenOther = "AWS-NET-011"
)

func storeRules() []Rule {
	return []Rule{
		{RulePublicIP, Medium, "Instance or launch template gives a public IP address",
			"An instance or launch template sets associate_public_ip_address = true: every instance gets an address on the internet, and only its security groups stand in the way.",
			"Launch instances in private subnets without public addresses and reach them through a load balancer, the moat gateway or SSM Session Manager."},
		{RuleIMDSv1, Medium, "Instance metadata service v1 allowed",
			"metadata_options does not set http_tokens = \"required\", so the instance metadata service answers unauthenticated GET requests: a server-side request forgery in the workload reads the instance role's credentials.",
			"Set metadata_options { http_tokens = \"required\" } (and http_put_response_hop_limit = 1 or 2) on instances and launch templates."},
		{RuleDefaultSGOpen, Medium, "Default security group allows traffic",
			"The VPC's default security group has rules: every resource launched without a group lands in it and gets that traffic.",
			"Declare aws_default_security_group for the VPC with no ingress and no egress blocks, and attach explicit groups to every resource."},
		{RuleLateral, High, "Admin or data-store port reachable from a whole other network",
			"An SSH, RDP, database, cache or cluster-store port is reachable from the entire address range of another VPC over peering, a transit gateway or a VPN: one compromised host there can pivot into this network.",
			"Admit the port only from the security groups or the narrow ranges of the hosts that need it (a bastion, an application tier), not the peer's whole CIDR."},
		{RuleWorldOpenOther, Medium, "Port open to the whole internet",
			"A security group rule admits every internet address (IPv4 or IPv6, split ranges included) on ports other than 80, 443 and the admin, data-store and well-known service ports AWS-NET-003 names: whatever listens there (a debug endpoint, an application port, a forgotten service) faces the internet. Severity follows what is proven, as for AWS-NET-003.",
			"Put the service behind a load balancer on 443, or admit the port from known ranges or security groups only."},
		{RulePlainListener, Medium, "Load balancer listener without TLS",
			"A classic load balancer listener takes plain HTTP or TCP from clients, so traffic and credentials cross the network in the clear.",
			"Listen with HTTPS or SSL and a certificate, and redirect plain HTTP to HTTPS."},
	}
}

// encryptedAtRest lists, per resource type, how encryption at rest is
// switched on (an attribute path that must be true, or "" when it is
// always on) and which attribute names the customer-managed key.
var encryptedAtRest = []struct{ typ, flag, key string }{
	{"aws_db_instance", "storage_encrypted", "kms_key_id"},
	{"aws_rds_cluster", "storage_encrypted", "kms_key_id"},
	{"aws_docdb_cluster", "storage_encrypted", "kms_key_id"},
	{"aws_neptune_cluster", "storage_encrypted", "kms_key_arn"},
	{"aws_ebs_volume", "encrypted", "kms_key_id"},
	{"aws_redshift_cluster", "encrypted", "kms_key_id"},
	{"aws_elasticache_replication_group", "at_rest_encryption_enabled", "kms_key_id"},
	{"aws_ebs_snapshot_copy", "encrypted", "kms_key_id"},
	{"aws_db_snapshot_copy", "", "kms_key_id"},
	{"aws_backup_vault", "", "kms_key_arn"},
	{"aws_efs_file_system", "encrypted", "kms_key_id"},
	{"aws_dynamodb_table", "", "server_side_encryption.kms_key_arn"},
	{"aws_sns_topic", "kms_master_key_id", "kms_master_key_id"},
	{"aws_kinesis_stream", "encryption_type=KMS", "kms_key_id"},
	{"aws_cloudwatch_log_group", "", "kms_key_id"},
	{"aws_opensearch_domain", "encrypt_at_rest.enabled", "encrypt_at_rest.kms_key_id"},
	{"aws_elasticsearch_domain", "encrypt_at_rest.enabled", "encrypt_at_rest.kms_key_id"},
	{"aws_msk_cluster", "", "encryption_info.encryption_at_rest_kms_key_arn"},
	{"aws_sqs_queue", "", "kms_master_key_id"},
}

// awsManagedKey reports whether a key reference names an AWS-managed KMS
// key: its alias is alias/aws/SERVICE.
func awsManagedKey(k string) bool {
	return strings.HasPrefix(k, "alias/aws/") || strings.Contains(k, ":alias/aws/")
}

// lookupPath reads a.b.c through nested blocks.
func lookupPath(vals map[string]any, p string) (any, bool) {
	parts := strings.Split(p, ".")
	for _, k := range parts[:len(parts)-1] {
		vals = block(vals, k)
		if vals == nil {
			return nil, false
		}
	}
	v, ok := vals[parts[len(parts)-1]]
	return v, ok && v != nil
}

// encryptionRules checks encryption at rest and customer-managed keys.
// What cannot be evaluated is not reported as unencrypted: the reader
// notes it.
func encryptionRules(byType map[string][]*tf.Resource, fs *findings) {
	for _, c := range encryptedAtRest {
		for _, r := range byType[c.typ] {
			if c.flag != "" {
				attr, want, _ := strings.Cut(c.flag, "=")
				v, ok := lookupPath(r.Values, attr)
				_, unk := v.(tf.Unknown)
				on := false
				switch x := v.(type) {
				case bool:
					on = x
				case string:
					on = x != "" && (want == "" || strings.EqualFold(x, want)) && x != "false"
				}
				if unk {
					continue
				}
				if !ok || !on {
					fs.add(RuleUnencrypted, r, nil, "%s is not set: data at rest is not encrypted", c.flag)
					continue
				}
			}
			v, ok := lookupPath(r.Values, c.key)
			key, _ := v.(string)
			switch {
			case !ok || v == "":
				if c.typ == "aws_kinesis_stream" {
					// StartStreamEncryption needs a key: without one the
					// stream is not encrypted.
					fs.add(RuleUnencrypted, r, nil, "encryption_type = KMS without kms_key_id: the stream cannot be encrypted (name a key; alias/aws/kinesis is the AWS-managed one)")
					continue
				}
				fs.add(RuleNoCMK, r, nil, "%s is not set: an AWS-managed key is used", c.key)
			case awsManagedKey(key):
				fs.add(RuleNoCMK, r, nil, "%s = %q is an AWS-managed key, which its owner cannot restrict, rotate or revoke", c.key, key)
			}
		}
	}
	for _, r := range byType["aws_sqs_queue"] {
		// New queues get SQS-managed encryption by default since late 2022;
		// a queue created before, and never changed, has none: unless the
		// configuration says so, encryption is not assured.
		if str(r.Values, "kms_master_key_id") == "" && !unknown(r.Values, "kms_master_key_id") &&
			!unknown(r.Values, "sqs_managed_sse_enabled") && !boolean(r.Values, "sqs_managed_sse_enabled", false) {
			what := "neither kms_master_key_id nor sqs_managed_sse_enabled = true is set: queues created before October 2022 keep their messages unencrypted"
			if has(r.Values, "sqs_managed_sse_enabled") {
				what = "sqs_managed_sse_enabled = false and no kms_master_key_id: messages are stored unencrypted"
			}
			fs.addSev(RuleUnencrypted, Medium, r, nil, "%s", what)
		}
	}
	for _, r := range byType["aws_ebs_encryption_by_default"] {
		if !boolean(r.Values, "enabled", true) {
			fs.add(RuleUnencrypted, r, nil, "EBS encryption by default is turned off")
		}
	}
	for _, r := range byType["aws_instance"] {
		for _, k := range []string{"root_block_device", "ebs_block_device"} {
			for _, b := range blocks(r.Values, k) {
				if !unknown(b, "encrypted") && !boolean(b, "encrypted", false) {
					fs.add(RuleUnencrypted, r, nil, "%s is not encrypted", k)
				}
			}
		}
	}
	for _, r := range byType["aws_launch_template"] {
		for _, b := range blocks(r.Values, "block_device_mappings") {
			if ebs := block(b, "ebs"); ebs != nil && !unknown(ebs, "encrypted") && !boolean(ebs, "encrypted", false) {
				fs.add(RuleUnencrypted, r, nil, "block device %s is not encrypted", str(b, "device_name"))
			}
		}
	}
}

// instanceRules checks public addresses and the metadata service.
func instanceRules(byType map[string][]*tf.Resource, fs *findings) {
	for _, typ := range []string{"aws_instance", "aws_launch_template", "aws_launch_configuration"} {
		for _, r := range byType[typ] {
			vals := r.Values
			if typ == "aws_launch_template" {
				vals = block(r.Values, "network_interfaces")
			}
			if vals != nil && boolean(vals, "associate_public_ip_address", false) {
				fs.add(RulePublicIP, r, nil, "associate_public_ip_address = true")
			}
			md := block(r.Values, "metadata_options")
			if md != nil && unknown(md, "http_tokens") {
				continue
			}
			if md == nil || !strings.EqualFold(str(md, "http_tokens"), "required") {
				if md != nil && strings.EqualFold(str(md, "http_endpoint"), "disabled") {
					continue
				}
				fs.add(RuleIMDSv1, r, nil, "metadata_options.http_tokens is not \"required\": IMDSv1 answers")
			}
		}
	}
	for _, r := range byType["aws_default_security_group"] {
		if n := len(blocks(r.Values, "ingress")) + len(blocks(r.Values, "egress")); n > 0 {
			fs.add(RuleDefaultSGOpen, r, nil, "the default security group has %s", plural(n, "rule", "rules"))
		}
	}
	for _, r := range byType["aws_elb"] {
		for _, l := range blocks(r.Values, "listener") {
			if p := strings.ToUpper(str(l, "lb_protocol")); p == "HTTP" || p == "TCP" {
				fs.add(RulePlainListener, r, nil, "listener on port %d takes %s in the clear", num(l, "lb_port", 0), p)
			}
		}
	}
}
