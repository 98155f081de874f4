package check

import (
	"strings"
	"testing"
)

// TestInternetGatewayVPCNotKnown checks that a route to an internet
// gateway whose VPC is not known statically (vpc_id from a variable, or
// from a module variable the module does not declare) is read as a route
// to the internet: AWS takes a route only to a gateway attached to the
// table's VPC, so the gateway is that VPC's, and the path says it was
// assumed. The route was read as to no internet gateway, so SSH open to
// the world on a machine with a public address went unreported.
func TestInternetGatewayVPCNotKnown(t *testing.T) {
	for _, attach := range []string{
		"resource \"aws_internet_gateway\" \"i\" {\n  vpc_id = var.vpc\n}\n",
		"resource \"aws_internet_gateway\" \"i\" {}\nresource \"aws_internet_gateway_attachment\" \"i\" {\n  internet_gateway_id = aws_internet_gateway.i.id\n  vpc_id              = var.vpc\n}\n",
	} {
		rep := checkSource(t, `
variable "vpc" {}
resource "aws_vpc" "v" {
  cidr_block = "10.0.0.0/16"
}
`+attach+`
resource "aws_subnet" "s" {
  vpc_id     = aws_vpc.v.id
  cidr_block = "10.0.1.0/24"
}
resource "aws_route_table" "r" {
  vpc_id = aws_vpc.v.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.i.id
  }
}
resource "aws_route_table_association" "a" {
  subnet_id      = aws_subnet.s.id
  route_table_id = aws_route_table.r.id
}
resource "aws_security_group" "ssh" {
  vpc_id = aws_vpc.v.id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_instance" "a" {
  ami                         = "ami-12345678"
  subnet_id                   = aws_subnet.s.id
  associate_public_ip_address = true
  vpc_security_group_ids      = [aws_security_group.ssh.id]
}
`)
		got := activeOn(rep, RuleExposedPort, "aws_instance.a")
		if len(got) != 1 || !strings.Contains(got[0].Message, "may be reachable from the internet") || !strings.Contains(got[0].Message, "VPC not known statically") {
			t.Errorf("%s: want one %s on SSH saying the gateway's VPC is assumed, got %+v", strings.SplitN(attach, "\n", 2)[0], RuleExposedPort, got)
		}
	}
}
