package check

import (
	"context"
	"strings"
	"testing"
)

// TestDBPortReference: a rule whose ports are a database's port attribute
// (aws_db_instance.db.port), which the configuration leaves to the
// engine's default, was read as every port, so the database was reached
// only by an assumed path and its rule noted as not known statically;
// the attribute is the engine's default port, as RDS gives it.
func TestDBPortReference(t *testing.T) {
	const src = `
resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
}
resource "aws_subnet" "a" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.1.0/24"
}
resource "aws_security_group" "db" {
  vpc_id = aws_vpc.main.id
}
resource "aws_security_group_rule" "db_in" {
  type              = "ingress"
  security_group_id = aws_security_group.db.id
  protocol          = "tcp"
  from_port         = aws_db_instance.db.port
  to_port           = aws_db_instance.db.port
  cidr_blocks       = [aws_vpc.main.cidr_block]
}
resource "aws_db_subnet_group" "db" {
  subnet_ids = [aws_subnet.a.id]
}
resource "aws_db_instance" "db" {
  engine                 = "mysql"
  instance_class         = "db.t3.micro"
  db_subnet_group_name   = aws_db_subnet_group.db.name
  vpc_security_group_ids = [aws_security_group.db.id]
}
`
	rep := checkSource(t, src)
	for _, n := range active(rep, RuleNotEvaluated) {
		if n.Address == "aws_security_group_rule.db_in" {
			t.Errorf("the rule's ports are the engine's, yet noted: %s", n.Message)
		}
	}
	acc, err := Reachability(context.Background(), Config{Paths: []string{writeProject(t, src)}}, "aws_db_instance.db")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range acc {
		if a.Source == "aws_subnet.a" {
			found = true
			if a.Port != 3306 || len(a.Assumed) > 0 {
				t.Errorf("the subnet reaches the database on %d, assuming %q; want 3306, proven", a.Port, a.Assumed)
			}
		}
	}
	if !found {
		t.Errorf("--reach does not list the subnet: %+v", acc)
	}

	t.Run("port set", func(t *testing.T) {
		src := strings.Replace(src, `engine                 = "mysql"`, "engine                 = \"mysql\"\n  port                   = 3307", 1)
		acc, err := Reachability(context.Background(), Config{Paths: []string{writeProject(t, src)}}, "aws_db_instance.db")
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range acc {
			if a.Source == "aws_subnet.a" && (a.Port != 3307 || len(a.Assumed) > 0) {
				t.Errorf("the subnet reaches the database on %d, assuming %q; want 3307, proven", a.Port, a.Assumed)
			}
		}
	})
	t.Run("engine not known", func(t *testing.T) {
		src := "variable \"engine\" {\n  type = string\n}\n" + strings.Replace(src, `engine                 = "mysql"`, `engine                 = var.engine`, 1)
		noted := false
		for _, n := range active(checkSource(t, src), RuleNotEvaluated) {
			noted = noted || n.Address == "aws_security_group_rule.db_in" && strings.Contains(n.Message, "ports not known statically")
		}
		if !noted {
			t.Errorf("the engine is not known, so neither is its port; the rule is not noted")
		}
	})
}
