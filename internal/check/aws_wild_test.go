package check

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestNACLUnknownRuleNumberFailsClosed checks that a network ACL deny
// whose rule number is not known statically is read as deciding after
// the allows, and said so.
func TestNACLUnknownRuleNumberFailsClosed(t *testing.T) {
	rep := run(t, "testdata/aws/nacl-unknown-number")
	var ssh []Finding
	for _, f := range active(rep, RuleExposedPort) {
		if f.Address == "aws_instance.bastion" && strings.Contains(f.Message, "tcp 22 (SSH)") {
			ssh = append(ssh, f)
		}
	}
	if len(ssh) != 1 {
		t.Fatalf("SSH past a deny at an unknown rule number: %+v, want one finding", ssh)
	}
	said := false
	for _, f := range active(rep, RuleNotEvaluated) {
		if f.Address == "aws_network_acl.public" && strings.Contains(f.Message, "rule number not known statically") {
			said = true
		}
	}
	if !said {
		t.Error("no note that the deny's rule number was assumed")
	}
}

// TestNACLRuleOfAnACLNotKnownStatically: terraform-aws-vpc writes its
// dedicated network ACLs' entries as aws_network_acl_rule resources whose
// network_acl_id is aws_network_acl.public[0].id, the ACL having a count
// known only after apply. Such a rule was dropped ("network ACL \"\" is
// not in the project"), so the ACL read as denying what its rules allow:
// an exposure through it was missed. A rule whose ACL can only be one
// ACL is now that ACL's; an allow whose ACL may be several is each one's,
// a deny none's, both noted.
func TestNACLRuleOfAnACLNotKnownStatically(t *testing.T) {
	src := func(rules string) string {
		s, _ := strings.CutPrefix(naclUnknownNetwork, "\n")
		return s + rules
	}
	allow := `
resource "aws_network_acl_rule" "in" {
  network_acl_id = aws_network_acl.public[0].id
  rule_number    = 100
  egress         = false
  protocol       = "tcp"
  rule_action    = "allow"
  from_port      = 22
  to_port        = 22
  cidr_block     = "0.0.0.0/0"
}
resource "aws_network_acl_rule" "out" {
  network_acl_id = aws_network_acl.public[0].id
  rule_number    = 100
  egress         = true
  protocol       = "-1"
  rule_action    = "allow"
  cidr_block     = "0.0.0.0/0"
}
`
	deny := `
resource "aws_network_acl_rule" "deny" {
  network_acl_id = ACL
  rule_number    = 50
  egress         = false
  protocol       = "tcp"
  rule_action    = "deny"
  from_port      = 22
  to_port        = 22
  cidr_block     = "0.0.0.0/0"
}
`
	for _, tc := range []struct {
		name, rules string
		exposed     bool
		note        string
	}{
		{"allows of the one ACL", allow, true, "network ACL not known statically: assumed to be aws_network_acl.public"},
		{"a deny of the one ACL", allow + strings.Replace(deny, "ACL", "aws_network_acl.public[0].id", 1), false, ""},
		{"a deny of any ACL", allow + strings.Replace(deny, "ACL", "var.acl", 1), true,
			"network ACL not known statically: the deny is assumed to be in none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := checkSource(t, src(tc.rules))
			var ssh []Finding
			for _, f := range active(rep, RuleExposedPort) {
				if f.Address == "aws_instance.bastion" && strings.Contains(f.Message, "tcp 22 (SSH)") {
					ssh = append(ssh, f)
				}
			}
			if tc.exposed != (len(ssh) == 1) {
				t.Errorf("SSH exposures %+v, want exposed %v", ssh, tc.exposed)
			}
			if tc.note != "" {
				wantNotes(t, rep, tc.note)
			}
		})
	}
}

// naclUnknownNetwork is a public subnet whose dedicated network ACL, with
// no entries of its own, has a count known only after apply.
const naclUnknownNetwork = `
variable "dedicated" { type = bool }
variable "acl" {}
resource "aws_vpc" "main" {
  cidr_block = "10.71.0.0/16"
}
resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
}
resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.main.id
  }
}
resource "aws_subnet" "public" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.71.1.0/24"
}
resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}
resource "aws_network_acl" "public" {
  count      = var.dedicated ? 1 : 0
  vpc_id     = aws_vpc.main.id
  subnet_ids = [aws_subnet.public.id]
}
resource "aws_security_group" "ssh" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_instance" "bastion" {
  ami                         = "ami-12345678"
  instance_type               = "t3.micro"
  subnet_id                   = aws_subnet.public.id
  associate_public_ip_address = true
  vpc_security_group_ids      = [aws_security_group.ssh.id]
}
`

// TestNamesNotKnownStatically: a resource named from a value known only at
// apply time still is the resource that another names by reference. Such a
// reference was read as naming nothing: the subnet of an Azure network
// named "${var.prefix}-vnet" had no network, and a database's subnet group
// named from the account's ID no subnets, so the SSH and MySQL exposures
// through them were missed.
func TestNamesNotKnownStatically(t *testing.T) {
	az := run(t, "testdata/azure/names-unknown")
	if got := sshFindings(az, "azurerm_linux_virtual_machine.vm"); len(got) != 1 || got[0].Severity != Critical {
		t.Errorf("SSH through the NSG named by reference: %+v, want one critical", got)
	}
	db := activeOn(run(t, "testdata/aws/names-unknown"), RuleExposedPort, "aws_db_instance.app")
	if len(db) != 1 || db[0].Severity != Critical || !strings.Contains(db[0].Message, "tcp 3306 (MySQL)") {
		t.Fatalf("MySQL in the subnet group named by reference: %+v, want one critical", db)
	}
	if p := pathLine(db[0].Path); !strings.Contains(p, "aws_subnet.a") {
		t.Errorf("path %q does not cross the subnet group's subnet", p)
	}
}

// TestAWSSubnetElsewhereFailsClosed: an instance with a public address in
// a subnet the scanned code does not show (a module input) was read as
// reached by nothing. It is now read as routed to an internet gateway
// behind an ACL that allows all, so what its security groups admit from
// the internet may be reachable, and said so; what they do not admit is
// not reported. An Elastic IP of an instance is its first interface's.
func TestAWSSubnetElsewhereFailsClosed(t *testing.T) {
	rep := run(t, "testdata/aws/subnet-elsewhere")
	for _, tc := range []struct{ addr, port string }{
		{"aws_instance.bastion", "tcp 22 (SSH)"},
		{"aws_network_interface.nat", "tcp 22 (SSH), 23 (Telnet)"},
	} {
		got := activeOn(rep, RuleExposedPort, tc.addr)
		if len(got) != 1 || got[0].Severity != High {
			t.Errorf("%s: %+v, want one high (not proven)", tc.addr, got)
			continue
		}
		msg := got[0].Message
		if !strings.Contains(msg, tc.port) || !strings.Contains(msg, "may be reachable") || !strings.Contains(msg, "subnet not in the scanned code") {
			t.Errorf("%s: %q, want %s said to rest on the unknown subnet", tc.addr, msg, tc.port)
		}
		if tc.addr == "aws_instance.bastion" && strings.Contains(msg, "3389") {
			t.Errorf("RDP admitted from 10.0.0.0/8 only, reported from the internet: %q", msg)
		}
		facing := activeOn(rep, RuleInternetFacing, tc.addr)
		if len(facing) != 1 || !strings.Contains(facing[0].Message, "may be reachable") || len(facing[0].Path) == 0 {
			t.Errorf("%s on %s: %+v, want one that says the path is assumed and shows it", RuleInternetFacing, tc.addr, facing)
		}
	}
}

// TestPolicyDocumentDataSource: a bucket or domain policy written with
// data.aws_iam_policy_document was not known statically, so no policy
// admitting everyone through one was reported. The document is rendered
// from its arguments, as the provider does, and judged as any policy.
func TestPolicyDocumentDataSource(t *testing.T) {
	rep := run(t, "testdata/aws/policy-document")
	site := activeOn(rep, RulePublicBucket, "aws_s3_bucket_policy.site")
	if len(site) != 1 || !strings.Contains(site[0].Message, `"PublicRead"`) {
		t.Errorf("%s on the bucket read by everyone: %+v, want one naming the statement", RulePublicBucket, site)
	}
	if got := activeOn(rep, RulePublicBucket, "aws_s3_bucket_policy.media"); len(got) > 0 {
		t.Errorf("%s on the bucket read through one distribution: %+v, want none", RulePublicBucket, got)
	}
	if got := activeOn(rep, RuleSearchOpenPols, "aws_opensearch_domain.logs"); len(got) != 1 {
		t.Errorf("%s on the domain open to every principal: %+v, want one", RuleSearchOpenPols, got)
	}
}

// TestSearchDomainPorts: a search domain's endpoint answers on 443, and on
// 80 unless it enforces HTTPS; it was said to be reached on 9200, a port
// only self-managed Elasticsearch listens on.
func TestSearchDomainPorts(t *testing.T) {
	got := activeOn(run(t, "testdata/aws/policy-document"), RuleExposedPort, "aws_opensearch_domain.logs")
	if len(got) != 1 || !strings.Contains(got[0].Message, "tcp 443 (search service port) is reachable") {
		t.Fatalf("%s: %+v, want tcp 443 alone", RuleExposedPort, got)
	}
}

// TestSGPortsNotKnownStatically: a security group rule whose ports are
// not known statically (a dynamic block over a variable without a value)
// was read as open on every port and reported as proven, critical, without
// a word of it. It is still read so, but the path rests on that reading:
// the findings are high and say what was assumed.
func TestSGPortsNotKnownStatically(t *testing.T) {
	rep := run(t, "testdata/aws/ports-unknown")
	const why = "ports not known statically: assumed to be every port"
	ssh := activeOn(rep, RuleExposedPort, "aws_instance.web")
	if len(ssh) != 1 || ssh[0].Severity != High || !strings.Contains(ssh[0].Message, "tcp 22 (SSH)") || !strings.Contains(ssh[0].Message, why) {
		t.Errorf("%s: %+v, want one high that says the ports were assumed", RuleExposedPort, ssh)
	}
	open := activeOn(rep, RuleWorldOpen, "aws_security_group.web")
	if len(open) != 1 || open[0].Severity != High || !strings.Contains(open[0].Message, why) {
		t.Errorf("%s: %+v, want one high that says the ports were assumed", RuleWorldOpen, open)
	}
	noted := false
	for _, f := range active(rep, RuleNotEvaluated) {
		noted = noted || f.Address == "aws_security_group.web" && strings.Contains(f.Message, why)
	}
	if !noted {
		t.Error("no note that the rule's ports were assumed")
	}
}

// TestDatabaseListensOnItsPort: a database answers on its engine's port
// alone. A group shared with the application, admitting SSH from a
// bastion, made the database "reachable on tcp 22" in --reach; with its
// engine or port known, only that port is reached.
func TestDatabaseListensOnItsPort(t *testing.T) {
	m := buildHCL(t, `
resource "aws_vpc" "main" {
  cidr_block = "10.70.0.0/16"
}
resource "aws_subnet" "a" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.70.1.0/24"
}
resource "aws_subnet" "b" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.70.2.0/24"
}
resource "aws_db_subnet_group" "db" {
  subnet_ids = [aws_subnet.a.id, aws_subnet.b.id]
}
resource "aws_security_group" "app" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = 0
    to_port     = 65535
    protocol    = "tcp"
    cidr_blocks = ["10.70.0.0/16"]
  }
}
resource "aws_db_instance" "known" {
  engine                 = "mysql"
  db_subnet_group_name   = aws_db_subnet_group.db.name
  vpc_security_group_ids = [aws_security_group.app.id]
}
resource "aws_db_instance" "unknown" {
  engine                 = var.engine
  db_subnet_group_name   = aws_db_subnet_group.db.name
  vpc_security_group_ids = [aws_security_group.app.id]
}
variable "engine" {}
resource "aws_redshift_subnet_group" "dw" {
  subnet_ids = [aws_subnet.a.id]
}
resource "aws_redshift_cluster" "dw" {
  cluster_identifier        = "dw"
  publicly_accessible       = false
  cluster_subnet_group_name = aws_redshift_subnet_group.dw.name
  vpc_security_group_ids    = [aws_security_group.app.id]
}
`)
	src := m.SubnetSource(m.subnets["aws_subnet.b"])
	for _, tc := range []struct {
		db   string
		port int
		want bool
	}{
		{"aws_db_instance.known", 3306, true},
		{"aws_db_instance.known", 22, false},
		// An engine not known statically may listen anywhere.
		{"aws_db_instance.unknown", 22, true},
		// A warehouse answers on its port alone.
		{"aws_redshift_cluster.dw", 5439, true},
		{"aws_redshift_cluster.dw", 22, false},
	} {
		if res := m.Reach(src, endpoint(t, m, tc.db), "tcp", tc.port); res.Reachable != tc.want {
			t.Errorf("%s tcp %d: reachable %v, want %v (%s)", tc.db, tc.port, res.Reachable, tc.want, pathLine(res.Path))
		}
	}
}

