package check

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// wantFindings checks, for each address, whether rep has a finding of rule
// on it.
func wantFindings(t *testing.T, rep *Report, rule string, want map[string]bool) {
	t.Helper()
	for addr, w := range want {
		if got := findingOn(rep, rule, addr) != nil; got != w {
			t.Errorf("%s: %s reported %v, want %v", addr, rule, got, w)
		}
	}
}

func write(t *testing.T, dir, name, src string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Encryption at rest follows the provider's defaults and the sources a
// resource is made from, not only its own flag.
func TestEncryptionDefaults(t *testing.T) {
	rep := checkSource(t, `
resource "aws_rds_cluster" "serverless" {
  engine      = "aurora-mysql"
  engine_mode = "serverless"
}

resource "aws_rds_cluster" "provisioned" {
  engine = "aurora-mysql"
}

resource "aws_db_instance" "replica" {
  replicate_source_db = "arn:aws:rds:eu-west-1:111122223333:db:primary"
  kms_key_id          = "arn:aws:kms:eu-central-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
}

resource "aws_db_instance" "key_only" {
  engine     = "mysql"
  kms_key_id = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
}

resource "aws_ebs_volume" "from_snapshot" {
  availability_zone = "eu-west-1a"
  snapshot_id       = "snap-0123456789abcdef0"
}

resource "aws_launch_configuration" "plain" {
  image_id      = "ami-0123456789abcdef0"
  instance_type = "t3.micro"

  root_block_device {
    encrypted = "false"
  }

  ebs_block_device {
    device_name = "/dev/xvdb"
  }

  ebs_block_device {
    device_name = "/dev/xvdc"
    snapshot_id = "snap-0123456789abcdef0"
  }
}
`)
	wantFindings(t, rep, RuleUnencrypted, map[string]bool{
		"aws_rds_cluster.serverless":     false, // storage_encrypted defaults to true for serverless
		"aws_rds_cluster.provisioned":    true,
		"aws_db_instance.replica":        false, // encrypted as its source, with kms_key_id
		"aws_db_instance.key_only":       true,  // RDS refuses a key without storage_encrypted
		"aws_ebs_volume.from_snapshot":   false, // encrypted as the snapshot is
		"aws_launch_configuration.plain": true,
	})
	n := 0
	for _, f := range rep.Findings {
		if f.RuleID == RuleUnencrypted && f.Address == "aws_launch_configuration.plain" {
			n++
			if strings.Contains(f.Message, "/dev/xvdc") {
				t.Errorf("a device made from a snapshot is reported: %s", f.Message)
			}
		}
	}
	if n != 2 {
		t.Errorf("launch configuration: %d findings, want the root device and /dev/xvdb", n)
	}
}

// With EBS encryption by default turned on in the project, every new
// volume is encrypted, whatever the volume or the instance says.
func TestEBSEncryptionByDefault(t *testing.T) {
	rep := checkSource(t, `
resource "aws_ebs_encryption_by_default" "on" {
  enabled = true
}

resource "aws_ebs_volume" "data" {
  availability_zone = "eu-west-1a"
  encrypted         = false
}

resource "aws_instance" "app" {
  ami           = "ami-0123456789abcdef0"
  instance_type = "t3.micro"
  root_block_device {
    volume_size = 20
  }
}
`)
	for _, f := range rep.Findings {
		if f.RuleID == RuleUnencrypted {
			t.Errorf("unexpected finding with EBS encryption by default on: %+v", f)
		}
	}
}

// Subnets that give every instance a public address are AWS-EC2-001.
func TestSubnetPublicIP(t *testing.T) {
	rep := checkSource(t, `
resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
}

resource "aws_subnet" "public" {
  vpc_id                  = aws_vpc.main.id
  cidr_block              = "10.0.1.0/24"
  map_public_ip_on_launch = true
}

resource "aws_subnet" "private" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.2.0/24"
}
`)
	if findingOn(rep, RulePublicIP, "aws_subnet.public") == nil {
		t.Errorf("no %s on the public subnet: %+v", RulePublicIP, rep.Findings)
	}
	if f := findingOn(rep, RulePublicIP, "aws_subnet.private"); f != nil {
		t.Errorf("private subnet reported: %+v", f)
	}
}

// A trail that logs nothing, or writes only to S3, is reported.
func TestTrailLoggingAndCloudWatch(t *testing.T) {
	rep := checkSource(t, `
resource "aws_cloudtrail" "off" {
  name                       = "off"
  s3_bucket_name             = "trail"
  enable_logging             = false
  cloud_watch_logs_group_arn = "arn:aws:logs:eu-west-1:111122223333:log-group:trail:*"
  cloud_watch_logs_role_arn  = "arn:aws:iam::111122223333:role/trail-logs"
}

resource "aws_cloudtrail" "s3_only" {
  name           = "s3-only"
  s3_bucket_name = "trail"
}

resource "aws_cloudtrail" "no_role" {
  name                       = "no-role"
  s3_bucket_name             = "trail"
  cloud_watch_logs_group_arn = "arn:aws:logs:eu-west-1:111122223333:log-group:trail:*"
}
`)
	if findingOn(rep, RuleCloudTrail, "aws_cloudtrail.off") == nil {
		t.Errorf("enable_logging = false not reported: %+v", rep.Findings)
	}
	if f := findingOn(rep, RuleCloudTrail, "aws_cloudtrail.s3_only"); f != nil {
		t.Errorf("a logging trail reported as not logging: %+v", f)
	}
	wantFindings(t, rep, RuleTrailCloudWatch, map[string]bool{"aws_cloudtrail.off": false, "aws_cloudtrail.s3_only": true, "aws_cloudtrail.no_role": true})
}

// Classic load balancer policies that enable a broken cipher are weak TLS;
// strong suites are not.
func TestSSLNegotiationCiphers(t *testing.T) {
	rep := checkSource(t, `
resource "aws_load_balancer_policy" "rc4" {
  load_balancer_name = "web"
  policy_name        = "rc4"
  policy_type_name   = "SSLNegotiationPolicyType"
  policy_attribute {
    name  = "Protocol-TLSv1.2"
    value = "true"
  }
  policy_attribute {
    name  = "ECDHE-RSA-RC4-SHA"
    value = "true"
  }
}

resource "aws_load_balancer_policy" "des" {
  load_balancer_name = "web"
  policy_name        = "des"
  policy_type_name   = "SSLNegotiationPolicyType"
  policy_attribute {
    name  = "DES-CBC3-SHA"
    value = "true"
  }
}

resource "aws_load_balancer_policy" "strong" {
  load_balancer_name = "web"
  policy_name        = "strong"
  policy_type_name   = "SSLNegotiationPolicyType"
  policy_attribute {
    name  = "Protocol-TLSv1.2"
    value = "true"
  }
  policy_attribute {
    name  = "ECDHE-ECDSA-AES128-GCM-SHA256"
    value = "true"
  }
  policy_attribute {
    name  = "RC4-SHA"
    value = "false"
  }
}
`)
	wantFindings(t, rep, RuleWeakTLS, map[string]bool{"aws_load_balancer_policy.rc4": true, "aws_load_balancer_policy.des": true, "aws_load_balancer_policy.strong": false})
}

// What Terraform rejects in a module call makes terraform plan fail: it is
// reported as rejected (CHECK-003), not as a note, and says why.
func TestModuleCallRejected(t *testing.T) {
	for _, c := range []struct{ name, call, want string }{
		{"wrong type", `ports = ["22", "x"]`, "does not have the declared type"},
		{"no such variable", "ports = [22]\n  cidr = \"0.0.0.0/0\"", `no variable "cidr"`},
		{"nested block", "ports = [22]\n  ingress {\n    from_port = 22\n  }", `the "ingress" block`},
		{"missing required", "", `required variable "ports"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, "main.tf", "module \"sg\" {\n  source = \"./sg\"\n  "+c.call+"\n}\n")
			write(t, dir, "sg/main.tf", "variable \"ports\" {\n  type = list(number)\n}\n")
			rep := run(t, dir)
			found := false
			for _, f := range rep.Findings {
				if f.RuleID == RuleRejected && strings.Contains(f.Message, c.want) && strings.Contains(f.Message, "Terraform rejects") {
					found = true
				}
				if f.RuleID == RuleNotEvaluated && strings.Contains(f.Message, c.want) {
					t.Errorf("reported as a note: %+v", f)
				}
			}
			if !found {
				t.Errorf("no %s finding naming %q: %+v", RuleRejected, c.want, rep.Findings)
			}
		})
	}
	// A nested block is refused whatever the module: no need to have it.
	rep := checkSource(t, `
module "sg" {
  source  = "terraform-aws-modules/security-group/aws"
  version = "5.1.0"
  ingress {
    from_port = 22
  }
}
`)
	if f := findingOn(rep, RuleRejected, "module.sg"); f == nil || !strings.Contains(f.Message, `the "ingress" block`) {
		t.Errorf("nested block in a registry module call not rejected: %+v", rep.Findings)
	}
}

// A KMS key looked up by a data source is the key its alias or ARN names:
// the AWS-managed alias is reported, a customer-managed key is not, and
// other data sources stay unknown.
func TestKMSKeyDataSources(t *testing.T) {
	rep := checkSource(t, `
data "aws_kms_alias" "sns" {
  name = "alias/aws/sns"
}

data "aws_kms_key" "sqs" {
  key_id = "alias/aws/sqs"
}

resource "aws_kms_key" "main" {
  enable_key_rotation = true
}

data "aws_kms_key" "main" {
  key_id = aws_kms_key.main.arn
}

data "aws_caller_identity" "current" {}

resource "aws_sns_topic" "managed" {
  name              = "managed"
  kms_master_key_id = data.aws_kms_alias.sns.target_key_arn
}

resource "aws_sqs_queue" "managed" {
  name              = "managed"
  kms_master_key_id = data.aws_kms_key.sqs.arn
}

resource "aws_sns_topic" "customer" {
  name              = "customer"
  kms_master_key_id = data.aws_kms_key.main.arn
}

resource "aws_sns_topic" "unknown" {
  name              = "unknown"
  kms_master_key_id = "arn:aws:kms:eu-west-1:${data.aws_caller_identity.current.account_id}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
}
`)
	wantFindings(t, rep, RuleNoCMK, map[string]bool{"aws_sns_topic.managed": true, "aws_sqs_queue.managed": true, "aws_sns_topic.customer": false, "aws_sns_topic.unknown": false})
	if findingOn(rep, RuleNotEvaluated, "aws_sns_topic.unknown") == nil {
		t.Errorf("a value from another data source is not noted as unknown: %+v", rep.Findings)
	}
}

// The key of a bucket is reported where it is chosen: at the separate
// encryption configuration when there is one.
func TestS3EncryptionWhereTheKeyIsChosen(t *testing.T) {
	rep := checkSource(t, `
resource "aws_s3_bucket" "sse_s3" {
  bucket = "sse-s3"
}

resource "aws_s3_bucket_server_side_encryption_configuration" "sse_s3" {
  bucket = aws_s3_bucket.sse_s3.bucket
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket" "managed" {
  bucket = "managed"
}

resource "aws_s3_bucket_server_side_encryption_configuration" "managed" {
  bucket = aws_s3_bucket.managed.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = "alias/aws/s3"
    }
  }
}

resource "aws_kms_key" "logs" {
  enable_key_rotation = true
}

resource "aws_s3_bucket" "cmk" {
  bucket = "cmk"
}

resource "aws_s3_bucket_server_side_encryption_configuration" "cmk" {
  bucket = aws_s3_bucket.cmk.bucket
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.logs.arn
    }
  }
}

