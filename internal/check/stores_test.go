package check

import (
	"context"
	"slices"
	"strings"
	"testing"
)

// routedNetwork is a dual-stack VPC with a public subnet (routed to an
// internet gateway for IPv4 and IPv6) and a private one.
const routedNetwork = `
resource "aws_vpc" "main" {
  cidr_block                       = "10.0.0.0/16"
  assign_generated_ipv6_cidr_block = true
}
resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
}
resource "aws_subnet" "public" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.1.0/24"
}
resource "aws_subnet" "private" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.2.0/24"
}
resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.main.id
  }
  route {
    ipv6_cidr_block = "::/0"
    gateway_id      = aws_internet_gateway.main.id
  }
}
resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}
`

// storesNetwork adds a group that admits every address on every TCP port
// and subnet groups of each subnet; each case adds one data store.
const storesNetwork = routedNetwork + `
resource "aws_security_group" "open" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = 0
    to_port     = 65535
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_db_subnet_group" "public" {
  subnet_ids = [aws_subnet.public.id]
}
resource "aws_db_subnet_group" "private" {
  subnet_ids = [aws_subnet.private.id]
}
`

// TestPublicDataStoreKinds checks AWS-NET-002 for each kind of data store
// the issue names, in a public subnet behind a world-open group: public
// where the service gives it a public address (publicly_accessible, an
// OpenSearch domain outside a VPC, MSK public access, Redshift's default),
// with the path; not where it cannot have one (ElastiCache, DocumentDB) or
// where its subnets have no route from the internet.
func TestPublicDataStoreKinds(t *testing.T) {
	for _, tc := range []struct {
		name, src, addr string
		public          bool
	}{
		{"RDS publicly accessible", `
resource "aws_db_instance" "s" {
  engine                 = "mysql"
  publicly_accessible    = true
  db_subnet_group_name   = aws_db_subnet_group.public.name
  vpc_security_group_ids = [aws_security_group.open.id]
}`, "aws_db_instance.s", true},
		{"RDS publicly accessible, private subnet", `
resource "aws_db_instance" "s" {
  engine                 = "mysql"
  publicly_accessible    = true
  db_subnet_group_name   = aws_db_subnet_group.private.name
  vpc_security_group_ids = [aws_security_group.open.id]
}`, "aws_db_instance.s", false},
		{"RDS not publicly accessible", `
resource "aws_db_instance" "s" {
  engine                 = "mysql"
  db_subnet_group_name   = aws_db_subnet_group.public.name
  vpc_security_group_ids = [aws_security_group.open.id]
}`, "aws_db_instance.s", false},
		{"Aurora instance", `
resource "aws_rds_cluster" "c" {
  engine                 = "aurora-postgresql"
  db_subnet_group_name   = aws_db_subnet_group.public.name
  vpc_security_group_ids = [aws_security_group.open.id]
}
resource "aws_rds_cluster_instance" "s" {
  cluster_identifier  = aws_rds_cluster.c.id
  publicly_accessible = true
}`, "aws_rds_cluster_instance.s", true},
		{"Redshift, publicly_accessible unset under the AWS provider 4", `
terraform {
  required_providers {
    aws = "~> 4.0"
  }
}
resource "aws_redshift_subnet_group" "g" {
  subnet_ids = [aws_subnet.public.id]
}
resource "aws_redshift_cluster" "s" {
  cluster_subnet_group_name = aws_redshift_subnet_group.g.name
  vpc_security_group_ids    = [aws_security_group.open.id]
}`, "aws_redshift_cluster.s", true},
		{"Redshift, publicly_accessible unset under the newest AWS provider", `
resource "aws_redshift_subnet_group" "g" {
  subnet_ids = [aws_subnet.public.id]
}
resource "aws_redshift_cluster" "s" {
  cluster_subnet_group_name = aws_redshift_subnet_group.g.name
  vpc_security_group_ids    = [aws_security_group.open.id]
}`, "aws_redshift_cluster.s", false},
		{"Redshift private", `
resource "aws_redshift_subnet_group" "g" {
  subnet_ids = [aws_subnet.public.id]
}
resource "aws_redshift_cluster" "s" {
  publicly_accessible       = false
  cluster_subnet_group_name = aws_redshift_subnet_group.g.name
  vpc_security_group_ids    = [aws_security_group.open.id]
}`, "aws_redshift_cluster.s", false},
		{"OpenSearch outside a VPC", `
resource "aws_opensearch_domain" "s" {
  domain_name = "logs"
}`, "aws_opensearch_domain.s", true},
		{"Elasticsearch in a VPC", `
resource "aws_elasticsearch_domain" "s" {
  domain_name = "logs"
  vpc_options {
    subnet_ids         = [aws_subnet.public.id]
    security_group_ids = [aws_security_group.open.id]
  }
}`, "aws_elasticsearch_domain.s", false},
		{"ElastiCache", `
resource "aws_elasticache_subnet_group" "g" {
  subnet_ids = [aws_subnet.public.id]
}
resource "aws_elasticache_cluster" "s" {
  engine             = "redis"
  subnet_group_name  = aws_elasticache_subnet_group.g.name
  security_group_ids = [aws_security_group.open.id]
}`, "aws_elasticache_cluster.s", false},
		{"DocumentDB", `
resource "aws_docdb_cluster" "c" {
  db_subnet_group_name   = aws_db_subnet_group.public.name
  vpc_security_group_ids = [aws_security_group.open.id]
}
resource "aws_docdb_cluster_instance" "s" {
  cluster_identifier = aws_docdb_cluster.c.id
}`, "aws_docdb_cluster_instance.s", false},
		{"MSK public access", `
resource "aws_msk_cluster" "s" {
  broker_node_group_info {
    client_subnets  = [aws_subnet.public.id]
    security_groups = [aws_security_group.open.id]
    connectivity_info {
      public_access {
        type = "SERVICE_PROVIDED_EIPS"
      }
    }
  }
}`, "aws_msk_cluster.s", true},
		{"Neptune publicly accessible", `
resource "aws_neptune_subnet_group" "g" {
  subnet_ids = [aws_subnet.public.id]
}
resource "aws_neptune_cluster" "c" {
  neptune_subnet_group_name = aws_neptune_subnet_group.g.name
  vpc_security_group_ids    = [aws_security_group.open.id]
}
resource "aws_neptune_cluster_instance" "s" {
  cluster_identifier  = aws_neptune_cluster.c.id
  publicly_accessible = true
}`, "aws_neptune_cluster_instance.s", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := checkSource(t, storesNetwork+tc.src)
			got := activeOn(rep, RuleDataTierPublic, tc.addr)
			if !tc.public {
				if len(got) > 0 {
					t.Errorf("want no %s, got %+v", RuleDataTierPublic, got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("want one %s on %s, got %+v (all: %+v)", RuleDataTierPublic, tc.addr, got, rep.Findings)
			}
			if p := pathLine(got[0].Path); !strings.HasPrefix(p, "internet → ") || !strings.HasSuffix(p, tc.addr) {
				t.Errorf("path %q", p)
			}
		})
	}
}

// TestEFSMountTarget checks that an EFS mount target is a place traffic
// reaches: --reach lists who opens NFS on it, by its group or its VPC's
// default group when it names none, and nothing else; the internet reaches
// neither, which have no public address, and the world-open group's finding
// names the mount target behind it.
func TestEFSMountTarget(t *testing.T) {
	const dir = "testdata/aws/efs-mount"
	for _, tc := range []struct {
		addr    string
		sources []string
	}{
		// b, in its VPC's default group, is a member of a group like any
		// other resource in the VPC.
		{"aws_efs_mount_target.a", []string{"aws_subnet.a", "aws_subnet.b", "aws_efs_mount_target.b (in aws_subnet.b)"}},
		{"aws_efs_mount_target.b", nil}, // the default group admits its members alone
	} {
		acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, tc.addr)
		if err != nil {
			t.Fatalf("%s: %v", tc.addr, err)
		}
		var got []string
		for _, a := range acc {
			if a.Proto != "tcp" || a.Port != 2049 {
				t.Errorf("%s reached from %s on %s %d", tc.addr, a.Source, a.Proto, a.Port)
			}
			got = append(got, a.Source)
		}
		if !slices.Equal(got, tc.sources) {
			t.Errorf("%s reached from %v, want %v", tc.addr, got, tc.sources)
		}
	}
	got := activeOn(run(t, dir), RuleWorldOpen, "aws_security_group.efs")
	if len(got) != 1 || got[0].Severity != Medium || !strings.Contains(got[0].Message, "attached only to aws_efs_mount_target.a, which the internet never reaches") {
		t.Errorf("%s: %+v, want one medium naming the mount target, which no internet address reaches", RuleWorldOpen, got)
	}
}

// TestRedshiftServerlessWorkgroups checks that a Redshift Serverless
// workgroup is a data store in its subnets behind its groups: a public one
// in a subnet routed to the internet is reached on 5439 (critical), a
// private one (the default) is not, and neither is noted as outside the
// model.
func TestRedshiftServerlessWorkgroups(t *testing.T) {
	rep := run(t, "testdata/aws/redshift-serverless")
	if got := activeOn(rep, RuleExposedPort, "aws_redshiftserverless_workgroup.public"); len(got) != 1 || got[0].Severity != Critical || !strings.Contains(got[0].Message, "tcp 5439") {
		t.Errorf("%s on the public workgroup: %+v, want one critical on 5439", RuleExposedPort, got)
	}
	if got := activeOn(rep, RuleExposedPort, "aws_redshiftserverless_workgroup.private"); len(got) != 0 {
		t.Errorf("%s on the private workgroup: %+v, want none", RuleExposedPort, got)
	}
	for _, a := range []string{"aws_redshiftserverless_workgroup.public", "aws_redshiftserverless_workgroup.private"} {
		if got := activeOn(rep, RuleNotEvaluated, a); len(got) != 0 {
			t.Errorf("notes on %s: %+v", a, got)
		}
	}
}