// TestECSServiceTasks: an ECS service on awsvpc networking runs tasks in
// its subnets with its groups, public with assign_public_ip. It was not
// in the model: its open group read as attached to nothing (medium) and
// unused, as did the group of a function in the VPC. Its port, 8080, is an
// application's: the exposure is high (AWS-NET-011), not critical.
func TestECSServiceTasks(t *testing.T) {
	rep := run(t, "testdata/aws/ecs-service")
	open := activeOn(rep, RuleWorldOpenOther, "aws_security_group.api")
	if len(open) != 1 || open[0].Severity != High || !strings.Contains(open[0].Message, "aws_ecs_service.api is reached from the internet on tcp 8080") {
		t.Errorf("%s: %+v, want one high through the service's tasks", RuleWorldOpenOther, open)
	}
	if got := activeOn(rep, RuleInternetFacing, "aws_ecs_service.api"); len(got) != 1 {
		t.Errorf("%s on the service: %+v, want one", RuleInternetFacing, got)
	}
	for _, g := range []string{"aws_security_group.api", "aws_security_group.worker"} {
		if got := activeOn(rep, RuleUnusedSG, g); len(got) > 0 {
			t.Errorf("%s reported unused: %+v", g, got)
		}
	}
}

// TestSGPrefixLists: a rule whose source is a managed prefix list admitted
// nothing. A list defined in the project admits its entries; one whose
// ranges are not in the scanned code (looked up, or named by an ID) is read
// as every address, and said so; one looked up by an AWS-managed name is
// that service's ranges.
func TestSGPrefixLists(t *testing.T) {
	var ssh, rdp []Finding
	for _, f := range activeOn(run(t, "testdata/aws/prefix-lists"), RuleExposedPort, "aws_instance.bastion") {
		if strings.Contains(f.Message, "tcp 22 (SSH)") {
			ssh = append(ssh, f)
		}
		if strings.Contains(f.Message, "3389 (RDP)") {
			rdp = append(rdp, f)
		}
	}
	if len(ssh) != 1 || ssh[0].Severity != Medium || !strings.Contains(ssh[0].Message, "198.51.100.0/24") {
		t.Errorf("SSH from the office's list: %+v, want one medium naming its range", ssh)
	}
	if len(rdp) != 1 || rdp[0].Severity != High || !strings.Contains(rdp[0].Message, "prefix list") {
		t.Errorf("RDP from a list outside the code: %+v, want one high that says the list was assumed", rdp)
	}
	// CloudFront's origin-facing list, looked up by name, was read as every
	// address: the origin's group open to the whole internet on 8080. It is
	// AWS's list of one service's servers: the origin may be reached
	// through it, the group is not world-open. A list found by a tag may
	// be any list, and still may be.
	rep := run(t, "testdata/aws/prefix-lists")
	got := activeOn(rep, RuleWorldOpenOther, "aws_security_group.origin")
	if len(got) != 1 || !strings.Contains(got[0].Message, "tcp 9000") || strings.Contains(got[0].Message, "8080") || strings.Contains(got[0].Message, "8081") {
		t.Errorf("%s on the origin's group: %+v, want one for 9000 alone", RuleWorldOpenOther, got)
	}
	wantNotes(t, rep, "ingress[0]: AWS-managed prefix list com.amazonaws.global.cloudfront.origin-facing: one AWS service's addresses, no wider than one network's: assumed to be anywhere",
		"ingress[1]: AWS-managed prefix list com.amazonaws.global.cloudfront.origin-facing: one AWS service's addresses, no wider than one network's: assumed to be anywhere")
	if got := activeOn(rep, RuleInternetFacing, "aws_instance.origin"); len(got) != 1 || !strings.Contains(got[0].Message, "may be reachable") {
		t.Errorf("%s on the origin: %+v, want one that says it may be reachable", RuleInternetFacing, got)
	}
}

// TestPrefixListEntryUnknownList: an aws_ec2_managed_prefix_list_entry
// whose list is not known statically was dropped, so a list it may add the
// whole internet to read as holding its own entries only. It now counts
// for every list of the project it may belong to, and says so.
func TestPrefixListEntryUnknownList(t *testing.T) {
	rep := run(t, "testdata/aws/prefix-list-entry-unknown")
	var ssh []Finding
	for _, f := range activeOn(rep, RuleExposedPort, "aws_instance.bastion") {
		if strings.Contains(f.Message, "tcp 22 (SSH)") {
			ssh = append(ssh, f)
		}
	}
	if len(ssh) != 1 || ssh[0].Severity != High || !strings.Contains(ssh[0].Message, "assumed to hold aws_ec2_managed_prefix_list_entry.anywhere") {
		t.Errorf("SSH from the office's list: %+v, want one high that says the entry was assumed in the list", ssh)
	}
	wantNotes(t, rep, "prefix list not known statically (prefix_list_id): the entry is assumed to be in any of aws_ec2_managed_prefix_list.office, aws_ec2_managed_prefix_list.vendors")
}

// TestSourceNotKnownStatically: a security group rule whose source is not
// known statically is read as admitting every address. An instance in a
// public subnet behind such a rule on a port not held sensitive got no
// AWS-NET-004, and one behind such a rule on SSH got one saying it is
// reachable, as if proven.
func TestSourceNotKnownStatically(t *testing.T) {
	rep := run(t, "testdata/aws/source-unknown")
	for _, a := range []string{"aws_instance.bastion", "aws_instance.app"} {
		got := activeOn(rep, RuleInternetFacing, a)
		if len(got) != 1 || !strings.Contains(got[0].Message, "may be reachable") || !strings.Contains(got[0].Message, "a source is not known statically") {
			t.Errorf("%s on %s: %+v, want one that says it may be reachable and why", RuleInternetFacing, a, got)
		}
	}
	// The groups themselves: each may admit the whole internet; on an
	// application's port, one step lower (AWS-NET-011).
	for _, tc := range []struct {
		rule, addr, ports string
		sev               Severity
	}{
		{RuleWorldOpen, "aws_security_group.ssh", "tcp 22 (SSH)", High},
		{RuleWorldOpenOther, "aws_security_group.app", "tcp 8080", Medium},
	} {
		got := activeOn(rep, tc.rule, tc.addr)
		if len(got) != 1 || got[0].Severity != tc.sev || !strings.Contains(got[0].Message, "may admit every internet address on "+tc.ports) ||
			!strings.Contains(got[0].Message, "a source is not known statically") {
			t.Errorf("%s on %s: %+v, want one %s that says it may admit the internet on %s and why", tc.rule, tc.addr, got, tc.sev, tc.ports)
		}
	}
	// Behind such a group, but with no path from the internet, or only
	// named by another group's rule (attached to nothing): medium.
	for _, tc := range []struct{ rule, addr, ports, why string }{
		{RuleWorldOpenOther, "aws_security_group.worker", "tcp 9000", "no path from the internet to "},
		{RuleWorldOpen, "aws_security_group.monitor", "tcp 9200 (Elasticsearch)", "nothing in the scanned code attaches it"},
	} {
		got := activeOn(rep, tc.rule, tc.addr)
		if len(got) != 1 || got[0].Severity != Medium || !strings.Contains(got[0].Message, "may admit every internet address on "+tc.ports) ||
			!strings.Contains(got[0].Message, tc.why) {
			t.Errorf("%s on %s: %+v, want one medium that says %q", tc.rule, tc.addr, got, tc.why)
		}
	}
}

// TestAllTrafficPortList: an endpoint behind a rule admitting all traffic
// got a finding listing some thirty ports. The message names the first few
// and how many more, saying when every port checked is open; the JSON
// output's paths still list each port.
func TestAllTrafficPortList(t *testing.T) {
	got := activeOn(run(t, "testdata/aws/all-traffic"), RuleExposedPort, "aws_instance.web")
	if len(got) != 1 {
		t.Fatalf("%s: %+v, want one", RuleExposedPort, got)
	}
	msg := got[0].Message
	if !strings.Contains(msg, "tcp 22 (SSH), 23 (Telnet)") || !strings.Contains(msg, "other ports (every admin and data-store port checked)") ||
		strings.Contains(msg, "MongoDB") {
		t.Errorf("message %q: want the first ports, then how many more and that every port checked is open", msg)
	}
	listed := false
	for _, p := range got[0].Paths {
		listed = listed || strings.Contains(p.Ports, "27017 (MongoDB)")
	}
	if !listed {
		t.Errorf("paths %+v: want one for MongoDB's port", got[0].Paths)
	}
}

// TestWorldOpenNamesARealPort: a group admitting all traffic was said to
// let the internet reach its instance "on tcp 0", a port no connection
// can be opened to; the finding names the first port of the range that
// can be.
func TestWorldOpenNamesARealPort(t *testing.T) {
	got := activeOn(run(t, "testdata/aws/all-traffic"), RuleWorldOpenOther, "aws_security_group.open")
	if len(got) != 1 || !strings.Contains(got[0].Message, "aws_instance.web is reached from the internet on tcp 1") {
		t.Errorf("%s: %+v, want one saying the instance is reached on tcp 1", RuleWorldOpenOther, got)
	}
}

// TestSGElsewhere: a security group named by an ID that no group of the
// scanned code has was dropped, so the public Redshift cluster behind it
// read as having no group but the VPC's default, and was reached by
// nothing. Such a group is now assumed to admit every address, and said so.
// The instance behind a group looked up by a data source was read so
// already, but AWS-NET-004 called it reachable, as if proven.
func TestSGElsewhere(t *testing.T) {
	rep := run(t, "testdata/aws/sg-elsewhere")
	got := activeOn(rep, RuleExposedPort, "aws_redshift_cluster.warehouse")
	if len(got) != 1 || got[0].Severity != High || !strings.Contains(got[0].Message, "5439 (Redshift) may be reachable") ||
		!strings.Contains(got[0].Message, `security group "sg-0a1b2c3d4e5f67890" is not in the scanned code: assumed to admit every address`) {
		t.Errorf("%s on the cluster: %+v, want one high that says the group was assumed", RuleExposedPort, got)
	}
	jump := activeOn(rep, RuleInternetFacing, "aws_instance.jump")
	if len(jump) != 1 || !strings.Contains(jump[0].Message, "may be reachable") || !strings.Contains(jump[0].Message, "vpc_security_group_ids not known statically") {
		t.Errorf("%s on the instance: %+v, want one that says it may be reachable and why", RuleInternetFacing, jump)
	}
	if got := activeOn(rep, RuleExposedPort, "aws_instance.plain"); len(got) > 0 {
		t.Errorf("%s on the instance in the default group by name: %+v, want none", RuleExposedPort, got)
	}
}

