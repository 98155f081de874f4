package check

import (
	"context"
	"strings"
	"testing"
)

// TestEMRClusterNodes checks that an EMR cluster's master and core nodes
// are machines in its subnet behind their groups: the master, in a public
// subnet, is reached from the internet on SSH, and from the office on the
// port of a group named among additional_master_security_groups; the core
// nodes, whose group admits the VPC alone, are not reached from it.
func TestEMRClusterNodes(t *testing.T) {
	const dir = "testdata/aws/emr"
	rep := run(t, dir)
	got := activeOn(rep, RuleExposedPort, "aws_emr_cluster.spark")
	if len(got) != 1 || got[0].Severity != Critical || !strings.Contains(got[0].Message, "tcp 22 (SSH)") {
		t.Errorf("%s on the cluster: %+v, want one critical for SSH", RuleExposedPort, got)
	}
	if got := activeOn(rep, RuleNotEvaluated, "aws_emr_cluster.spark"); len(got) != 0 {
		t.Errorf("the cluster is noted as not evaluated: %+v", got)
	}
	acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, "aws_emr_cluster.spark.master")
	if err != nil {
		t.Fatal(err)
	}
	notebook := false
	for _, a := range acc {
		if a.Source == "internet" && a.Port == 8888 && strings.Contains(a.Range, "198.51.100.0/24") {
			notebook = true
		}
	}
	if !notebook {
		t.Errorf("the office does not reach the master's notebook port: %+v", acc)
	}
	core, err := Reachability(context.Background(), Config{Paths: []string{dir}}, "aws_emr_cluster.spark.core")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range core {
		if a.Source == "internet" {
			t.Errorf("the internet reaches the core nodes: %+v", a)
		}
	}
}

// An EMR cluster in a private subnet names a service access group, which
// EMR attaches to the interfaces it talks to the cluster through: the
// group is used (no AWS-NET-008), and those interfaces sit in the cluster's
// subnet behind it, answering EMR's port 9443 alone.
func TestEMRServiceAccessGroup(t *testing.T) {
	dir := writeProject(t, `
resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
}
resource "aws_subnet" "private" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.1.0/24"
}
resource "aws_security_group" "master" {
  vpc_id                 = aws_vpc.main.id
  revoke_rules_on_delete = true
}
resource "aws_security_group" "core" {
  vpc_id                 = aws_vpc.main.id
  revoke_rules_on_delete = true
}
resource "aws_security_group" "service" {
  vpc_id                 = aws_vpc.main.id
  revoke_rules_on_delete = true
}
resource "aws_security_group_rule" "service_from_master" {
  type                     = "ingress"
  security_group_id        = aws_security_group.service.id
  source_security_group_id = aws_security_group.master.id
  from_port                = 9443
  to_port                  = 9443
  protocol                 = "tcp"
}
resource "aws_emr_cluster" "private" {
  name          = "private"
  release_label = "emr-7.1.0"
  service_role  = "EMR_DefaultRole"
  ec2_attributes {
    subnet_id                         = aws_subnet.private.id
    emr_managed_master_security_group = aws_security_group.master.id
    emr_managed_slave_security_group  = aws_security_group.core.id
    service_access_security_group     = aws_security_group.service.id
    instance_profile                  = "EMR_EC2_DefaultRole"
  }
  master_instance_group {
    instance_type = "m5.xlarge"
  }
}
`)
	rep := run(t, dir)
	if f := findingOn(rep, RuleUnusedSG, "aws_security_group.service"); f != nil {
		t.Errorf("the service access group is read as not used: %s", f.Message)
	}
	acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, "aws_emr_cluster.private.service")
	if err != nil {
		t.Fatal(err)
	}
	master := false
	for _, a := range acc {
		if a.Port != 9443 {
			t.Errorf("the service interfaces are reached on %d: %+v", a.Port, a)
		}
		master = master || strings.Contains(a.Source, "aws_emr_cluster.private.master")
	}
	if !master {
		t.Errorf("the master does not reach the service interfaces: %+v", acc)
	}
}
