package check

import (
	"fmt"
	"strings"

	"moat/internal/check/tf"
)

// encryptedAtRest lists, per resource type, how encryption at rest is
// switched on (an attribute path that must be true, or "" when the service
// always encrypts), which attribute names the customer-managed key ("" when
// the service takes none), and which attributes make the resource take its
// encryption from a source instead (a snapshot, a replicated database, a
// source stream), so that its own flag says nothing.
//
// A resource whose service encrypts everything it stores, whatever its age
// (S3 since January 2023, DynamoDB, CloudWatch Logs, Backup vaults, MSK,
// Secrets Manager, ElastiCache Serverless, MemoryDB, DocumentDB Elastic),
// is never reported as unencrypted; only whose key it is (AWS-ENC-002). A
// default that changed only for resources created after some date (SQS
// queues since October 2022) or that depends on the provider's version is
// not relied on: the resource is reported unless its configuration says
// so, and the finding says why.
var encryptedAtRest = []struct {
	typ, flag, key string
	from           []string
}{
	{"aws_db_instance", "storage_encrypted", "kms_key_id", []string{"replicate_source_db", "snapshot_identifier", "restore_to_point_in_time", "s3_import"}},
	{"aws_rds_cluster", "storage_encrypted", "kms_key_id", []string{"snapshot_identifier", "replication_source_identifier", "restore_to_point_in_time", "s3_import", "global_cluster_identifier"}},
	{"aws_rds_global_cluster", "storage_encrypted", "", []string{"source_db_cluster_identifier"}},
	{"aws_docdb_cluster", "storage_encrypted", "kms_key_id", []string{"snapshot_identifier", "global_cluster_identifier"}},
	{"aws_neptune_cluster", "storage_encrypted", "kms_key_arn", []string{"snapshot_identifier", "replication_source_identifier", "global_cluster_identifier"}},
	{"aws_ebs_volume", "encrypted", "kms_key_id", []string{"snapshot_id"}},
	{"aws_redshift_cluster", "encrypted", "kms_key_id", []string{"snapshot_identifier"}},
	{"aws_elasticache_replication_group", "at_rest_encryption_enabled", "kms_key_id", []string{"snapshot_name", "snapshot_arns", "global_replication_group_id"}},
	{"aws_ebs_snapshot_copy", "encrypted", "kms_key_id", nil},
	{"aws_db_snapshot_copy", "", "kms_key_id", nil},
	{"aws_backup_vault", "", "kms_key_arn", nil},
	{"aws_efs_file_system", "encrypted", "kms_key_id", nil},
	{"aws_dynamodb_table", "", "server_side_encryption.kms_key_arn", nil},
	{"aws_sns_topic", "kms_master_key_id", "kms_master_key_id", nil},
	{"aws_kinesis_stream", "encryption_type=KMS", "kms_key_id", nil},
	{"aws_cloudwatch_log_group", "", "kms_key_id", nil},
	{"aws_opensearch_domain", "encrypt_at_rest.enabled", "encrypt_at_rest.kms_key_id", nil},
	{"aws_elasticsearch_domain", "encrypt_at_rest.enabled", "encrypt_at_rest.kms_key_id", nil},
	{"aws_msk_cluster", "", "encryption_info.encryption_at_rest_kms_key_arn", nil},
	{"aws_sqs_queue", "", "kms_master_key_id", nil},
	{"aws_elasticache_serverless_cache", "", "kms_key_id", nil},
	{"aws_memorydb_cluster", "", "kms_key_arn", nil},
	{"aws_docdb_elastic_cluster", "", "kms_key_id", nil},
	{"aws_secretsmanager_secret", "", "kms_key_id", nil},
	{"aws_sagemaker_notebook_instance", "", "kms_key_id", nil},
	// DAX encrypts with an AWS-owned key only.
	{"aws_dax_cluster", "server_side_encryption.enabled", "", nil},
	// A delivery stream reading from a Kinesis stream or MSK is encrypted
	// as its source is; server-side encryption is for Direct PUT.
	{"aws_kinesis_firehose_delivery_stream", "server_side_encryption.enabled", "", []string{"kinesis_source_configuration", "msk_source_configuration"}},
	{"aws_workspaces_workspace", "root_volume_encryption_enabled", "volume_encryption_key", nil},
	{"aws_workspaces_workspace", "user_volume_encryption_enabled", "", nil},
}