// TestMQBrokers: Amazon MQ brokers were not in the model, so a broker with
// publicly_accessible = true was reached by nothing. A public RabbitMQ
// broker is reached from the internet on its ports whatever its groups; a
// public ActiveMQ broker through its subnet and groups; a private one not
// from the internet.
func TestMQBrokers(t *testing.T) {
	rep := run(t, "testdata/aws/mq-broker")
	for _, tc := range []struct{ addr, port string }{
		{"aws_mq_broker.rabbit", "5671"},
		{"aws_mq_broker.active", "61617"},
	} {
		got := activeOn(rep, RuleExposedPort, tc.addr)
		if len(got) != 1 || got[0].Severity != Critical || !strings.Contains(got[0].Message, tc.port) {
			t.Errorf("%s on %s: %+v, want one critical naming %s", RuleExposedPort, tc.addr, got, tc.port)
		}
	}
	if got := activeOn(rep, RuleExposedPort, "aws_mq_broker.maybe"); len(got) != 1 || got[0].Severity != High ||
		!strings.Contains(got[0].Message, "may be reachable") || !strings.Contains(got[0].Message, "publicly_accessible not known statically") {
		t.Errorf("%s on the broker that may be public: %+v, want one high that says why", RuleExposedPort, got)
	}
	if got := activeOn(rep, RuleExposedPort, "aws_mq_broker.internal"); len(got) > 0 {
		t.Errorf("%s on the private broker: %+v, want none", RuleExposedPort, got)
	}
	if got := activeOn(rep, RuleUnusedSG, "aws_security_group.broker"); len(got) > 0 {
		t.Errorf("the brokers' group reported unused: %+v", got)
	}
}

// TestBeanstalkEnvironments: Elastic Beanstalk environments were not in the
// model, so public instances behind the group Beanstalk makes, which admits
// SSH from every address when a key pair is set, were reached by nothing.
// Their instances are now an endpoint behind that group, read from the
// environment's settings.
func TestBeanstalkEnvironments(t *testing.T) {
	rep := run(t, "testdata/aws/beanstalk")
	web := activeOn(rep, RuleExposedPort, "aws_elastic_beanstalk_environment.web")
	if len(web) != 1 || web[0].Severity != Critical || !strings.Contains(web[0].Message, "tcp 22 (SSH) is reachable from the internet (every IPv4 internet address)") {
		t.Errorf("%s on the environment with a key pair: %+v, want SSH critical", RuleExposedPort, web)
	}
	office := activeOn(rep, RuleExposedPort, "aws_elastic_beanstalk_environment.office")
	if len(office) != 1 || office[0].Severity != Medium || !strings.Contains(office[0].Message, "198.51.100.0/24") {
		t.Errorf("%s on the environment with SSHSourceRestriction: %+v, want one medium naming the range", RuleExposedPort, office)
	}
	// Their settings give every instance a public address, as a launch
	// template's associate_public_ip_address does: that went unreported.
	for _, a := range []string{"aws_elastic_beanstalk_environment.web", "aws_elastic_beanstalk_environment.office"} {
		if got := activeOn(rep, RulePublicIP, a); len(got) != 1 || !strings.Contains(got[0].Message, "AssociatePublicIpAddress = true") {
			t.Errorf("%s on %s: %+v, want one naming the setting", RulePublicIP, a, got)
		}
	}
}

// TestNLBTargets: a network load balancer without security groups was
// read as reached on every listener port, though it keeps the client's
// address and its targets' groups decide. A listener whose targets all
// admit no internet address on their port is no longer an exposure, and
// the path says why; one whose target admits the world still is.
func TestNLBTargets(t *testing.T) {
	rep := run(t, "testdata/aws/nlb-targets")
	got := activeOn(rep, RuleExposedPort, "aws_lb.nlb")
	if len(got) != 1 || !strings.Contains(got[0].Message, "tcp 3389 (RDP) is reachable") || strings.Contains(got[0].Message, "SSH") {
		t.Errorf("%s on the load balancer: %+v, want RDP alone", RuleExposedPort, got)
	}
}

// TestNoSubnetNamed: an instance that names no subnet is launched in a
// default subnet of the default VPC; the finding said its subnet was "not
// in the scanned code", as for one given by a variable. It now says which
// subnet AWS picks and what that subnet is assumed to be.
func TestNoSubnetNamed(t *testing.T) {
	got := activeOn(run(t, "testdata/aws/no-subnet"), RuleExposedPort, "aws_instance.box")
	if len(got) != 1 || got[0].Severity != High || !strings.Contains(got[0].Message, "no subnet is named: a default subnet of the default VPC") {
		t.Errorf("%s: %+v, want one high that says the instance is in a default subnet", RuleExposedPort, got)
	}
}

// TestUnplacedPathNamesEachHop: the path to an instance that names no
// subnet and whose groups are not known statically read "internet → no
// subnet is named: … (the whole assumption) → aws_instance.app →
// aws_instance.app": the subnet hop printed its reason, the group hop the
// instance's own address. Each hop now has a name of its own, the
// instance's subnet and groups, the reasons staying in the hop's detail.
func TestUnplacedPathNamesEachHop(t *testing.T) {
	got := activeOn(run(t, "testdata/aws/unplaced-groups-unknown"), RuleExposedPort, "aws_instance.app")
	if len(got) != 1 {
		t.Fatalf("%s: %+v, want one finding", RuleExposedPort, got)
	}
	want := "internet → aws_instance.app:subnet → aws_instance.app:security-groups → aws_instance.app"
	if p := pathLine(got[0].Path); p != want {
		t.Errorf("path %q, want %q", p, want)
	}
	for _, h := range got[0].Path[1:3] {
		if h.Detail == "" || strings.Contains(h.Detail, h.Addr) {
			t.Errorf("hop %+v: want the reason in its detail", h)
		}
	}
}

// TestReachFromEveryMemberSubnet: --reach took a resource spread over
// several subnets (an autoscaling group, a load balancer) as a source
// from its first subnet alone. Where only another of its subnets gets
// through (here the store's network ACL admits the second), the
// resource was missing from the list, though its instances there reach.
// It is now a source from each of its subnets.
func TestReachFromEveryMemberSubnet(t *testing.T) {
	acc, err := Reachability(context.Background(), Config{Paths: []string{"testdata/aws/member-subnets"}}, "aws_elasticache_cluster.store")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range acc {
		got = append(got, fmt.Sprintf("%s %s %d %s", a.Source, a.Proto, a.Port, a.Range))
	}
	want := []string{"aws_autoscaling_group.workers (in aws_subnet.west) tcp 6379 10.40.20.0/24"}
	if !slices.Equal(got, want) {
		t.Errorf("sources %q, want %q", got, want)
	}
}

// TestRangeListNested: Terraform 0.11 wrote a list from a function as
// cidr_blocks = ["${split(",", var.ranges)}"]; Terraform now reads it as a
// list holding a list, which the provider rejects (element 0: string
// required), so the plan fails. It was noted as a value not evaluated; it
// is reported as rejected, and the rule still read as admitting every
// address, so nothing is hidden.
func TestRangeListNested(t *testing.T) {
	rep := checkSource(t, `
variable "ranges" {
  default = "192.0.2.0/24,198.51.100.0/24"
}
resource "aws_security_group" "relay" {
  ingress {
    protocol    = "tcp"
    from_port   = 5432
    to_port     = 5432
    cidr_blocks = ["${split(",", var.ranges)}"]
  }
}
`)
	got := activeOn(rep, RuleRejected, "aws_security_group.relay")
	if len(got) != 1 || !strings.Contains(got[0].Message, "cidr_blocks holds a list, where the provider takes address ranges") {
		t.Errorf("%s: %+v, want one saying the list of lists is rejected", RuleRejected, got)
	}
	if open := activeOn(rep, RuleWorldOpen, "aws_security_group.relay"); len(open) != 1 {
		t.Errorf("%s: %+v, want the rule still read as admitting every address", RuleWorldOpen, open)
	}
}

// TestLightsail: Lightsail instances were not in the model. One without
// aws_lightsail_instance_public_ports has Lightsail's default firewall, SSH
// and HTTP from everyone; one with it admits what it lists.
func TestLightsail(t *testing.T) {
	rep := run(t, "testdata/aws/lightsail")
	blog := activeOn(rep, RuleExposedPort, "aws_lightsail_instance.blog")
	if len(blog) != 1 || blog[0].Severity != Critical || !strings.Contains(blog[0].Message, "tcp 22 (SSH) is reachable from the internet (every IPv4 internet address)") {
		t.Errorf("%s on the instance with the default firewall: %+v, want SSH critical", RuleExposedPort, blog)
	}
	shop := activeOn(rep, RuleExposedPort, "aws_lightsail_instance.shop")
	if len(shop) != 1 || shop[0].Severity != Medium || !strings.Contains(shop[0].Message, "tcp 22 (SSH) is reachable from the internet (198.51.100.0/24)") {
		t.Errorf("%s on the instance with its own ports: %+v, want SSH from the office range alone", RuleExposedPort, shop)
	}
}

// TestPublicAddressNotKnownStatically: an instance whose
// associate_public_ip_address, or a database whose publicly_accessible, is
// not known statically was read as private, so the world-open SSH and
// PostgreSQL behind them were reached by nothing. They are now read as
// public, the findings high and saying so.
func TestPublicAddressNotKnownStatically(t *testing.T) {
	rep := run(t, "testdata/aws/public-unknown")
	for _, tc := range []struct{ addr, port, why string }{
		{"aws_instance.bastion", "tcp 22 (SSH)", "associate_public_ip_address not known statically: assumed true"},
		{"aws_db_instance.pg", "tcp 5432 (PostgreSQL)", "publicly_accessible not known statically: assumed true"},
	} {
		got := activeOn(rep, RuleExposedPort, tc.addr)
		if len(got) != 1 || got[0].Severity != High || !strings.Contains(got[0].Message, tc.port) || !strings.Contains(got[0].Message, tc.why) {
			t.Errorf("%s: %+v, want one high on %s saying %q", tc.addr, got, tc.port, tc.why)
		}
	}
}

// TestDefaultSecurityGroupOfTheVPC: an instance that names no security
// group has its VPC's default group. Where the project manages that group
// (aws_default_security_group) and opens SSH in it, the instance was read
// as behind AWS's untouched default, which admits only its own members, so
// the exposure was missed and the open rule read as reaching nothing.
func TestDefaultSecurityGroupOfTheVPC(t *testing.T) {
	rep := run(t, "testdata/aws/default-sg")
	ssh := activeOn(rep, RuleExposedPort, "aws_instance.web")
	if len(ssh) != 1 || ssh[0].Severity != Critical || !strings.Contains(ssh[0].Message, "tcp 22 (SSH)") {
		t.Errorf("%s: %+v, want SSH critical through the default group", RuleExposedPort, ssh)
	}
	open := activeOn(rep, RuleWorldOpen, "aws_default_security_group.default")
	if len(open) != 1 || open[0].Severity != Critical {
		t.Errorf("%s: %+v, want one critical (the instance is reached)", RuleWorldOpen, open)
	}
}

// TestIPv6Addresses: an instance with a global IPv6 address and no public
// IPv4 one was read as having no public address, so SSH open to ::/0 in a
// subnet routed to the internet gateway was reached by nothing. It is now
// reached from the IPv6 internet; behind an egress-only gateway it is not.
func TestIPv6Addresses(t *testing.T) {
	rep := run(t, "testdata/aws/ipv6")
	got := activeOn(rep, RuleExposedPort, "aws_instance.public")
	if len(got) != 1 || got[0].Severity != Critical || !strings.Contains(got[0].Message, "every IPv6 internet address") {
		t.Errorf("%s on the server routed to the internet gateway: %+v, want one critical from the IPv6 internet", RuleExposedPort, got)
	}
	if got := activeOn(rep, RuleExposedPort, "aws_instance.private"); len(got) > 0 {
		t.Errorf("%s behind the egress-only gateway: %+v, want none", RuleExposedPort, got)
	}
	// A public IPv4 address alone is reached from the IPv4 internet alone.
	v4 := activeOn(rep, RuleExposedPort, "aws_instance.v4")
	if len(v4) != 1 || !strings.Contains(v4[0].Message, "(every IPv4 internet address)") {
		t.Errorf("%s on the IPv4-only server: %+v, want one from the IPv4 internet alone", RuleExposedPort, v4)
	}
}

