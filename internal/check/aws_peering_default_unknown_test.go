package check

import (
	"strings"
	"testing"
)

// TestPeeringRouteDestinationNotKnown checks AWS-NET-007 on a peering
// route whose destination is not known statically: one of a known prefix
// length (a looked-up subnet's cidr_block, a /16 at widest) is no route of
// every address and is not reported; one of no known length may be, and
// is medium, saying it is assumed. Both were reported, high, as sending
// 0.0.0.0/0 and ::/0 through the peering, as if written so.
func TestPeeringRouteDestinationNotKnown(t *testing.T) {
	src := func(dest string) string {
		return `
variable "range" {}
data "aws_subnet" "office" {
  id = "subnet-0123456789abcdef0"
}
resource "aws_vpc" "v" {
  cidr_block = "10.0.0.0/16"
}
resource "aws_vpc_peering_connection" "p" {
  vpc_id      = aws_vpc.v.id
  peer_vpc_id = "vpc-0123456789abcdef0"
}
resource "aws_route_table" "r" {
  vpc_id = aws_vpc.v.id
  route {
    cidr_block                = ` + dest + `
    vpc_peering_connection_id = aws_vpc_peering_connection.p.id
  }
}
`
	}
	if got := activeOn(checkSource(t, src("data.aws_subnet.office.cidr_block")), RulePeeringDefault, "aws_route_table.r"); len(got) != 0 {
		t.Errorf("a route to a range of known length: %s %+v, want none", RulePeeringDefault, got)
	}
	got := activeOn(checkSource(t, src("var.range")), RulePeeringDefault, "aws_route_table.r")
	if len(got) != 1 || got[0].Severity != Medium || !strings.Contains(got[0].Message, "may send every address") || !strings.Contains(got[0].Message, "not known statically") {
		t.Errorf("a route to a range not known statically: want one medium %s saying it may, got %+v", RulePeeringDefault, got)
	}
}
