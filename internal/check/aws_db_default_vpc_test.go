package check

import (
	"strings"
	"testing"
)

// TestDBNoSubnetGroupCustomVPC checks that a database that names no
// subnet group, which AWS places in the default VPC, but whose security
// groups are of a VPC the code declares, is said to be rejected
// (CHECK-003), naming the groups' VPC: AWS refuses groups of another VPC
// than the subnets', so the apply fails. It was read in the default VPC
// in silence. With its subnet group named, as a read replica of the
// region that takes its source's, or a group not known statically, it is
// no such finding.
func TestDBNoSubnetGroupCustomVPC(t *testing.T) {
	const base = `
resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
}
resource "aws_subnet" "db" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.2.0/24"
}
resource "aws_db_subnet_group" "db" {
  name       = "db"
  subnet_ids = [aws_subnet.db.id]
}
resource "aws_security_group" "db" {
  vpc_id = aws_vpc.main.id
}
`
	for _, tc := range []struct {
		name, src, addr string
		want            bool
	}{
		{"rds cluster", `resource "aws_rds_cluster" "orders" {
  engine                 = "aurora-postgresql"
  vpc_security_group_ids = [aws_security_group.db.id]
}
resource "aws_rds_cluster_instance" "one" {
  cluster_identifier = aws_rds_cluster.orders.id
  instance_class     = "db.r6g.large"
  engine             = "aurora-postgresql"
}
`, "aws_rds_cluster.orders", true},
		{"db instance", `resource "aws_db_instance" "orders" {
  engine                 = "postgres"
  instance_class         = "db.t3.micro"
  vpc_security_group_ids = [aws_security_group.db.id]
}
`, "aws_db_instance.orders", true},
		{"docdb cluster", `resource "aws_docdb_cluster" "orders" {
  vpc_security_group_ids = [aws_security_group.db.id]
}
`, "aws_docdb_cluster.orders", true},
		{"with a subnet group", `resource "aws_db_instance" "orders" {
  engine                 = "postgres"
  instance_class         = "db.t3.micro"
  db_subnet_group_name   = aws_db_subnet_group.db.name
  vpc_security_group_ids = [aws_security_group.db.id]
}
`, "aws_db_instance.orders", false},
		{"read replica", `resource "aws_db_instance" "source" {
  engine                 = "postgres"
  instance_class         = "db.t3.micro"
  db_subnet_group_name   = aws_db_subnet_group.db.name
  vpc_security_group_ids = [aws_security_group.db.id]
}
resource "aws_db_instance" "orders" {
  instance_class         = "db.t3.micro"
  replicate_source_db    = aws_db_instance.source.identifier
  vpc_security_group_ids = [aws_security_group.db.id]
}
`, "aws_db_instance.orders", false},
		{"group from a variable", `variable "sg" {}
resource "aws_db_instance" "orders" {
  engine                 = "postgres"
  instance_class         = "db.t3.micro"
  vpc_security_group_ids = [var.sg]
}
`, "aws_db_instance.orders", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := activeOn(checkSource(t, base+tc.src), RuleRejected, tc.addr)
			switch {
			case tc.want && (len(got) != 1 || !strings.Contains(got[0].Message, "aws_vpc.main") || !strings.Contains(got[0].Message, "default VPC")):
				t.Errorf("%s on %s: %+v, want one naming aws_vpc.main and the default VPC", RuleRejected, tc.addr, got)
			case !tc.want && len(got) != 0:
				t.Errorf("%s on %s: %+v, want none", RuleRejected, tc.addr, got)
			}
		})
	}
}