// TestDefaultVPCAdopted: the default VPC and its subnets, adopted with
// aws_default_vpc and aws_default_subnet, were not in the model, so an
// instance in a default subnet had no public address and no path. They
// are now what AWS makes them: routed to an internet gateway, mapping
// public addresses unless the project says otherwise.
func TestDefaultVPCAdopted(t *testing.T) {
	rep := run(t, "testdata/aws/default-vpc")
	a := activeOn(rep, RuleExposedPort, "aws_instance.a")
	if len(a) != 1 || a[0].Severity != Critical || !strings.Contains(a[0].Message, "tcp 22 (SSH)") {
		t.Errorf("%s on the instance in a default subnet: %+v, want SSH critical", RuleExposedPort, a)
	}
	if got := activeOn(rep, RuleExposedPort, "aws_instance.b"); len(got) > 0 {
		t.Errorf("%s on the instance in the default subnet that maps no public address: %+v, want none", RuleExposedPort, got)
	}
	// aws_default_security_group without vpc_id is the default VPC's.
	rdp := activeOn(rep, RuleExposedPort, "aws_instance.windows")
	if len(rdp) != 1 || !strings.Contains(rdp[0].Message, "tcp 3389 (RDP)") {
		t.Errorf("%s on the instance behind the default group: %+v, want RDP", RuleExposedPort, rdp)
	}
	// aws_default_subnet.a does not set map_public_ip_on_launch: it maps
	// public addresses as AWS made it, which the findings say rather than
	// quote a setting the code does not hold.
	const why = "launched in aws_default_subnet.a, a default subnet, which maps a public address to every instance unless map_public_ip_on_launch = false"
	if got := activeOn(rep, RulePublicIP, "aws_instance.a"); len(got) != 1 || !strings.Contains(got[0].Message, why) {
		t.Errorf("%s on the instance in a default subnet: %+v, want one saying %q", RulePublicIP, got, why)
	}
	if got := activeOn(rep, RulePublicIP, "aws_default_subnet.a"); len(got) != 1 || !strings.Contains(got[0].Message, "a default subnet, which maps a public address to every instance unless map_public_ip_on_launch = false") {
		t.Errorf("%s on the default subnet: %+v, want one saying it maps public addresses as AWS made it", RulePublicIP, got)
	}
	if got := activeOn(rep, RulePublicIP, "aws_default_subnet.b"); len(got) > 0 {
		t.Errorf("%s on the default subnet that maps none: %+v, want none", RulePublicIP, got)
	}
}

// TestVPCElsewhereFailsClosed: a subnet of a VPC the scanned code does not
// hold is governed by that VPC's main route table, which was read as
// routing nowhere: the public bastion in it was reached by nothing. That
// table is now assumed to route to an internet gateway, and said so.
func TestVPCElsewhereFailsClosed(t *testing.T) {
	got := activeOn(run(t, "testdata/aws/vpc-elsewhere"), RuleExposedPort, "aws_instance.bastion")
	if len(got) != 1 || got[0].Severity != High || !strings.Contains(got[0].Message, "its VPC is not in the scanned code") {
		t.Errorf("%s: %+v, want one high that says the VPC's main table was assumed", RuleExposedPort, got)
	}
}

// TestListElementUnknown: a list with an element not known statically was
// read as its known elements alone. An EKS endpoint admitting an office's
// range and one from a variable without a value read as admitting the
// office alone; a public database behind a group admitting only its VPC
// and one from such a variable, and an interface to which such a group is
// attached, read as reached from nowhere. Each element may be anything:
// the endpoint may be reachable from every address, and says so.
func TestListElementUnknown(t *testing.T) {
	rep := run(t, "testdata/aws/list-element-unknown")
	for _, tc := range []struct{ addr, why string }{
		{"aws_eks_cluster.api", "public_access_cidrs has an element not known statically"},
		{"aws_db_instance.orders", "vpc_security_group_ids not known statically"},
		{"aws_network_interface.app", "aws_network_interface_sg_attachment.extra: security_group_id not known statically"},
	} {
		got := activeOn(rep, RuleExposedPort, tc.addr)
		if len(got) != 1 || got[0].Severity != High || !strings.Contains(got[0].Message, "may be reachable from the internet") ||
			!strings.Contains(got[0].Message, tc.why) {
			t.Errorf("%s on %s: %+v, want one high that says it may be reachable because %s", RuleExposedPort, tc.addr, got, tc.why)
		}
	}
	// The known ranges already admit every IPv4 address: that is proven
	// (high, not critical: the Kubernetes API authenticates every request).
	got := activeOn(rep, RuleExposedPort, "aws_eks_cluster.open")
	if len(got) != 1 || got[0].Severity != High || !strings.Contains(got[0].Message, "is reachable from the internet (every IPv4 internet address); high, not critical") {
		t.Errorf("%s on aws_eks_cluster.open: %+v, want one high, proven from every IPv4 address", RuleExposedPort, got)
	}
	wantNotes(t, rep, "public_access_cidrs has an element not known statically: assumed to admit every address")
}

// TestPortUnknown: a database whose port is not known statically read as
// listening on its engine's port alone, and a classic load balancer with a
// listener on such a port as listening on port 0: a group admitting other
// ports from everywhere read as reaching nothing. Either may listen on
// any port.
func TestPortUnknown(t *testing.T) {
	rep := run(t, "testdata/aws/list-element-unknown")
	for _, a := range []string{"aws_db_instance.reports", "aws_elb.web"} {
		got := activeOn(rep, RuleExposedPort, a)
		if len(got) != 1 || !strings.Contains(got[0].Message, "tcp 22 (SSH), 3306 (MySQL) are reachable") {
			t.Errorf("%s on %s: %+v, want SSH and MySQL reachable", RuleExposedPort, a, got)
		}
	}
	for _, f := range activeOn(rep, RulePlainListener, "aws_elb.web") {
		if strings.Contains(f.Message, "port 0") {
			t.Errorf("%s: %q names port 0 for a port not known statically", RulePlainListener, f.Message)
		}
	}
}

// TestSubnetListUnknown: a subnet list with an element not known
// statically was read as its known subnets alone: a public database in a
// subnet group of a private subnet and one from a variable without a value
// read as reached from nowhere. That one may be any subnet, routed to the
// internet too. A list wholly unknown whose expression names the subnets
// it is taken from is any of those: reachable through a public one, not
// through private ones alone.
func TestSubnetListUnknown(t *testing.T) {
	rep := run(t, "testdata/aws/list-element-unknown")
	for _, tc := range []struct{ addr, why string }{
		{"aws_db_instance.ledger", "subnet_ids has a subnet not known statically: assumed to be any subnet"},
		{"aws_db_instance.archive", "subnet_ids has a subnet not known statically: assumed to be any of aws_subnet.private, aws_subnet.public"},
	} {
		got := activeOn(rep, RuleExposedPort, tc.addr)
		if len(got) != 1 || !strings.Contains(got[0].Message, "tcp 3306 (MySQL) may be reachable") || !strings.Contains(got[0].Message, tc.why) {
			t.Errorf("%s on %s: %+v, want MySQL that may be reachable because %s", RuleExposedPort, tc.addr, got, tc.why)
		}
		if got := activeOn(rep, RuleDataTierPublic, tc.addr); len(got) != 1 || !strings.Contains(got[0].Message, tc.why) {
			t.Errorf("%s on %s: %+v, want one that says %s", RuleDataTierPublic, tc.addr, got, tc.why)
		}
	}
	if got := activeOn(rep, RuleExposedPort, "aws_db_instance.audit"); len(got) > 0 {
		t.Errorf("%s on aws_db_instance.audit, in private subnets alone: %+v, want none", RuleExposedPort, got)
	}
	if got := activeOn(rep, RuleDataTierPublic, "aws_db_instance.audit"); len(got) > 0 {
		t.Errorf("%s on aws_db_instance.audit, in private subnets alone: %+v, want none", RuleDataTierPublic, got)
	}
}

// TestRulesUnknown: a security group whose ingress rules are set as an
// attribute from a variable without a value, or a list holding such an
// element, read as admitting nothing. Those rules may admit anything: the
// groups may admit the world, and instances behind them may be reachable.
func TestRulesUnknown(t *testing.T) {
	rep := run(t, "testdata/aws/list-element-unknown")
	const why = "ingress rules not known statically: assumed to admit every address on every port"
	for _, a := range []string{"aws_instance.rules", "aws_instance.mixed"} {
		got := activeOn(rep, RuleExposedPort, a)
		if len(got) != 1 || !strings.Contains(got[0].Message, "may be reachable from the internet") || !strings.Contains(got[0].Message, why) {
			t.Errorf("%s on %s: %+v, want one that says it may be reachable and why", RuleExposedPort, a, got)
		}
	}
	for _, g := range []string{"aws_security_group.rules", "aws_security_group.mixed"} {
		if got := activeOn(rep, RuleWorldOpen, g); len(got) != 1 || !strings.Contains(got[0].Message, "may admit every internet address") {
			t.Errorf("%s on %s: %+v, want one that says it may admit the internet", RuleWorldOpen, g, got)
		}
	}
	wantNotes(t, rep, why)
}

// TestRoutesUnknown: a route table whose routes are an attribute set from
// a variable without a value read as having none, so an instance with a
// public address in its subnet read as unreachable. One of them may be a
// default route to the internet gateway.
func TestRoutesUnknown(t *testing.T) {
	rep := run(t, "testdata/aws/list-element-unknown")
	got := activeOn(rep, RuleExposedPort, "aws_instance.routed")
	if len(got) != 1 || !strings.Contains(got[0].Message, "may be reachable from the internet") ||
		!strings.Contains(got[0].Message, "aws_route_table.routed route (not known statically)") {
		t.Errorf("%s on aws_instance.routed: %+v, want one that says it may be reachable through the routes not known statically", RuleExposedPort, got)
	}
}

// TestBlockListsUnknown: block lists set as an attribute from a variable
// without a value read as empty. A Lightsail instance's public ports so
// read as a firewall admitting nothing, a classic load balancer's
// listeners as none, a default security group's rules as none. Each may
// hold anything: the instance may be reachable on any port, the balancer
// may listen on any, the default group may have rules.
func TestBlockListsUnknown(t *testing.T) {
	rep := checkSource(t, `variable "ports" {}
variable "listeners" {}
variable "rules" {}
resource "aws_lightsail_instance" "shop" {
  name              = "shop"
  availability_zone = "eu-west-1a"
  blueprint_id      = "ubuntu_22_04"
  bundle_id         = "nano_3_0"
}
resource "aws_lightsail_instance_public_ports" "shop" {
  instance_name = aws_lightsail_instance.shop.name
  port_info     = var.ports
}
resource "aws_default_security_group" "default" {
  vpc_id  = "vpc-1"
  ingress = var.rules
}
`)
	got := activeOn(rep, RuleExposedPort, "aws_lightsail_instance.shop")
	if len(got) != 1 || !strings.Contains(got[0].Message, "may be reachable") || !strings.Contains(got[0].Message, "port_info not known statically") {
		t.Errorf("%s on the Lightsail instance: %+v, want one that says it may be reachable because port_info is not known", RuleExposedPort, got)
	}
	if got := activeOn(rep, RuleDefaultSGOpen, "aws_default_security_group.default"); len(got) != 1 || !strings.Contains(got[0].Message, "not known statically") {
		t.Errorf("%s: %+v, want one saying its rules are not known statically", RuleDefaultSGOpen, got)
	}
}

// TestEKSPublicAccessUnknown: an EKS endpoint whose endpoint_public_access
// is not known statically read as public as if proven ("is reachable"). It
// may be public: the finding says "may" and why.
func TestEKSPublicAccessUnknown(t *testing.T) {
	got := activeOn(run(t, "testdata/aws/list-element-unknown"), RuleExposedPort, "aws_eks_cluster.flag")
	if len(got) != 1 || !strings.Contains(got[0].Message, "may be reachable") || !strings.Contains(got[0].Message, "endpoint_public_access not known statically: assumed true") {
		t.Errorf("%s on aws_eks_cluster.flag: %+v, want one that says it may be reachable and why", RuleExposedPort, got)
	}
}