resource "aws_s3_bucket" "bare" {
  bucket = "bare"
}
`)
	wantFindings(t, rep, RuleNoCMK, map[string]bool{
		"aws_s3_bucket_server_side_encryption_configuration.sse_s3":  true,
		"aws_s3_bucket_server_side_encryption_configuration.managed": true,
		"aws_s3_bucket_server_side_encryption_configuration.cmk":     false,
		"aws_s3_bucket.sse_s3":  false,
		"aws_s3_bucket.managed": false,
		"aws_s3_bucket.cmk":     false,
		"aws_s3_bucket.bare":    true,
	})
}

// Services that encrypt everything they store are asked only whose key it
// is; those that do not are reported unless the configuration encrypts;
// defaults that hang on the engine are followed; a key the service refuses
// without the flag is named as the reason.
func TestEncryptionServices(t *testing.T) {
	rep := checkSource(t, `
resource "aws_elasticache_replication_group" "valkey" {
  replication_group_id = "valkey"
  description          = "valkey"
  engine               = "valkey"
  node_type            = "cache.t4g.micro"
}

resource "aws_elasticache_replication_group" "redis" {
  replication_group_id = "redis"
  description          = "redis"
  engine               = "redis"
  node_type            = "cache.t4g.micro"
}

resource "aws_elasticache_replication_group" "valkey_off" {
  replication_group_id       = "valkey-off"
  description                = "valkey"
  engine                     = "valkey"
  node_type                  = "cache.t4g.micro"
  at_rest_encryption_enabled = false
}