// keyWithoutFlag names the services that refuse a key when encryption is
// not switched on: the resource as written cannot be created encrypted.
var keyWithoutFlag = map[string]string{
	"aws_db_instance": "RDS refuses a kms_key_id unless storage_encrypted = true",
	"aws_rds_cluster": "RDS refuses a kms_key_id unless storage_encrypted = true",
	"aws_ebs_volume":  "EC2 refuses a kms_key_id unless encrypted = true",
}

// encryptedByDefault reports whether a resource whose flag is not set is
// encrypted all the same, by the provider's or the service's default: an
// Aurora Serverless v1 cluster always is (storage_encrypted defaults to
// true for engine_mode = "serverless"), and so is every new EBS volume of
// an account whose project turns EBS encryption by default on.
func encryptedByDefault(r *tf.Resource, ebsDefault bool) bool {
	switch r.Type {
	case "aws_rds_cluster":
		return strings.EqualFold(str(r.Values, "engine_mode"), "serverless")
	case "aws_ebs_volume":
		return ebsDefault
	case "aws_elasticache_replication_group":
		// at_rest_encryption_enabled defaults to true for Valkey, false
		// for Redis OSS.
		return strings.EqualFold(str(r.Values, "engine"), "valkey")
	}
	return false
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
	// Turned on in the project, EBS encryption by default encrypts every
	// new volume of the account and region, whatever the volume says.
	ebsDefault := false
	for _, r := range byType["aws_ebs_encryption_by_default"] {
		if unknown(r.Values, "enabled") || boolean(r.Values, "enabled", true) {
			ebsDefault = true
		} else {
			fs.add(RuleUnencrypted, r, nil, "EBS encryption by default is turned off")
		}
	}
	for _, c := range encryptedAtRest {
	resources:
		for _, r := range byType[c.typ] {
			for _, a := range c.from {
				if has(r.Values, a) {
					continue resources // encrypted as its source is
				}
			}
			if c.flag != "" {
				attr, want, _ := strings.Cut(c.flag, "=")
				v, ok := lookupPath(r.Values, attr)
				if _, unk := v.(tf.Unknown); unk {
					continue
				}
				on := false
				switch x := v.(type) {
				case bool:
					on = x
				case string:
					on = x != "" && (want == "" || strings.EqualFold(x, want)) && x != "false"
				}
				byDefault := !ok && encryptedByDefault(r, ebsDefault)
				if byDefault && c.typ == "aws_ebs_volume" {
					continue // under the account's default key, not read here
				}
				if !on && !byDefault {
					if ok && c.typ == "aws_ebs_volume" && ebsDefault {
						continue // encryption by default overrides encrypted = false
					}
					why := ""
					if refused := keyWithoutFlag[c.typ]; refused != "" && str(r.Values, c.key) != "" {
						why = " (" + refused + ")"
					}
					if ok {
						fs.add(RuleUnencrypted, r, nil, "%s = %v: data at rest is not encrypted%s", attr, v, why)
					} else {
						fs.add(RuleUnencrypted, r, nil, "%s is not set: data at rest is not encrypted%s", attr, why)
					}
					continue
				}
			}
			if c.key == "" {
				continue
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
	if !ebsDefault {
		diskRules(byType, fs)
	}
}

// diskRules checks the EBS volumes instances, launch templates and launch
// configurations create. A device made from a snapshot is encrypted as the
// snapshot is; the others are encrypted only when they say so.
func diskRules(byType map[string][]*tf.Resource, fs *findings) {
	plain := func(b map[string]any) bool {
		return b != nil && !has(b, "snapshot_id") && !unknown(b, "encrypted") && !boolean(b, "encrypted", false)
	}
	for _, typ := range []string{"aws_instance", "aws_launch_configuration"} {
		for _, r := range byType[typ] {
			for _, k := range []string{"root_block_device", "ebs_block_device"} {
				for _, b := range blocks(r.Values, k) {
					if plain(b) {
						fs.add(RuleUnencrypted, r, nil, "%s is not encrypted", strings.TrimSpace(k+" "+str(b, "device_name")))
					}
				}
			}
		}
	}
	for _, r := range byType["aws_launch_template"] {
		for _, b := range blocks(r.Values, "block_device_mappings") {
			if plain(block(b, "ebs")) {
				fs.add(RuleUnencrypted, r, nil, "%s is not encrypted", strings.TrimSpace("block device "+str(b, "device_name")))
			}
		}
	}
}

// s3Encryption checks the key S3 buckets are encrypted with. Every object
// is encrypted since January 2023 (SSE-S3 by default), so the question is
// whose key: the finding is reported where the key is chosen, the
// aws_s3_bucket_server_side_encryption_configuration when the bucket has
// one.
func s3Encryption(byType map[string][]*tf.Resource, fs *findings) {
	judge := func(at *tf.Resource, cfg map[string]any) {
		def := block(block(cfg, "rule"), "apply_server_side_encryption_by_default")
		alg, key := str(def, "sse_algorithm"), str(def, "kms_master_key_id")
		switch {
		case unknown(def, "sse_algorithm") || unknown(def, "kms_master_key_id"):
		case def == nil:
			fs.add(RuleNoCMK, at, nil, "bucket has no default encryption rule: only the S3-managed key (SSE-S3) applies")
		case !strings.HasPrefix(alg, "aws:kms"):
			fs.add(RuleNoCMK, at, nil, "bucket is encrypted with %s (the S3-managed key), not a customer-managed KMS key", alg)
		case key == "":
			fs.add(RuleNoCMK, at, nil, "sse_algorithm = %s without kms_master_key_id: the AWS-managed key aws/s3 is used", alg)
		case awsManagedKey(key):
			fs.add(RuleNoCMK, at, nil, "kms_master_key_id = %q is an AWS-managed key, which its owner cannot restrict, rotate or revoke", key)
		}
	}
	sse := map[string]*tf.Resource{}
	for _, r := range byType["aws_s3_bucket_server_side_encryption_configuration"] {
		sse[str(r.Values, "bucket")] = r
	}
	used := map[*tf.Resource]bool{}
	for _, r := range byType["aws_s3_bucket"] {
		at, cfg := r, block(r.Values, "server_side_encryption_configuration")
		for _, k := range []string{r.Address, str(r.Values, "bucket"), str(r.Values, "id")} {
			if c := sse[k]; c != nil && k != "" {
				at, cfg = c, c.Values
				used[c] = true
				break
			}
		}
		judge(at, cfg)
	}
	// A configuration of a bucket the scanned code does not declare
	// chooses that bucket's key all the same.
	for _, r := range byType["aws_s3_bucket_server_side_encryption_configuration"] {
		if !used[r] {
			judge(r, r.Values)
		}
	}
}

// transitRules reports data stores that take traffic in the clear
// (AWS-ENC-003): MSK client or broker traffic, ElastiCache replication
// groups without transit encryption (off unless set) or that still take
// plaintext (preferred mode), MemoryDB clusters with TLS off (on unless
// set). A value not known statically is read as plaintext and said so.
func (m *Model) transitRules(byType map[string][]*tf.Resource, fs *findings) {
	const assumed = "is not known statically: read as plaintext"
	for _, r := range byType["aws_msk_cluster"] {
		tr := block(block(r.Values, "encryption_info"), "encryption_in_transit")
		switch cb := str(tr, "client_broker"); {
		case unknown(r.Values, "encryption_info") || unknown(block(r.Values, "encryption_info"), "encryption_in_transit") || unknown(tr, "client_broker"):
			fs.add(RuleTransitPlain, r, nil, "encryption_in_transit.client_broker %s (PLAINTEXT): clients may reach the brokers without TLS", assumed)
		case cb == "TLS_PLAINTEXT":
			fs.add(RuleTransitPlain, r, nil, "client_broker = \"TLS_PLAINTEXT\": the brokers take plaintext connections from clients beside TLS ones")
		case cb == "PLAINTEXT":
			fs.add(RuleTransitPlain, r, nil, "client_broker = \"PLAINTEXT\": clients reach the brokers without TLS")
		case cb == "":
			// TLS by default since the AWS provider 3.0, TLS_PLAINTEXT
			// before.
			if why, before := m.providerBefore("aws", "3.0.0"); before {
				fs.add(RuleTransitPlain, r, nil, "encryption_in_transit.client_broker is not set, and the provider is %s: before 3.0 it defaults to TLS_PLAINTEXT, so the brokers take plaintext connections from clients beside TLS ones", why)
			}
		case cb == "TLS":
		default:
			// The provider validates the value case for case.
			m.reject(r, "encryption_in_transit.client_broker = %q: the AWS provider takes TLS, TLS_PLAINTEXT or PLAINTEXT alone, as written, so the plan fails and nothing is created from it", cb)
		}
		if unknown(tr, "in_cluster") {
			fs.add(RuleTransitPlain, r, nil, "encryption_in_transit.in_cluster %s: the brokers may replicate to each other without TLS", assumed)
		} else if has(tr, "in_cluster") && !boolean(tr, "in_cluster", true) {
			fs.add(RuleTransitPlain, r, nil, "in_cluster = false: the brokers replicate to each other without TLS")
		}
	}
	for _, r := range byType["aws_elasticache_replication_group"] {
		switch {
		case transitPlain(fs, r, assumed):
		case unknown(r.Values, "transit_encryption_mode"):
			fs.add(RuleTransitPlain, r, nil, "transit_encryption_mode is not known statically: read as preferred, which still takes plaintext connections")
		case strings.EqualFold(str(r.Values, "transit_encryption_mode"), "preferred"):
			fs.add(RuleTransitPlain, r, nil, "transit_encryption_mode = \"preferred\": the group still takes plaintext connections beside TLS ones")
		}
	}
	// A cache cluster of its own (not a member of a replication group,
	// whose setting holds) takes plaintext unless told otherwise. A
	// serverless cache takes TLS alone.
	for _, r := range byType["aws_elasticache_cluster"] {
		switch {
		case has(r.Values, "replication_group_id") || unknown(r.Values, "replication_group_id"):
		default:
			transitPlain(fs, r, assumed)
		}
	}
	for _, r := range byType["aws_memorydb_cluster"] {
		switch {
		case unknown(r.Values, "tls_enabled"):
			fs.add(RuleTransitPlain, r, nil, "tls_enabled %s: clients may connect without TLS", assumed)
		case has(r.Values, "tls_enabled") && !boolean(r.Values, "tls_enabled", true):
			fs.add(RuleTransitPlain, r, nil, "tls_enabled = false: clients connect without TLS")
		}
	}
	for _, r := range byType["aws_docdb_cluster"] {
		if why := m.docdbPlain(byType, r); why != "" {
			fs.add(RuleTransitPlain, r, nil, "%s", why)
		}
	}
}

// docdbPlain says why DocumentDB cluster r takes plaintext from clients
// ("" when it requires TLS): its cluster parameter group sets tls =
// "disabled". AWS's default groups (default.docdbX), and a group that
// leaves tls alone, require TLS; a group named outside the scanned code,
// or a tls not known statically, is read as disabled, and said so.
func (m *Model) docdbPlain(byType map[string][]*tf.Resource, r *tf.Resource) string {
	const typ = "aws_docdb_cluster_parameter_group"
	ref := m.ref(r.Values, "db_cluster_parameter_group_name")
	switch {
	case ref == "" && unknown(r.Values, "db_cluster_parameter_group_name"):
		return "db_cluster_parameter_group_name is not known statically: its group may set tls = \"disabled\", read so: clients may connect without TLS"
	case ref == "" || strings.HasPrefix(ref, "default."):
		return ""
	}
	addr := m.addrOf(typ, ref)
	var pg *tf.Resource
	for _, g := range byType[typ] {
		if g.Address == addr {
			pg = g
		}
	}
	if pg == nil {
		return fmt.Sprintf("its cluster parameter group %q is not in the scanned code: it may set tls = \"disabled\", read so: clients may connect without TLS", ref)
	}
	if blocksUnknown(pg.Values, "parameter") {
		return fmt.Sprintf("the parameters of %s are not known statically: tls may be \"disabled\", read so: clients may connect without TLS", pg.Address)
	}
	for _, p := range blocks(pg.Values, "parameter") {
		if str(p, "name") != "tls" && !unknown(p, "name") {
			continue
		}
		switch {
		case unknown(p, "name") || unknown(p, "value"):
			return fmt.Sprintf("a parameter of %s is not known statically: tls may be \"disabled\", read so: clients may connect without TLS", pg.Address)
		case strings.EqualFold(str(p, "value"), "disabled"):
			return fmt.Sprintf("its cluster parameter group %s sets tls = \"disabled\": clients connect without TLS", pg.Address)
		}
	}
	return ""
}

// transitPlain reports an ElastiCache group or cluster whose
// transit_encryption_enabled leaves it taking plaintext (not set, false,
// or not known statically: assumed names that case), and says whether it
// did.
func transitPlain(fs *findings, r *tf.Resource, assumed string) bool {
	switch {
	case unknown(r.Values, "transit_encryption_enabled"):
		fs.add(RuleTransitPlain, r, nil, "transit_encryption_enabled %s: clients may connect without TLS", assumed)
	case !has(r.Values, "transit_encryption_enabled"):
		fs.add(RuleTransitPlain, r, nil, "transit_encryption_enabled is not set (off unless set): clients connect without TLS")
	case !boolean(r.Values, "transit_encryption_enabled", false):
		fs.add(RuleTransitPlain, r, nil, "transit_encryption_enabled = false: clients connect without TLS")
	default:
		return false
	}
	return true
}