// TestENIAttachmentUnknown: an aws_network_interface_sg_attachment whose
// interface is not known statically was dropped, so the interface it may
// attach a group to read as behind its own group alone. It may attach to
// any interface of the project: each is read as admitting everything.
func TestENIAttachmentUnknown(t *testing.T) {
	rep := checkSource(t, `variable "eni_id" {}
resource "aws_vpc" "main" {
  cidr_block = "10.94.0.0/16"
}
resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
}
resource "aws_subnet" "public" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.94.1.0/24"
}
resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.main.id
  }
}
resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}
resource "aws_security_group" "internal" {
  vpc_id = aws_vpc.main.id
  ingress {
    protocol    = "tcp"
    from_port   = 0
    to_port     = 65535
    cidr_blocks = ["10.94.0.0/16"]
  }
}
resource "aws_security_group" "ssh" {
  vpc_id = aws_vpc.main.id
  ingress {
    protocol    = "tcp"
    from_port   = 22
    to_port     = 22
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_network_interface" "app" {
  subnet_id       = aws_subnet.public.id
  security_groups = [aws_security_group.internal.id]
}
resource "aws_eip" "app" {
  network_interface = aws_network_interface.app.id
}
resource "aws_network_interface_sg_attachment" "ssh" {
  network_interface_id = var.eni_id
  security_group_id    = aws_security_group.ssh.id
}
`)
	got := activeOn(rep, RuleExposedPort, "aws_network_interface.app")
	if len(got) != 1 || !strings.Contains(got[0].Message, "may be reachable") ||
		!strings.Contains(got[0].Message, "aws_network_interface_sg_attachment.ssh attaches a security group to a network interface not known statically") {
		t.Errorf("%s on aws_network_interface.app: %+v, want one that says it may be reachable and why", RuleExposedPort, got)
	}
}

// TestPublicAddressFromSubnetNotKnown: an instance, auto scaling group or
// EKS node group whose subnet is not known statically (a variable without
// a value, a subnet made elsewhere) and that says nothing of public
// addresses was read as taking none, so SSH open to the world on it was reached by
// nothing. The subnet may be a default one or map public addresses: the
// findings are high and say so; one that says
// associate_public_ip_address = false stays private, and AWS-EC2-001,
// which reports what is written, does not fire on the assumption.
func TestPublicAddressFromSubnetNotKnown(t *testing.T) {
	rep := run(t, "testdata/aws/public-subnet-unknown")
	for _, addr := range []string{"aws_instance.bastion", "aws_instance.elsewhere", "aws_autoscaling_group.web", "aws_eks_node_group.nodes"} {
		got := activeOn(rep, RuleExposedPort, addr)
		if len(got) != 1 || got[0].Severity != High || !strings.Contains(got[0].Message, "tcp 22 (SSH)") || !strings.Contains(got[0].Message, "map_public_ip_on_launch") {
			t.Errorf("%s: %+v, want one high on SSH saying the subnet may map public addresses", addr, got)
		}
		if got := activeOn(rep, RulePublicIP, addr); len(got) != 0 {
			t.Errorf("%s: %s %+v, want none (the public address is assumed, not written)", addr, RulePublicIP, got)
		}
	}
	if got := activeOn(rep, RuleExposedPort, "aws_instance.quiet"); len(got) != 0 {
		t.Errorf("aws_instance.quiet: %+v, want none (associate_public_ip_address = false)", got)
	}
}

// TestNACLSubnetUnknown: a network ACL whose subnet_ids holds an element
// not known statically left every subnet under its own ACL. That element
// may be any subnet of the ACL's VPC: a public subnet whose own ACL admits
// HTTPS alone read as unreached on SSH, though an ACL admitting everything
// may be its. It is now filtered by whichever admits more, and says so.
// An element whose expression names the subnets it is taken from is one
// of those alone: a public subnet it does not name keeps its own ACL. An
// ACL that may govern a public subnet is held to AWS-NET-003 as its own is.
func TestNACLSubnetUnknown(t *testing.T) {
	rep := run(t, "testdata/aws/nacl-subnet-unknown")
	const why = "aws_network_acl.open: subnet_ids has a subnet not known statically"
	var ssh []Finding
	for _, f := range activeOn(rep, RuleExposedPort, "aws_instance.bastion") {
		if strings.Contains(f.Message, "tcp 22 (SSH)") {
			ssh = append(ssh, f)
		}
	}
	if len(ssh) != 1 || !strings.Contains(ssh[0].Message, "may be reachable from the internet") || !strings.Contains(ssh[0].Message, why) {
		t.Errorf("%s on aws_instance.bastion: %+v, want SSH that may be reachable because %s", RuleExposedPort, ssh, why)
	}
	wantNotes(t, rep, "subnet_ids has a subnet not known statically: assumed to be any subnet of aws_vpc.main",
		"subnet_ids has a subnet not known statically: assumed to be any of aws_subnet.inner_a, aws_subnet.inner_b")
	if got := activeOn(rep, RuleExposedPort, "aws_instance.edge"); len(got) > 0 {
		t.Errorf("%s on aws_instance.edge, whose subnet no unknown element may name: %+v, want none", RuleExposedPort, got)
	}
	// The ACL admitting everything was not flagged open to the world: only
	// a public subnet's own ACL was looked at. It may be the public subnet's.
	got := activeOn(rep, RuleWorldOpen, "aws_network_acl.open")
	if len(got) != 1 || !strings.Contains(got[0].Message, "may govern subnet aws_subnet.public of public instance aws_instance.bastion") {
		t.Errorf("%s on aws_network_acl.open: %+v, want one that says it may govern the bastion's subnet", RuleWorldOpen, got)
	}
	if got := activeOn(rep, RuleWorldOpen, "aws_network_acl.strict"); len(got) != 0 {
		t.Errorf("%s on aws_network_acl.strict, which admits HTTPS alone: %+v, want none", RuleWorldOpen, got)
	}
}

// TestNACLHighServicePort: a public subnet's network ACL was held to
// AWS-NET-003 on ports below 1024 alone, so a rule of its own admitting
// the world to PostgreSQL went unsaid. The ephemeral range return traffic
// needs (1024 up to 65535) is still not reported, nor a port admitted
// from a known range only.
func TestNACLHighServicePort(t *testing.T) {
	got := activeOn(run(t, "testdata/aws/nacl-high-port"), RuleWorldOpen, "aws_network_acl.public")
	if len(got) != 1 || !strings.Contains(got[0].Message, "admits every internet address inbound on tcp 5432 (subnet aws_subnet.public of public instance aws_instance.web)") {
		t.Errorf("%s on aws_network_acl.public: %+v, want one naming PostgreSQL alone", RuleWorldOpen, got)
	}
}

// TestNACLAssociationUnknown: an aws_network_acl_association whose subnet
// is not known statically was dropped, so a subnet it may give an ACL that
// admits more than the subnet's own kept only its own: SSH to the bastion
// was read as turned away. A subnet it may name is filtered by whichever
// ACL admits more; a stricter ACL it may give narrows nothing.
func TestNACLAssociationUnknown(t *testing.T) {
	rep := run(t, "testdata/aws/nacl-association-unknown")
	const why = "aws_network_acl_association.open associates any subnet of the project with aws_network_acl.open, not known statically"
	var ssh []Finding
	for _, f := range activeOn(rep, RuleExposedPort, "aws_instance.bastion") {
		if strings.Contains(f.Message, "tcp 22 (SSH)") {
			ssh = append(ssh, f)
		}
	}
	if len(ssh) != 1 || !strings.Contains(ssh[0].Message, "may be reachable from the internet") || !strings.Contains(ssh[0].Message, why) {
		t.Errorf("%s on aws_instance.bastion: %+v, want SSH that may be reachable because %s", RuleExposedPort, ssh, why)
	}
	wantNotes(t, rep, why)
	if got := activeOn(rep, RuleExposedPort, "aws_instance.edge"); len(got) > 0 {
		t.Errorf("%s on aws_instance.edge, whose possible other ACL admits less: %+v, want none", RuleExposedPort, got)
	}
}

// TestTemplateInterfaceSubnet: an auto scaling group or instance that names
// no subnet, launched from a template whose network interface names one,
// was read as launched in a default subnet and, the template placing it,
// as taking no public address: SSH open to the world in the interface's
// group was reached by nothing. The interface's subnet places it, and its
// map_public_ip_on_launch gives the address.
func TestTemplateInterfaceSubnet(t *testing.T) {
	rep := run(t, "testdata/aws/template-subnet")
	for _, addr := range []string{"aws_autoscaling_group.web", "aws_instance.web"} {
		got := activeOn(rep, RuleExposedPort, addr)
		if len(got) != 1 || got[0].Severity != Critical || !strings.Contains(got[0].Message, "tcp 22 (SSH)") ||
			!strings.Contains(pathText(got[0].Path), "aws_subnet.public: subnet 10.0.1.0/24") {
			t.Errorf("%s: %+v, want one critical on SSH through aws_subnet.public", addr, got)
		}
		if got := activeOn(rep, RulePublicIP, addr); len(got) != 1 || !strings.Contains(got[0].Message, "aws_subnet.public") {
			t.Errorf("%s: %s %+v, want one saying aws_subnet.public maps public addresses", addr, RulePublicIP, got)
		}
	}
	got := activeOn(rep, RuleExposedPort, "aws_autoscaling_group.input")
	if len(got) != 1 || got[0].Severity != High || !strings.Contains(got[0].Message, "tcp 22 (SSH)") || !strings.Contains(got[0].Message, "map_public_ip_on_launch") {
		t.Errorf("aws_autoscaling_group.input: %+v, want one high on SSH saying the template's subnet may map public addresses", got)
	}
	if got := activeOn(rep, RulePublicIP, "aws_autoscaling_group.input"); len(got) != 0 {
		t.Errorf("aws_autoscaling_group.input: %s %+v, want none (the public address is assumed, not written)", RulePublicIP, got)
	}
	if got := activeOn(rep, RuleExposedPort, "aws_autoscaling_group.quiet"); len(got) != 0 {
		t.Errorf("aws_autoscaling_group.quiet: %+v, want none (associate_public_ip_address = \"false\")", got)
	}
}

// TestTemplateNotKnown: an instance or auto scaling group launched from a
// template not known statically (a variable without a value, a template
// made elsewhere) was read as taking no public address, and a group as
// having no security group but the default: SSH open to the world reached
// nothing. The template may say anything: the address follows the subnet,
// assumed and said so, and a group's instances' security groups are read
// as admitting everything. A subnet routed nowhere stays unreached.
func TestTemplateNotKnown(t *testing.T) {
	rep := run(t, "testdata/aws/template-unknown")
	for _, addr := range []string{"aws_instance.web", "aws_autoscaling_group.web", "aws_autoscaling_group.elsewhere"} {
		got := activeOn(rep, RuleExposedPort, addr)
		if len(got) != 1 || got[0].Severity != High || !strings.Contains(got[0].Message, "tcp 22 (SSH)") ||
			!strings.Contains(got[0].Message, "launch template not known statically") {
			t.Errorf("%s: %+v, want one high on SSH saying the launch template is not known statically", addr, got)
		}
		if got := activeOn(rep, RulePublicIP, addr); len(got) != 0 {
			t.Errorf("%s: %s %+v, want none (the public address is assumed, not written)", addr, RulePublicIP, got)
		}
	}
	if got := activeOn(rep, RuleExposedPort, "aws_autoscaling_group.private"); len(got) != 0 {
		t.Errorf("aws_autoscaling_group.private: %+v, want none (its subnet maps no public address and has no route out)", got)
	}
}