resource "aws_elasticache_serverless_cache" "cache" {
  engine = "valkey"
  name   = "cache"
}

resource "aws_dax_cluster" "plain" {
  cluster_name       = "plain"
  iam_role_arn       = "arn:aws:iam::111122223333:role/dax"
  node_type          = "dax.r4.large"
  replication_factor = 1
}

resource "aws_dax_cluster" "encrypted" {
  cluster_name       = "encrypted"
  iam_role_arn       = "arn:aws:iam::111122223333:role/dax"
  node_type          = "dax.r4.large"
  replication_factor = 1
  server_side_encryption {
    enabled = true
  }
}

resource "aws_kinesis_firehose_delivery_stream" "direct_put" {
  name        = "direct-put"
  destination = "extended_s3"
}

resource "aws_kinesis_firehose_delivery_stream" "from_stream" {
  name        = "from-stream"
  destination = "extended_s3"
  kinesis_source_configuration {
    kinesis_stream_arn = "arn:aws:kinesis:eu-west-1:111122223333:stream/in"
    role_arn           = "arn:aws:iam::111122223333:role/firehose"
  }
}

resource "aws_workspaces_workspace" "plain" {
  directory_id = "d-1234567890"
  bundle_id    = "wsb-0123456789"
  user_name    = "alice"
}

