package check

import (
	"strings"
	"testing"
)

// TestAuroraServerlessV1Reached checks that an Aurora Serverless v1
// cluster (engine_mode = "serverless"), which takes no instances and
// answers at its own endpoint, is a database in its subnet group behind
// its groups on its engine's port: a peer its group admits whole is
// AWS-NET-010 there. With no instance declared it was in no network of
// the model, and passed over in silence. A provisioned cluster with no
// instance declared answers nothing, and is no such finding.
func TestAuroraServerlessV1Reached(t *testing.T) {
	const addr = "aws_rds_cluster.orders"
	src := peeredStores + `
resource "aws_db_subnet_group" "data" {
  subnet_ids = [aws_subnet.data.id]
}
resource "aws_security_group" "db" {
  vpc_id = aws_vpc.data.id
  ingress {
    from_port   = 0
    to_port     = 65535
    protocol    = "tcp"
    cidr_blocks = ["10.9.0.0/16"]
  }
}
resource "aws_rds_cluster" "orders" {
  engine                 = "aurora-postgresql"
  engine_mode            = "serverless"
  db_subnet_group_name   = aws_db_subnet_group.data.name
  vpc_security_group_ids = [aws_security_group.db.id]
  storage_encrypted      = true
}
`
	got := activeOn(checkSource(t, src), RuleLateral, addr)
	if len(got) != 1 || !strings.HasSuffix(got[0].Message, " on tcp 5432 (PostgreSQL)") {
		t.Errorf("%s on the serverless cluster: %+v, want one on tcp 5432", RuleLateral, got)
	}
	provisioned := strings.Replace(src, `engine_mode            = "serverless"`, `engine_mode = "provisioned"`, 1)
	if got := activeOn(checkSource(t, provisioned), RuleLateral, addr); len(got) != 0 {
		t.Errorf("%s on a provisioned cluster with no instance: %+v", RuleLateral, got)
	}
}