// TestSourceOfKnownLength: a rule admitting "my IP",
// "${chomp(data.http.myip.response_body)}/32", was read as admitting every
// address: its group was flagged open to the whole internet (AWS-NET-003
// and 011, high) and the instance behind it exposed at high. The range is
// one /32 somewhere: a path may still come through it, but from one
// address, so the exposure is medium and the group is not world-open. One
// whose range may be anything still is, and an ACL admitting only ranges
// of known size bounds what reaches the instance behind it. So does an EKS
// endpoint's allow-list.
func TestSourceOfKnownLength(t *testing.T) {
	rep := run(t, "testdata/aws/source-sized")
	for _, rule := range []string{RuleWorldOpen, RuleWorldOpenOther} {
		if got := activeOn(rep, rule, "aws_security_group.mine"); len(got) != 0 {
			t.Errorf("%s on the group admitting one /32: %+v, want none", rule, got)
		}
	}
	if got := activeOn(rep, RuleWorldOpen, "aws_security_group.any"); len(got) != 1 || got[0].Severity != High {
		t.Errorf("%s on the group admitting any range: %+v, want one high", RuleWorldOpen, got)
	}
	for _, a := range []string{"aws_instance.mine", "aws_instance.any"} {
		got := activeOn(rep, RuleExposedPort, a)
		if len(got) != 1 || got[0].Severity != Medium || !strings.Contains(got[0].Message, "tcp 22 (SSH)") || !strings.Contains(got[0].Message, "may be reachable") ||
			!strings.Contains(got[0].Message, "not known statically but for its length (a /") {
			t.Errorf("%s on %s: %+v, want one medium that says SSH may be reachable from a range of known length", RuleExposedPort, a, got)
		}
	}
	// --reach names whom it admits so.
	m := model(t, "testdata/aws/source-sized")
	if r := m.Reach(m.Internet(), endpoint(t, m, "aws_instance.mine"), "tcp", 22); !r.Reachable || m.describeFrom(r) != "a /32 range whose address is not known statically" {
		t.Errorf("SSH to the instance: reachable %v from %q, want from a /32 range", r.Reachable, m.describeFrom(r))
	}
	// A group not known statically beside it may admit anything: no bound.
	if got := activeOn(rep, RuleExposedPort, "aws_instance.mixed"); len(got) != 1 || got[0].Severity != High {
		t.Errorf("%s on the instance also behind a group not known statically: %+v, want one high", RuleExposedPort, got)
	}
	got := activeOn(rep, RuleExposedPort, "aws_eks_cluster.mine")
	if len(got) != 1 || got[0].Severity != Medium || !strings.Contains(got[0].Message, "public_access_cidrs has an element not known statically but for its length (a /32 range)") {
		t.Errorf("%s on the cluster admitting one /32: %+v, want one medium that says why", RuleExposedPort, got)
	}
	wantNotes(t, rep, "ingress[0]: a source is not known statically but for its length (a /32 range): assumed to be anywhere",
		"ingress[0]: range not known statically but for its length (a /24 range): assumed to be anywhere")
}

// TestSourceOfNetworkRange: a rule admitting a VPC's or a subnet's range
// (aws_vpc.build.cidr_block, data.aws_vpc.peer.cidr_block,
// aws_subnet.app[*].cidr_block) whose address is not known statically was
// read as admitting every address: its group was flagged open to the
// whole internet and the instance behind it exposed at high. AWS gives a
// VPC or subnet a /16 at most: the range is one of that size somewhere.
func TestSourceOfNetworkRange(t *testing.T) {
	rep := run(t, "testdata/aws/vpc-range")
	for _, g := range []string{"aws_security_group.builder", "aws_security_group.relay"} {
		for _, rule := range []string{RuleWorldOpen, RuleWorldOpenOther} {
			if got := activeOn(rep, rule, g); len(got) != 0 {
				t.Errorf("%s on %s, which admits network ranges: %+v, want none", rule, g, got)
			}
		}
	}
	for _, a := range []string{"aws_instance.builder", "aws_instance.relay"} {
		got := activeOn(rep, RuleExposedPort, a)
		if len(got) != 1 || got[0].Severity != Medium || !strings.Contains(got[0].Message, "tcp 22 (SSH)") ||
			!strings.Contains(got[0].Message, "not known statically but for its length (2 ranges (/16, /16))") {
			t.Errorf("%s on %s: %+v, want one medium that says SSH may be reachable from /16 ranges", RuleExposedPort, a, got)
		}
	}
}

// TestBeanstalkBalancer: the load balancer Beanstalk makes for an
// environment was not read, so instances without a public address were
// reached by nothing, though its listeners forward the internet to them.
// They are now published through it, on the instance port of each
// listener; an internal balancer publishes nothing to the internet.
func TestBeanstalkBalancer(t *testing.T) {
	m := model(t, "testdata/aws/beanstalk-lb")
	inet := m.Internet()
	for _, c := range []struct {
		addr  string
		port  int
		reach bool
	}{
		{"aws_elastic_beanstalk_environment.web", 8080, true},
		{"aws_elastic_beanstalk_environment.web", 80, false},
		{"aws_elastic_beanstalk_environment.web", 9000, true},
		{"aws_elastic_beanstalk_environment.api", 5000, true},
		{"aws_elastic_beanstalk_environment.api", 80, false},
		{"aws_elastic_beanstalk_environment.ssh", 22, true},
		{"aws_elastic_beanstalk_environment.ssh", 80, true},
		{"aws_elastic_beanstalk_environment.internal", 22, false},
	} {
		r := m.Reach(inet, endpoint(t, m, c.addr), "tcp", c.port)
		if r.Reachable != c.reach || c.reach && len(r.Assumed) > 0 {
			t.Errorf("%s tcp %d: reachable %v (assumed %v), want %v: %v", c.addr, c.port, r.Reachable, r.Assumed, c.reach, r.Path)
			continue
		}
		if c.reach && !strings.Contains(kinds(r.Path), "lb") {
			t.Errorf("%s tcp %d: path %v does not cross the balancer", c.addr, c.port, r.Path)
		}
	}
	rep := run(t, "testdata/aws/beanstalk-lb")
	ssh := activeOn(rep, RuleExposedPort, "aws_elastic_beanstalk_environment.ssh")
	if len(ssh) != 1 || ssh[0].Severity != Critical || !strings.Contains(ssh[0].Message, "tcp 22 (SSH)") {
		t.Errorf("%s on the environment whose balancer forwards SSH: %+v, want one critical", RuleExposedPort, ssh)
	}
	for _, a := range []string{"aws_elastic_beanstalk_environment.web", "aws_elastic_beanstalk_environment.internal"} {
		if got := activeOn(rep, RuleExposedPort, a); len(got) > 0 {
			t.Errorf("%s on %s: %+v, want none", RuleExposedPort, a, got)
		}
	}
}

// TestDataStoreInDefaultSubnetGroup: a database or warehouse that names
// no subnet group is in AWS's default group, the default VPC's default
// subnets. The finding said only that its subnets were not in the
// scanned code; it says where AWS puts it. A cluster's instance that
// names none takes its cluster's group. A data store with no public
// address was said to have no path because its subnets were not known;
// it has none because it has no public address.
func TestDataStoreInDefaultSubnetGroup(t *testing.T) {
	src := `
resource "aws_security_group" "db" {
  ingress {
    from_port   = 5432
    to_port     = 5432
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_db_instance" "open" {
  engine                 = "postgres"
  publicly_accessible    = true
  vpc_security_group_ids = [aws_security_group.db.id]
}
resource "aws_redshift_cluster" "dw" {
  cluster_identifier  = "dw"
  publicly_accessible = true
}
resource "aws_db_subnet_group" "named" {
  subnet_ids = var.subnets
}
variable "subnets" {}
resource "aws_rds_cluster" "grouped" {
  engine                 = "aurora-postgresql"
  db_subnet_group_name   = aws_db_subnet_group.named.name
  vpc_security_group_ids = [aws_security_group.db.id]
}
resource "aws_rds_cluster_instance" "grouped" {
  cluster_identifier  = aws_rds_cluster.grouped.id
  publicly_accessible = true
}
resource "aws_rds_cluster" "private" {
  engine                 = "aurora-postgresql"
  vpc_security_group_ids = [aws_security_group.db.id]
}
resource "aws_rds_cluster_instance" "private" {
  cluster_identifier = aws_rds_cluster.private.id
}
`
	rep := checkSource(t, src)
	const where = "no subnet group is named: AWS places it in default subnets of the default VPC"
	for _, a := range []string{"aws_db_instance.open", "aws_redshift_cluster.dw"} {
		got := activeOn(rep, RuleDataTierPublic, a)
		if len(got) != 1 || !strings.Contains(got[0].Message, where) {
			t.Errorf("%s on %s: %+v, want one that says it is in the default VPC's default subnets", RuleDataTierPublic, a, got)
		}
	}
	open := activeOn(rep, RuleExposedPort, "aws_db_instance.open")
	if len(open) != 1 || !strings.Contains(open[0].Message, "may be reachable") || !strings.Contains(open[0].Message, where) {
		t.Errorf("%s on aws_db_instance.open: %+v, want one not proven, through the default subnets", RuleExposedPort, open)
	}
	grouped := activeOn(rep, RuleDataTierPublic, "aws_rds_cluster_instance.grouped")
	if len(grouped) != 1 || strings.Contains(grouped[0].Message, where) {
		t.Errorf("%s on the instance of a cluster that names its group: %+v, want one that does not say it names none", RuleDataTierPublic, grouped)
	}
	m := buildHCL(t, src)
	r := m.Reach(m.Internet(), endpoint(t, m, "aws_rds_cluster_instance.private"), "tcp", 3306)
	if r.Reachable || len(r.Path) == 0 || r.Path[len(r.Path)-1].Detail != "has no public address" {
		t.Errorf("private cluster instance from the internet: reachable %v, path %s; want blocked, as it has no public address", r.Reachable, pathLine(r.Path))
	}
}

// TestEKSPrivateEndpoint: a cluster whose API is private answers on
// interfaces EKS puts in its subnets, behind the groups vpc_config names.
// It was no endpoint in the VPC, so --reach said nothing could reach it,
// not even the bastion its group admits.
func TestEKSPrivateEndpoint(t *testing.T) {
	m := buildHCL(t, `
resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
}
resource "aws_subnet" "public" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.1.0/24"
}
resource "aws_subnet" "private" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.11.0/24"
}
resource "aws_security_group" "bastion" {
  vpc_id = aws_vpc.main.id
}
resource "aws_security_group" "api" {
  vpc_id = aws_vpc.main.id
}
resource "aws_security_group_rule" "bastion_to_api" {
  type                     = "ingress"
  from_port                = 443
  to_port                  = 443
  protocol                 = "tcp"
  security_group_id        = aws_security_group.api.id
  source_security_group_id = aws_security_group.bastion.id
}
resource "aws_security_group_rule" "bastion_all" {
  type                     = "ingress"
  from_port                = 0
  to_port                  = 0
  protocol                 = "-1"
  security_group_id        = aws_security_group.api.id
  source_security_group_id = aws_security_group.bastion.id
}
resource "aws_eks_cluster" "private" {
  name     = "private"
  role_arn = "arn:aws:iam::123456789012:role/eks"
  vpc_config {
    subnet_ids              = [aws_subnet.private.id]
    endpoint_private_access = true
    endpoint_public_access  = false
    security_group_ids      = [aws_security_group.api.id]
  }
}
resource "aws_default_security_group" "default" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["10.0.0.0/16"]
  }
}
resource "aws_eks_cluster" "unnamed" {
  name     = "unnamed"
  role_arn = "arn:aws:iam::123456789012:role/eks"
  vpc_config {
    subnet_ids             = [aws_subnet.private.id]
    endpoint_public_access = false
  }
}
`)
	pub := m.subnets["aws_subnet.public"]
	for _, tc := range []struct {
		cluster string
		sgs     []string
		want    bool
	}{
		{"aws_eks_cluster.private", []string{"aws_security_group.bastion"}, true},
		{"aws_eks_cluster.private", nil, false},
		// No group named: EKS's own admits its members alone, not the
		// VPC's default group's.
		{"aws_eks_cluster.unnamed", []string{"aws_security_group.bastion"}, false},
	} {
		r := m.Reach(m.SubnetSource(pub, tc.sgs...), endpoint(t, m, tc.cluster), "tcp", 443)
		if r.Reachable != tc.want || tc.want && len(r.Assumed) > 0 {
			t.Errorf("%s from %v: reachable %v (assumed %v), want %v: %s", tc.cluster, tc.sgs, r.Reachable, r.Assumed, tc.want, pathLine(r.Path))
		}
	}
	// The API's interfaces answer on 443 alone, whatever the groups admit.
	if r := m.Reach(m.SubnetSource(pub, "aws_security_group.bastion"), endpoint(t, m, "aws_eks_cluster.private"), "tcp", 22); r.Reachable {
		t.Errorf("private cluster reached on SSH: %s", pathLine(r.Path))
	}
	if r := m.Reach(m.Internet(), endpoint(t, m, "aws_eks_cluster.private"), "tcp", 443); r.Reachable {
		t.Errorf("private cluster reached from the internet: %s", pathLine(r.Path))
	}
}