resource "aws_secretsmanager_secret" "default_key" {
  name = "db"
}

resource "aws_rds_global_cluster" "plain" {
  global_cluster_identifier = "global"
  engine                    = "aurora-postgresql"
}

resource "aws_rds_global_cluster" "from_cluster" {
  global_cluster_identifier    = "global-from"
  source_db_cluster_identifier = "arn:aws:rds:eu-west-1:111122223333:cluster:primary"
}

resource "aws_ebs_volume" "key_only" {
  availability_zone = "eu-west-1a"
  size              = 10
  kms_key_id        = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
}
`)
	wantFindings(t, rep, RuleUnencrypted, map[string]bool{
		"aws_elasticache_replication_group.valkey":         false,
		"aws_elasticache_replication_group.redis":          true,
		"aws_elasticache_replication_group.valkey_off":     true,
		"aws_elasticache_serverless_cache.cache":           false,
		"aws_dax_cluster.plain":                            true,
		"aws_dax_cluster.encrypted":                        false,
		"aws_kinesis_firehose_delivery_stream.direct_put":  true,
		"aws_kinesis_firehose_delivery_stream.from_stream": false,
		"aws_workspaces_workspace.plain":                   true,
		"aws_secretsmanager_secret.default_key":            false,
		"aws_rds_global_cluster.plain":                     true,
		"aws_rds_global_cluster.from_cluster":              false,
		"aws_ebs_volume.key_only":                          true,
	})
	wantFindings(t, rep, RuleNoCMK, map[string]bool{
		"aws_elasticache_serverless_cache.cache": true,
		"aws_secretsmanager_secret.default_key":  true,
		"aws_dax_cluster.encrypted":              false, // DAX takes no customer key
	})
	if f := findingOn(rep, RuleUnencrypted, "aws_ebs_volume.key_only"); f != nil && !strings.Contains(f.Message, "refuses") {
		t.Errorf("key without encrypted: message %q does not say EC2 refuses the key", f.Message)
	}
}

// An S3 encryption configuration of a bucket declared elsewhere chooses
// that bucket's key: it is judged on its own.
func TestS3EncryptionConfigurationAlone(t *testing.T) {
	rep := checkSource(t, `
