package check

import (
	"strings"
	"testing"
)

// TestMQBrokerEngineNotKnown checks that a public Amazon MQ broker whose
// engine_type is not known statically is read as RabbitMQ, whose public
// broker AWS runs outside the VPC and which takes no security group: the
// internet may reach it on 443 and 5671 whatever its groups admit, said
// so. It was read as ActiveMQ, behind a group that admits nothing, and
// reached by no one.
func TestMQBrokerEngineNotKnown(t *testing.T) {
	rep := checkSource(t, `
variable "engine_type" {}
resource "aws_vpc" "v" {
  cidr_block = "10.0.0.0/16"
}
resource "aws_subnet" "s" {
  vpc_id     = aws_vpc.v.id
  cidr_block = "10.0.1.0/24"
}
resource "aws_security_group" "closed" {
  vpc_id = aws_vpc.v.id
}
resource "aws_mq_broker" "b" {
  broker_name         = "b"
  engine_type         = var.engine_type
  engine_version      = "3.13"
  host_instance_type  = "mq.t3.micro"
  security_groups     = [aws_security_group.closed.id]
  subnet_ids          = [aws_subnet.s.id]
  publicly_accessible = true
  user {
    username = "u"
    password = "p"
  }
}
`)
	got := activeOn(rep, RuleExposedPort, "aws_mq_broker.b")
	if len(got) != 1 || got[0].Severity != High || !strings.Contains(got[0].Message, "5671") || !strings.Contains(got[0].Message, "engine_type not known statically") {
		t.Errorf("%s on a public broker of an engine not known statically: %+v, want one high on 5671 saying why", RuleExposedPort, got)
	}
}