// TestGroupsAttachedByQualifiedAttributes: groups an EMR studio or cluster
// attaches (engine_security_group_id, emr_managed_master_security_group …)
// were reported as not used (AWS-NET-008); an attribute whose name ends in
// one that names groups, after a qualifier, attaches them too.
func TestGroupsAttachedByQualifiedAttributes(t *testing.T) {
	rep := run(t, "testdata/aws/group-attributes")
	for _, g := range []string{"engine", "workspace", "master", "core", "service"} {
		if got := findingOn(rep, RuleUnusedSG, "aws_security_group."+g); got != nil {
			t.Errorf("%s on aws_security_group.%s, which an EMR resource attaches: %s", RuleUnusedSG, g, got.Message)
		}
	}
	if findingOn(rep, RuleUnusedSG, "aws_security_group.spare") == nil {
		t.Errorf("no %s on aws_security_group.spare, which nothing attaches", RuleUnusedSG)
	}
}

// TestRulesOfACountedGroup: rule resources naming a group made under a
// count not known statically (aws_security_group.admin[0].id) were kept
// apart from it, as of a group outside the code, so the instance that
// attaches the group read as closed: its SSH open to the internet went
// unreported. Such a rule is of each group its expression can only name,
// and a resource attaching such a group by an expression not known
// statically uses it.
func TestRulesOfACountedGroup(t *testing.T) {
	rep := run(t, "testdata/aws/counted-group-rules")
	got := activeOn(rep, RuleExposedPort, "aws_instance.jump")
	if len(got) != 1 || got[0].Severity != Critical || !strings.Contains(got[0].Message, "tcp 22 (SSH)") {
		t.Fatalf("%s on the instance: %+v, want one critical for tcp 22", RuleExposedPort, got)
	}
	for _, g := range []string{"aws_security_group.admin", "aws_security_group.batch"} {
		if f := findingOn(rep, RuleUnusedSG, g); f != nil {
			t.Errorf("%s on %s, which is attached: %s", RuleUnusedSG, g, f.Message)
		}
	}
}

// TestDefaultGroupByVPCAttribute: an instance attaching its VPC's default
// group by aws_vpc.x.default_security_group_id was read as behind a group
// outside the code, admitting every address (its SSH and the rest "may be
// reachable"), though the project adopts that group with
// aws_default_security_group. The attribute names the adopted group, else
// the one AWS makes, which admits its own members alone.
func TestDefaultGroupByVPCAttribute(t *testing.T) {
	const dir = "testdata/aws/default-sg-by-id"
	if got := activeOn(run(t, dir), RuleExposedPort, "aws_instance.web"); len(got) != 0 {
		t.Errorf("%s on the instance: %+v, want none (its group admits 443 alone from the internet)", RuleExposedPort, got)
	}
	m := model(t, dir)
	e := endpoint(t, m, "aws_instance.web")
	if res := m.Reach(m.Internet(), e, "tcp", 443); !res.Reachable || len(res.Assumed) > 0 {
		t.Errorf("tcp 443 through the adopted default group: reachable %v, assumed %v, want proven", res.Reachable, res.Assumed)
	}
	// Not adopted, it is the group AWS makes: its own members alone.
	src := edit(t, readFixture(t, dir+"/main.tf"), `resource "aws_default_security_group" "web"`, `resource "aws_security_group" "spare"`)
	rep := checkSource(t, src)
	for _, rule := range []string{RuleExposedPort, RuleInternetFacing} {
		if got := activeOn(rep, rule, "aws_instance.web"); len(got) != 0 {
			t.Errorf("%s behind the default group AWS makes: %+v, want none", rule, got)
		}
	}
}

// TestBeanstalkSubnets: an environment's instances are in each subnet its
// Subnets settings name, several settings or one comma-separated list; a
// setting not known statically may name any subnet, so the instances were
// read as in the known ones alone and SSH open to the world went
// unreported.
func TestBeanstalkSubnets(t *testing.T) {
	rep := run(t, "testdata/aws/beanstalk-subnets")
	for _, env := range []string{"twice", "listed"} {
		a := "aws_elastic_beanstalk_environment." + env
		if got := activeOn(rep, RuleExposedPort, a); len(got) != 1 || got[0].Severity != Critical || !strings.Contains(pathLine(got[0].Path), "aws_subnet.edge") {
			t.Errorf("%s on %s: %+v, want SSH critical through aws_subnet.edge", RuleExposedPort, a, got)
		}
	}
	a := "aws_elastic_beanstalk_environment.partly"
	got := activeOn(rep, RuleExposedPort, a)
	if len(got) != 1 || got[0].Severity != High || !strings.Contains(got[0].Message, "Subnets") || !strings.Contains(got[0].Message, "not known statically") {
		t.Errorf("%s on %s: %+v, want SSH high, resting on the unknown Subnets setting", RuleExposedPort, a, got)
	}
}

// TestSubnetOutsideItsNetwork checks that a subnet whose range lies outside
// every range of its VPC or virtual network, which AWS and Azure refuse, is
// reported as rejected (CHECK-003), and that one inside a secondary range,
// or in a network whose ranges are not all known statically, is not.
func TestSubnetOutsideItsNetwork(t *testing.T) {
	for _, tc := range []struct {
		name, src, addr string
		rejected        bool
	}{
		{"aws outside", `resource "aws_vpc" "v" { cidr_block = "10.0.0.0/16" }
resource "aws_subnet" "s" {
  vpc_id     = aws_vpc.v.id
  cidr_block = "192.168.1.0/24"
}`, "aws_subnet.s", true},
		{"aws secondary", `resource "aws_vpc" "v" { cidr_block = "10.0.0.0/16" }
resource "aws_vpc_ipv4_cidr_block_association" "more" {
  vpc_id     = aws_vpc.v.id
  cidr_block = "100.64.0.0/16"
}
resource "aws_subnet" "s" {
  vpc_id     = aws_vpc.v.id
  cidr_block = "100.64.1.0/24"
}`, "aws_subnet.s", false},
		{"aws secondary unknown", `variable "extra" { type = string }
resource "aws_vpc" "v" { cidr_block = "10.0.0.0/16" }
resource "aws_vpc_ipv4_cidr_block_association" "more" {
  vpc_id     = aws_vpc.v.id
  cidr_block = var.extra
}
resource "aws_subnet" "s" {
  vpc_id     = aws_vpc.v.id
  cidr_block = "100.64.1.0/24"
}`, "aws_subnet.s", false},
		{"azure outside", `resource "azurerm_virtual_network" "v" {
  name          = "v"
  address_space = ["10.0.0.0/16"]
}
resource "azurerm_subnet" "s" {
  name                 = "AzureBastionSubnet"
  virtual_network_name = azurerm_virtual_network.v.name
  address_prefix       = "192.168.1.224/27"
}`, "azurerm_subnet.s", true},
		{"azure inline outside", `resource "azurerm_virtual_network" "v" {
  name          = "v"
  address_space = ["10.0.0.0/16", "10.1.0.0/16"]
  subnet {
    name           = "a"
    address_prefix = "10.2.0.0/24"
  }
}`, "azurerm_virtual_network.v", true},
		{"azure inside", `resource "azurerm_virtual_network" "v" {
  name          = "v"
  address_space = ["10.0.0.0/16", "10.1.0.0/16"]
}
resource "azurerm_subnet" "s" {
  name                 = "s"
  virtual_network_name = azurerm_virtual_network.v.name
  address_prefixes     = ["10.1.4.0/24"]
}`, "azurerm_subnet.s", false},
	} {
		got := activeOn(checkSource(t, tc.src), RuleRejected, tc.addr)
		if tc.rejected && (len(got) != 1 || !strings.Contains(got[0].Message, "outside")) {
			t.Errorf("%s: %s: %+v, want one saying the range is outside its network", tc.name, RuleRejected, got)
		}
		if !tc.rejected && len(got) != 0 {
			t.Errorf("%s: %s: %+v, want none", tc.name, RuleRejected, got)
		}
	}
}

// TestPolicyPartlyUnknown: a bucket or OpenSearch policy that names the
// account or region it is in through a data source
// (data.aws_caller_identity) was not known statically at all, so a
// statement allowing Principal "*" without a condition went unreported.
// What is known of the document is now read; a principal not known
// statically still is not read as "*".
func TestPolicyPartlyUnknown(t *testing.T) {
	src := `variable "who" { type = string }
data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
resource "aws_s3_bucket" "site" { bucket = "site" }
resource "aws_s3_bucket_policy" "site" {
  bucket = aws_s3_bucket.site.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = "*"
      Action    = "s3:GetObject"
      Resource  = "arn:aws:s3:::site-${data.aws_caller_identity.current.account_id}/*"
    }]
  })
}
data "aws_iam_policy_document" "docs" {
  statement {
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
    actions   = ["s3:GetObject"]
    resources = ["arn:aws:s3:::docs-${data.aws_region.current.name}/*"]
  }
}
resource "aws_s3_bucket" "docs" { bucket = "docs" }
resource "aws_s3_bucket_policy" "docs" {
  bucket = aws_s3_bucket.docs.id
  policy = data.aws_iam_policy_document.docs.json
}
resource "aws_s3_bucket" "named" { bucket = "named" }
resource "aws_s3_bucket_policy" "named" {
  bucket = aws_s3_bucket.named.id
  policy = jsonencode({
    Statement = [{
      Effect    = "Allow"
      Principal = { AWS = var.who }
      Action    = "s3:GetObject"
      Resource  = "arn:aws:s3:::named-${data.aws_caller_identity.current.account_id}/*"
    }]
  })
}
resource "aws_opensearch_domain" "search" {
  domain_name = "search"
  access_policies = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { AWS = "*" }
      Action    = "es:*"
      Resource  = "arn:aws:es:us-east-1:${data.aws_caller_identity.current.account_id}:domain/search/*"
    }]
  })
}
`
	rep := checkSource(t, src)
	for addr, rule := range map[string]string{
		"aws_s3_bucket_policy.site":    RulePublicBucket,
		"aws_s3_bucket_policy.docs":    RulePublicBucket,
		"aws_opensearch_domain.search": RuleSearchOpenPols,
	} {
		got := activeOn(rep, rule, addr)
		if len(got) != 1 || !strings.Contains(got[0].Message, "not known statically") {
			t.Errorf("%s on %s: %+v, want one saying parts of the policy are not known statically", rule, addr, got)
		}
	}
	if got := activeOn(rep, RulePublicBucket, "aws_s3_bucket_policy.named"); len(got) != 0 {
		t.Errorf("%s on a policy whose principal is not known statically: %+v, want none", RulePublicBucket, got)
	}
}

// TestHeredocPolicyPartlyUnknown: a policy written as a heredoc that
// interpolates the account (data.aws_caller_identity) was not known
// statically at all; the text around the interpolation is now read, as
// jsonencode's is (TestPolicyPartlyUnknown).
func TestHeredocPolicyPartlyUnknown(t *testing.T) {
	src := `data "aws_caller_identity" "current" {}
resource "aws_elasticsearch_domain" "logs" {
  domain_name     = "logs"
  access_policies = <<POLICY
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Principal": { "AWS": "*" },
      "Action": "es:*",
      "Resource": "arn:aws:es:eu-west-1:${data.aws_caller_identity.current.account_id}:domain/logs/*"
    }
  ]
}
POLICY
}
`
	got := activeOn(checkSource(t, src), RuleSearchOpenPols, "aws_elasticsearch_domain.logs")
	if len(got) != 1 || !strings.Contains(got[0].Message, "not known statically") {
		t.Errorf("%s on a heredoc policy naming the account through a data source: %+v, want one", RuleSearchOpenPols, got)
	}
}

// TestImportBlocksNameResources checks that the ID an import block gives a
// resource is that resource's: an instance naming its group by that ID is
// behind the group's own rules (RDP open to everyone), not read as behind a
// group outside the scanned code that admits every port.
func TestImportBlocksNameResources(t *testing.T) {
	rep := run(t, "testdata/aws/import-blocks")
	got := activeOn(rep, RuleExposedPort, "aws_instance.windows")
	if len(got) != 1 || !strings.Contains(got[0].Message, "tcp 3389 (RDP)") || strings.Contains(got[0].Message, "not in the scanned code: assumed to admit every address") || strings.Contains(got[0].Message, "tcp 22 (SSH)") {
		t.Errorf("%s on the instance: %+v, want one for RDP through its own group", RuleExposedPort, got)
	}
	if got := activeOn(rep, RuleUnusedSG, "aws_security_group.rdp"); len(got) != 0 {
		t.Errorf("the imported group, named by its ID, read as unused: %+v", got)
	}
}