resource "aws_s3_bucket_server_side_encryption_configuration" "sse_s3" {
  bucket = "logs-elsewhere"
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "cmk" {
  bucket = "data-elsewhere"
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    }
  }
}
`)
	wantFindings(t, rep, RuleNoCMK, map[string]bool{
		"aws_s3_bucket_server_side_encryption_configuration.sse_s3": true,
		"aws_s3_bucket_server_side_encryption_configuration.cmk":    false,
	})
}

// TestDefaultGroupMembersReach: a resource that names no security group is
// in its VPC's default group, so --reach counts it among that group's
// members: the instances reach each other (the group admits its own
// members) and the database that admits the group by ID. Neither was
// listed: only resources that named their groups were members of any.
func TestDefaultGroupMembersReach(t *testing.T) {
	const dir = "testdata/aws/default-sg-members"
	for _, tc := range []struct {
		addr    string
		sources []string
	}{
		{"aws_instance.web", []string{"aws_instance.worker (in aws_subnet.app)"}},
		{"aws_db_instance.db", []string{"aws_instance.web (in aws_subnet.app)", "aws_instance.worker (in aws_subnet.app)"}},
	} {
		acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, tc.addr)
		if err != nil {
			t.Fatalf("%s: %v", tc.addr, err)
		}
		var got []string
		for _, a := range acc {
			if !slices.Contains(got, a.Source) {
				got = append(got, a.Source)
			}
		}
		if !slices.Equal(got, tc.sources) {
			t.Errorf("%s reached from %v, want %v", tc.addr, got, tc.sources)
		}
	}
}

// TestEncryptedByDefaultAsksWhoseKey checks that a resource encrypted by
// the service's default (an Aurora Serverless v1 cluster, a Valkey
// replication group) is still asked whose key encrypts it: without a
// kms_key_id, AWS's own (AWS-ENC-002); with one, none.
func TestEncryptedByDefaultAsksWhoseKey(t *testing.T) {
	rep := checkSource(t, `
resource "aws_rds_cluster" "v1" {
  engine      = "aurora-mysql"
  engine_mode = "serverless"
}
resource "aws_rds_cluster" "v1_cmk" {
  engine      = "aurora-mysql"
  engine_mode = "serverless"
  kms_key_id  = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
}
resource "aws_elasticache_replication_group" "valkey" {
  replication_group_id = "cache"
  description          = "cache"
  engine               = "valkey"
}
`)
	wantFindings(t, rep, RuleUnencrypted, map[string]bool{"aws_rds_cluster.v1": false, "aws_rds_cluster.v1_cmk": false, "aws_elasticache_replication_group.valkey": false})
	wantFindings(t, rep, RuleNoCMK, map[string]bool{"aws_rds_cluster.v1": true, "aws_rds_cluster.v1_cmk": false, "aws_elasticache_replication_group.valkey": true})
}
