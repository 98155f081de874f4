package check

import (
	"context"
	"testing"
)

// TestEMRServerlessIsASource checks that an EMR Serverless application in
// a VPC is read as its workers' interfaces, which open connections and
// take none: a database whose group admits the application's group is
// reached from it, and the application is not noted as not evaluated;
// it was left out of the model, so the database read as reached by
// nothing in its VPC and the application as unevaluated.
func TestEMRServerlessIsASource(t *testing.T) {
	dir := writeProject(t, `
resource "aws_vpc" "v" {
  cidr_block = "10.0.0.0/16"
}
resource "aws_subnet" "a" {
  vpc_id     = aws_vpc.v.id
  cidr_block = "10.0.1.0/24"
}
resource "aws_subnet" "b" {
  vpc_id     = aws_vpc.v.id
  cidr_block = "10.0.2.0/24"
}
resource "aws_security_group" "emr" {
  vpc_id = aws_vpc.v.id
}
resource "aws_security_group" "db" {
  vpc_id = aws_vpc.v.id
  ingress {
    from_port       = 5432
    to_port         = 5432
    protocol        = "tcp"
    security_groups = [aws_security_group.emr.id]
  }
}
resource "aws_db_subnet_group" "db" {
  subnet_ids = [aws_subnet.b.id]
}
resource "aws_db_instance" "db" {
  engine                 = "postgres"
  instance_class         = "db.t3.micro"
  db_subnet_group_name   = aws_db_subnet_group.db.name
  vpc_security_group_ids = [aws_security_group.db.id]
}
resource "aws_emrserverless_application" "spark" {
  name          = "spark"
  release_label = "emr-6.6.0"
  type          = "spark"
  network_configuration {
    subnet_ids         = [aws_subnet.a.id]
    security_group_ids = [aws_security_group.emr.id]
  }
}
`)
	rep := run(t, dir)
	if got := activeOn(rep, RuleNotEvaluated, "aws_emrserverless_application.spark"); len(got) != 0 {
		t.Errorf("notes on the application: %+v", got)
	}
	acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, "aws_db_instance.db")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range acc {
		if a.Source == "aws_emrserverless_application.spark (in aws_subnet.a)" && a.Port == 5432 && len(a.Assumed) == 0 {
			found = true
		}
	}
	if !found {
		t.Errorf("the database is not reached from the application: %+v", acc)
	}
	if _, err := Reachability(context.Background(), Config{Paths: []string{dir}}, "aws_emrserverless_application.spark"); err != nil {
		t.Errorf("the application is not in the model: %v", err)
	}
}