// TestMemoryDBCluster: a MemoryDB cluster answers in its subnet group's
// subnets behind its groups, on its port (6379 unless set), and takes no
// public address; it was noted as outside the network model, so what
// reached it was not evaluated. It is a cache: reached from the subnet its
// group admits, on its port alone, and from nowhere else.
func TestMemoryDBCluster(t *testing.T) {
	const dir = "testdata/aws/memorydb"
	if why, ok := notModelled(run(t, dir))["aws_memorydb_cluster.sessions"]; ok {
		t.Errorf("the cluster is noted as outside the model: %s", why)
	}
	m := model(t, dir)
	e := endpoint(t, m, "aws_memorydb_cluster.sessions")
	app := m.SubnetSource(m.subnets["aws_subnet.app"])
	if r := m.Reach(app, e, "tcp", 6379); !r.Reachable {
		t.Errorf("tcp 6379 from the app subnet: not reached: %s", pathLine(r.Path))
	}
	if r := m.Reach(app, e, "tcp", 22); r.Reachable {
		t.Errorf("tcp 22 from the app subnet reached: %s", pathLine(r.Path))
	}
	if r := m.Reach(m.Internet(), e, "tcp", 6379); r.Reachable {
		t.Errorf("tcp 6379 from the internet reached: %s", pathLine(r.Path))
	}
}

// TestDataStoreOwnPortWorldOpen: a group admitting the world on the port a
// database attached to it listens on (an Aurora cluster moved to 3307) was
// reported as opening an ordinary port (AWS-NET-011), as if no data store
// answered there. The data store's own port is a data-store port
// (AWS-NET-003); the group's other ports stay AWS-NET-011.
func TestDataStoreOwnPortWorldOpen(t *testing.T) {
	rep := run(t, "testdata/aws/db-own-port")
	svc := activeOn(rep, RuleWorldOpen, "aws_security_group.db")
	if len(svc) != 1 || !strings.Contains(svc[0].Message, "tcp 3307") || strings.Contains(svc[0].Message, "8080") {
		t.Errorf("%s on the group: %+v, want one naming tcp 3307 alone", RuleWorldOpen, svc)
	}
	other := activeOn(rep, RuleWorldOpenOther, "aws_security_group.db")
	if len(other) != 1 || strings.Contains(other[0].Message, "3307") || !strings.Contains(other[0].Message, "tcp 8080") {
		t.Errorf("%s on the group: %+v, want one naming tcp 8080 alone", RuleWorldOpenOther, other)
	}
}

// TestWorldOpenRuleOwnPort: a group opened by two rule resources, SSH
// and the Kubernetes API. The API rule's finding said the instance was
// reached "on tcp 22", the port of the other rule: each rule's finding
// now shows the instance reached on its own port.
func TestWorldOpenRuleOwnPort(t *testing.T) {
	rep := run(t, "testdata/aws/rule-own-port")
	for addr, port := range map[string]string{
		"aws_security_group_rule.ssh": "tcp 22",
		"aws_security_group_rule.api": "tcp 6443",
	} {
		got := activeOn(rep, RuleWorldOpen, addr)
		if len(got) != 1 || got[0].Severity != Critical || !strings.Contains(got[0].Message, "aws_instance.controller is reached from the internet on "+port+"") {
			t.Errorf("%s: %+v, want one critical that shows the instance reached on %s", addr, got, port)
		}
	}
}

// TestDomainPolicyByReference: a domain policy names its domain by
// reference; where the domain's name is not known statically, it was read
// as naming no domain, and a policy letting every principal into a public
// domain went unreported.
func TestDomainPolicyByReference(t *testing.T) {
	rep := run(t, "testdata/aws/domain-policy-ref")
	got := activeOn(rep, RuleSearchOpenPols, "aws_elasticsearch_domain.search")
	if len(got) != 1 || !strings.Contains(got[0].Message, "aws_elasticsearch_domain_policy.search") {
		t.Errorf("%s on the domain its policy names by reference: %+v, want one naming that policy", RuleSearchOpenPols, got)
	}
}

// TestNoListenerOnOpenPorts: where a world-open rule's ports reach
// nothing that listens, the finding named the first port of the range it
// probed ("no listener on tcp 1") for ports given at apply time; it names
// the ports the rule opens.
func TestNoListenerOnOpenPorts(t *testing.T) {
	rep := run(t, "testdata/aws/db-port-unknown")
	got := activeOn(rep, RuleWorldOpenOther, "aws_vpc_security_group_ingress_rule.db")
	if len(got) != 1 || strings.Contains(got[0].Message, "tcp 1 ") || !strings.Contains(got[0].Message, "no listener on those ports (it listens on 5432)") {
		t.Errorf("%s on the rule: %+v, want one saying no listener on those ports", RuleWorldOpenOther, got)
	}
}

// TestEgressDestinationUnknown: an egress rule whose range is not known
// statically was said to have a source assumed to admit every address; it
// has a destination, assumed to be every address it reaches.
func TestEgressDestinationUnknown(t *testing.T) {
	rep := run(t, "testdata/aws/egress-unknown")
	wantNotes(t, rep,
		"aws_security_group.app ingress[0]: a source is not known statically: assumed to admit every address",
		"aws_security_group.app egress[0]: a destination is not known statically: assumed to reach every address",
		"aws_vpc_security_group_egress_rule.extra: a destination is not known statically: assumed to reach every address")
	for _, n := range active(rep, RuleNotEvaluated) {
		if strings.Contains(n.Message, "egress") && strings.Contains(n.Message, "source") {
			t.Errorf("egress note naming a source: %s", n.Message)
		}
	}
}

// TestS3BlockByBucketName: a public access block that names its bucket by
// the bucket's name (aws_s3_bucket.x.bucket), not known statically, was
// matched to no bucket, so the public policy it stops was reported
// critical; a policy naming its bucket so was reported "on " no bucket.
func TestS3BlockByBucketName(t *testing.T) {
	rep := run(t, "testdata/aws/s3-block-by-name")
	if got := activeOn(rep, RulePublicBucket, "aws_s3_bucket_policy.blocked"); len(got) != 0 {
		t.Errorf("%s on the policy its bucket's public access block stops: %+v, want none", RulePublicBucket, got)
	}
	got := activeOn(rep, RulePublicBucket, "aws_s3_bucket_policy.open")
	if len(got) != 1 || !strings.HasSuffix(got[0].Message, "on aws_s3_bucket.open") {
		t.Errorf("%s on the policy of the bucket without a block: %+v, want one naming aws_s3_bucket.open", RulePublicBucket, got)
	}
}

// TestS3PublicObjectACL: an object uploaded with a public canned ACL
// (aws_s3_object, or aws_s3_bucket_object before the AWS provider 4.0) is
// readable by anyone, whatever its bucket's own ACL and policy say, unless
// the bucket's public access block blocks or ignores public ACLs; it was
// not reported.
func TestS3PublicObjectACL(t *testing.T) {
	rep := checkSource(t, `
resource "aws_s3_bucket" "site" {
  bucket = "site-assets"
}

resource "aws_s3_bucket_ownership_controls" "site" {
  bucket = aws_s3_bucket.site.id
  rule {
    object_ownership = "BucketOwnerPreferred"
  }
}

resource "aws_s3_object" "index" {
  bucket = aws_s3_bucket.site.id
  key    = "index.html"
  source = "index.html"
  acl    = "public-read"
}

resource "aws_s3_bucket_object" "legacy" {
  bucket = aws_s3_bucket.site.bucket
  key    = "old.html"
  source = "old.html"
  acl    = "public-read"
}

resource "aws_s3_bucket" "guarded" {
  bucket = "guarded-assets"
}

resource "aws_s3_bucket_public_access_block" "guarded" {
  bucket             = aws_s3_bucket.guarded.id
  ignore_public_acls = true
}

resource "aws_s3_object" "guarded" {
  bucket = aws_s3_bucket.guarded.id
  key    = "index.html"
  source = "index.html"
  acl    = "public-read"
}

resource "aws_s3_object" "private" {
  bucket = aws_s3_bucket.site.id
  key    = "private.html"
  source = "private.html"
  acl    = "private"
}
`)
	for _, addr := range []string{"aws_s3_object.index", "aws_s3_bucket_object.legacy"} {
		got := activeOn(rep, RulePublicBucket, addr)
		if len(got) != 1 || !strings.Contains(got[0].Message, `acl = "public-read" lets anyone read the object`) {
			t.Errorf("%s: %+v, want one %s for the public object", addr, got, RulePublicBucket)
		}
	}
	for _, addr := range []string{"aws_s3_object.guarded", "aws_s3_object.private"} {
		if got := activeOn(rep, RulePublicBucket, addr); len(got) != 0 {
			t.Errorf("%s: %+v, want none", addr, got)
		}
	}
}

// TestS3ACLsDisabled: a bucket whose ownership controls enforce the
// bucket owner (BucketOwnerEnforced) has ACLs disabled: S3 refuses a
// public canned ACL on it or on its objects, so neither opens it.
func TestS3ACLsDisabled(t *testing.T) {
	rep := checkSource(t, `
resource "aws_s3_bucket" "site" {
  bucket = "site-assets"
}

resource "aws_s3_bucket_ownership_controls" "site" {
  bucket = aws_s3_bucket.site.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_acl" "site" {
  bucket = aws_s3_bucket.site.id
  acl    = "public-read"
}

resource "aws_s3_object" "index" {
  bucket = aws_s3_bucket.site.id
  key    = "index.html"
  source = "index.html"
  acl    = "public-read"
}
`)
	for _, addr := range []string{"aws_s3_bucket_acl.site", "aws_s3_object.index"} {
		if got := activeOn(rep, RulePublicBucket, addr); len(got) != 0 {
			t.Errorf("%s: %+v, want none: the bucket's ACLs are disabled", addr, got)
		}
	}
}

// TestLambdaServicePermissionWithoutSource: a permission for an AWS
// service principal that names no source (source_arn, source_account)
// lets that service invoke the function for a resource of any AWS account,
// which AWS warns of; it was reported only for Principal "*". One bounded
// by a source, or by the token an Alexa skill presents, is not reported.
func TestLambdaServicePermissionWithoutSource(t *testing.T) {
	rep := checkSource(t, `
resource "aws_lambda_permission" "api" {
  statement_id  = "apigateway-invoke-permissions"
  action        = "lambda:InvokeFunction"
  principal     = "apigateway.amazonaws.com"
  function_name = "authorizer"
}

resource "aws_lambda_permission" "bounded" {
  statement_id  = "AllowExecutionFromSNS"
  action        = "lambda:InvokeFunction"
  principal     = "sns.amazonaws.com"
  function_name = "authorizer"
  source_arn    = "arn:aws:sns:eu-west-1:111122223333:alerts"
}

resource "aws_lambda_permission" "alexa" {
  statement_id       = "AllowAlexa"
  action             = "lambda:InvokeFunction"
  principal          = "alexa-connectedhome.amazon.com"
  function_name      = "authorizer"
  event_source_token = "amzn1.ask.skill.0000"
}
`)
	got := activeOn(rep, RuleLambdaURLOpen, "aws_lambda_permission.api")
	if len(got) != 1 || !strings.Contains(got[0].Message, "apigateway.amazonaws.com") || !strings.Contains(got[0].Message, "any AWS account") {
		t.Errorf("the permission for API Gateway without a source: %+v, want one %s", got, RuleLambdaURLOpen)
	}
	for _, addr := range []string{"aws_lambda_permission.bounded", "aws_lambda_permission.alexa"} {
		if got := activeOn(rep, RuleLambdaURLOpen, addr); len(got) != 0 {
			t.Errorf("%s: %+v, want none", addr, got)
		}
	}
}
