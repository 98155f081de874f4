package check

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// checkSource checks one Terraform file written to a fresh directory.
func checkSource(t *testing.T, src string) *Report {
	t.Helper()
	return run(t, writeProject(t, src))
}

// writeProject writes src as main.tf of a fresh directory and returns it.
func writeProject(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func findingOn(rep *Report, rule, addr string) *Finding {
	for i, f := range rep.Findings {
		if f.RuleID == rule && f.Address == addr {
			return &rep.Findings[i]
		}
	}
	return nil
}

// The world-open finding points at the resource that declares the open
// rule: a rule resource, even when its group is outside the scanned code,
// and each half of a split range.
func TestWorldOpenAtDeclaringResource(t *testing.T) {
	rep := checkSource(t, `
resource "aws_security_group" "db" {
  name = "db"
}

resource "aws_security_group_rule" "low" {
  type              = "ingress"
  security_group_id = aws_security_group.db.id
  from_port         = 5432
  to_port           = 5432
  protocol          = "tcp"
  cidr_blocks       = ["0.0.0.0/1"]
}

resource "aws_security_group_rule" "high" {
  type              = "ingress"
  security_group_id = aws_security_group.db.id
  from_port         = 5432
  to_port           = 5432
  protocol          = "tcp"
  cidr_blocks       = ["128.0.0.0/1"]
}

resource "aws_vpc_security_group_ingress_rule" "elsewhere" {
  security_group_id = "sg-0123456789abcdef0"
  from_port         = 9000
  to_port           = 9000
  ip_protocol       = "tcp"
  cidr_ipv6         = "::/0"
}
`)
	for _, want := range []struct{ rule, addr string }{
		{RuleWorldOpen, "aws_security_group_rule.low"},
		{RuleWorldOpen, "aws_security_group_rule.high"},
		{RuleWorldOpenOther, "aws_vpc_security_group_ingress_rule.elsewhere"},
	} {
		if findingOn(rep, want.rule, want.addr) == nil {
			t.Errorf("no %s finding on %s: %+v", want.rule, want.addr, rep.Findings)
		}
	}
	if f := findingOn(rep, RuleWorldOpen, "aws_security_group.db"); f != nil {
		t.Errorf("finding on the group, not on its rules: %+v", f)
	}
}

// A rule that opens every port is both: service ports and the others.
func TestWorldOpenAllPorts(t *testing.T) {
	rep := checkSource(t, `
resource "aws_security_group" "all" {
  ingress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
`)
	for _, rule := range []string{RuleWorldOpen, RuleWorldOpenOther} {
		f := findingOn(rep, rule, "aws_security_group.all")
		if f == nil {
			t.Fatalf("no %s finding: %+v", rule, rep.Findings)
		}
		if rule == RuleWorldOpen && !strings.Contains(f.Message, "every tcp and udp service port (SSH, RDP") {
			t.Errorf("%s does not say every service port is open: %s", rule, f.Message)
		}
		if rule == RuleWorldOpenOther && !strings.Contains(f.Message, "every other tcp and udp port") {
			t.Errorf("%s does not say every other port is open: %s", rule, f.Message)
		}
	}
}

// A wide range names its admin and data-store ports first: RDP inside
// tcp 1000-6000 is not lost behind a dozen other services.
func TestWorldOpenWideRangeNamesAdminPorts(t *testing.T) {
	rep := checkSource(t, `
resource "aws_security_group" "wide" {
  ingress {
    from_port   = 1
    to_port     = 6000
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
`)
	f := findingOn(rep, RuleWorldOpen, "aws_security_group.wide")
	if f == nil {
		t.Fatalf("no %s finding: %+v", RuleWorldOpen, rep.Findings)
	}
	for _, want := range []string{"tcp 22 (SSH)", "tcp 3389 (RDP)", "tcp 5432 (PostgreSQL)", "more"} {
		if !strings.Contains(f.Message, want) {
			t.Errorf("message does not name %q: %s", want, f.Message)
		}
	}
}

// Data stores configured public are findings even when their subnets are
// outside the scanned code; MSK, DMS and Neptune express it in Terraform.
func TestConfiguredPublicDataStores(t *testing.T) {
	rep := checkSource(t, `
resource "aws_msk_cluster" "public" {
  cluster_name           = "events"
  kafka_version          = "3.6.0"
  number_of_broker_nodes = 3
  broker_node_group_info {
    instance_type   = "kafka.m5.large"
    client_subnets  = ["subnet-1", "subnet-2", "subnet-3"]
    security_groups = ["sg-1"]
    connectivity_info {
      public_access {
        type = "SERVICE_PROVIDED_EIPS"
      }
    }
  }
}

resource "aws_msk_cluster" "private" {
  cluster_name           = "internal"
  kafka_version          = "3.6.0"
  number_of_broker_nodes = 3
  broker_node_group_info {
    instance_type   = "kafka.m5.large"
    client_subnets  = ["subnet-1", "subnet-2", "subnet-3"]
    security_groups = ["sg-1"]
  }
}

resource "aws_dms_replication_instance" "public" {
  replication_instance_id    = "dms"
  replication_instance_class = "dms.t3.micro"
  publicly_accessible        = true
}

# The DMS API would make it public, but the AWS provider sends
# publicly_accessible = false when the configuration leaves it out.
resource "aws_dms_replication_instance" "default" {
  replication_instance_id    = "dms-default"
  replication_instance_class = "dms.t3.micro"
}

resource "aws_dms_replication_instance" "private" {
  replication_instance_id    = "dms-private"
  replication_instance_class = "dms.t3.micro"
  publicly_accessible        = false
}

resource "aws_neptune_cluster_instance" "graph" {
  cluster_identifier  = "graph"
  instance_class      = "db.r5.large"
  publicly_accessible = true
}

resource "aws_redshift_cluster" "private" {
  cluster_identifier  = "dw"
  node_type           = "dc2.large"
  publicly_accessible = false
}
`)
	for _, addr := range []string{"aws_msk_cluster.public", "aws_dms_replication_instance.public", "aws_neptune_cluster_instance.graph"} {
		if findingOn(rep, RuleDataTierPublic, addr) == nil {
			t.Errorf("no %s finding on %s", RuleDataTierPublic, addr)
		}
	}
	for _, addr := range []string{"aws_msk_cluster.private", "aws_dms_replication_instance.private", "aws_dms_replication_instance.default", "aws_redshift_cluster.private"} {
		if f := findingOn(rep, RuleDataTierPublic, addr); f != nil {
			t.Errorf("private %s: %s", addr, f.Message)
		}
	}
}

// Subnet flow logs on every subnet record a VPC's traffic; an interface
// flow log does not; a flow log that names nothing is a finding.
func TestFlowLogCoverage(t *testing.T) {
	rep := checkSource(t, `
resource "aws_vpc" "covered" {
  cidr_block = "10.0.0.0/16"
}

resource "aws_subnet" "a" {
  vpc_id     = aws_vpc.covered.id
  cidr_block = "10.0.1.0/24"
}

resource "aws_flow_log" "a" {
  subnet_id    = aws_subnet.a.id
  traffic_type = "ALL"
}

resource "aws_vpc" "partial" {
  cidr_block = "10.1.0.0/16"
}

resource "aws_subnet" "b" {
  vpc_id     = aws_vpc.partial.id
  cidr_block = "10.1.1.0/24"
}

resource "aws_network_interface" "b" {
  subnet_id = aws_subnet.b.id
}

resource "aws_flow_log" "b" {
  eni_id       = aws_network_interface.b.id
  traffic_type = "ALL"
}

resource "aws_flow_log" "nothing" {
  traffic_type = "ALL"
}
`)
	if f := findingOn(rep, RuleNoFlowLogs, "aws_vpc.covered"); f != nil {
		t.Errorf("VPC covered by subnet flow logs: %s", f.Message)
	}
	if f := findingOn(rep, RuleNoFlowLogs, "aws_vpc.partial"); f == nil || !strings.Contains(f.Message, "aws_subnet.b") {
		t.Errorf("VPC with an interface flow log only: %+v", f)
	}
	if findingOn(rep, RuleNoFlowLogs, "aws_flow_log.nothing") == nil {
		t.Error("no finding on a flow log that names nothing")
	}
}

// A classic load balancer's SSL negotiation policy below TLS 1.2: an
// enabled old protocol, or a predefined policy that admits TLS 1.1.
func TestSSLNegotiationPolicy(t *testing.T) {
	rep := checkSource(t, `
resource "aws_load_balancer_policy" "sslv3" {
  load_balancer_name = "web"
  policy_name        = "legacy"
  policy_type_name   = "SSLNegotiationPolicyType"
  policy_attribute {
    name  = "Protocol-SSLv3"
    value = "true"
  }
}

resource "aws_load_balancer_policy" "tls11" {
  load_balancer_name = "web"
  policy_name        = "tls11"
  policy_type_name   = "SSLNegotiationPolicyType"
  policy_attribute {
    name  = "Reference-Security-Policy"
    value = "ELBSecurityPolicy-TLS-1-1-2017-01"
  }
}

resource "aws_load_balancer_policy" "modern" {
  load_balancer_name = "web"
  policy_name        = "modern"
  policy_type_name   = "SSLNegotiationPolicyType"
  policy_attribute {
    name  = "Reference-Security-Policy"
    value = "ELBSecurityPolicy-TLS-1-2-2017-01"
  }
  policy_attribute {
    name  = "Protocol-TLSv1"
    value = "false"
  }
}
`)
	for _, addr := range []string{"aws_load_balancer_policy.sslv3", "aws_load_balancer_policy.tls11"} {
		if findingOn(rep, RuleWeakTLS, addr) == nil {
			t.Errorf("no %s finding on %s", RuleWeakTLS, addr)
		}
	}
	if f := findingOn(rep, RuleWeakTLS, "aws_load_balancer_policy.modern"); f != nil {
		t.Errorf("TLS 1.2 policy flagged: %s", f.Message)
	}
}

// AWS-managed key aliases are not customer-managed keys; a Kinesis stream
// with encryption_type KMS and no key is not encrypted.
func TestManagedKeys(t *testing.T) {
	rep := checkSource(t, `
resource "aws_sns_topic" "managed" {
  name              = "updates"
  kms_master_key_id = "alias/aws/sns"
}

resource "aws_kinesis_stream" "nokey" {
  name            = "events"
  shard_count     = 1
  encryption_type = "KMS"
}
`)
	if findingOn(rep, RuleNoCMK, "aws_sns_topic.managed") == nil {
		t.Error("alias/aws/sns taken for a customer-managed key")
	}
	if findingOn(rep, RuleUnencrypted, "aws_kinesis_stream.nokey") == nil {
		t.Error("KMS stream without a key taken for encrypted")
	}
}

// A DocumentDB instance is a data store on the reachability engine: its
// port reachable from a whole peered VPC is lateral movement.
func TestDocDBLateral(t *testing.T) {
	rep := checkSource(t, `
resource "aws_vpc" "prod" {
  cidr_block = "10.0.0.0/16"
}

resource "aws_vpc" "dev" {
  cidr_block = "10.1.0.0/16"
}

resource "aws_vpc_peering_connection" "dev_prod" {
  vpc_id      = aws_vpc.dev.id
  peer_vpc_id = aws_vpc.prod.id
}

resource "aws_route_table" "prod" {
  vpc_id = aws_vpc.prod.id
  route {
    cidr_block                = "10.1.0.0/16"
    vpc_peering_connection_id = aws_vpc_peering_connection.dev_prod.id
  }
}

resource "aws_route_table" "dev" {
  vpc_id = aws_vpc.dev.id
  route {
    cidr_block                = "10.0.0.0/16"
    vpc_peering_connection_id = aws_vpc_peering_connection.dev_prod.id
  }
}

resource "aws_subnet" "data" {
  vpc_id     = aws_vpc.prod.id
  cidr_block = "10.0.2.0/24"
}

resource "aws_route_table_association" "data" {
  subnet_id      = aws_subnet.data.id
  route_table_id = aws_route_table.prod.id
}

resource "aws_docdb_subnet_group" "data" {
  name       = "data"
  subnet_ids = [aws_subnet.data.id]
}

resource "aws_security_group" "docdb" {
  vpc_id = aws_vpc.prod.id
  ingress {
    from_port   = 27017
    to_port     = 27017
    protocol    = "tcp"
    cidr_blocks = ["10.1.0.0/16"]
  }
}

resource "aws_docdb_cluster" "main" {
  cluster_identifier     = "main"
  db_subnet_group_name   = aws_docdb_subnet_group.data.name
  vpc_security_group_ids = [aws_security_group.docdb.id]
  storage_encrypted      = true
}

resource "aws_docdb_cluster_instance" "one" {
  cluster_identifier = aws_docdb_cluster.main.id
  instance_class     = "db.r6g.large"
}
`)
	f := findingOn(rep, RuleLateral, "aws_docdb_cluster_instance.one")
	if f == nil || !strings.Contains(f.Message, "tcp 27017") {
		t.Fatalf("no lateral finding on the DocumentDB instance: %+v", rep.Findings)
	}
}

// TestWorldOpenBrokerAndAdminPorts checks that a message broker's own
// ports (AMQP over TLS, ActiveMQ's OpenWire) and every admin or data-store
// port reachability probes (WinRM among them) are service ports: open to
// the world, AWS-NET-003, not AWS-NET-011.
func TestWorldOpenBrokerAndAdminPorts(t *testing.T) {
	for _, s := range sensitivePorts {
		if !slices.ContainsFunc(servicePorts, func(p struct {
			From, To int
			Name     string
		}) bool {
			return p.From <= s.Port && s.Port <= p.To
		}) {
			t.Errorf("port %d (%s) is probed as sensitive but is no service port", s.Port, s.Name)
		}
	}
	rep := run(t, "testdata/aws/broker-ports")
	for _, addr := range []string{"aws_security_group.amqps", "aws_security_group.openwire", "aws_security_group.winrm"} {
		if got := activeOn(rep, RuleWorldOpen, addr); len(got) != 1 {
			t.Errorf("%s on %s: %+v, want one", RuleWorldOpen, addr, got)
		}
		if got := activeOn(rep, RuleWorldOpenOther, addr); len(got) != 0 {
			t.Errorf("%s on %s: %+v, want none", RuleWorldOpenOther, addr, got)
		}
	}
}
