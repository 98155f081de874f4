package check

import (
	"strings"
	"testing"
)

// TestCustomRoutingAcceleratorNoted checks that a custom routing Global
// Accelerator, which reaches the instances of the subnets its endpoint
// groups name on the ports AWS allows them, is noted as not evaluated,
// where it was passed over in silence.
func TestCustomRoutingAcceleratorNoted(t *testing.T) {
	rep := checkSource(t, `
resource "aws_vpc" "v" {
  cidr_block = "10.0.0.0/16"
}
resource "aws_subnet" "game" {
  vpc_id     = aws_vpc.v.id
  cidr_block = "10.0.1.0/24"
}
resource "aws_globalaccelerator_custom_routing_accelerator" "game" {
  name = "game"
}
resource "aws_globalaccelerator_custom_routing_listener" "game" {
  accelerator_arn = aws_globalaccelerator_custom_routing_accelerator.game.id
  port_range {
    from_port = 10000
    to_port   = 20000
  }
}
resource "aws_globalaccelerator_custom_routing_endpoint_group" "game" {
  listener_arn = aws_globalaccelerator_custom_routing_listener.game.id
  destination_configuration {
    from_port = 22
    to_port   = 22
    protocols = ["TCP"]
  }
  endpoint_configuration {
    endpoint_id = aws_subnet.game.id
  }
}
`)
	got := activeOn(rep, RuleNotEvaluated, "aws_globalaccelerator_custom_routing_endpoint_group.game")
	if len(got) != 1 || !strings.Contains(got[0].Message, "custom routing endpoint group") {
		t.Errorf("notes on the endpoint group: %+v", got)
	}
}
