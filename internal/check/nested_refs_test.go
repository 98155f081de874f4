package check

import (
	"strings"
	"testing"
)

// TestNestedSubnetList: subnets written as Terraform 0.11 wrote a list
// (vpc_zone_identifier = ["${local.subnets}"], a list in the list) from a
// value not known statically were read as no subnet at all, so the
// group was placed in the default VPC, proven, and said to name no
// subnet; they are subnets not known statically.
func TestNestedSubnetList(t *testing.T) {
	for _, v := range []string{"variable \"subnets\" {}", "variable \"subnets\" {\n  default = [\"subnet-0123456789abcdef0\"]\n}"} {
		rep := checkSource(t, v+`
locals {
  subnets = ["${var.subnets}"]
}
resource "aws_launch_template" "t" {
  image_id = "ami-12345678"
  metadata_options {
    http_tokens = "required"
  }
}
resource "aws_autoscaling_group" "a" {
  max_size            = 1
  min_size            = 1
  vpc_zone_identifier = ["${local.subnets}"]
  launch_template {
    id = aws_launch_template.t.id
  }
}
`)
		for _, f := range rep.Findings {
			if f.Address == "aws_autoscaling_group.a" && strings.Contains(f.Message, "no subnet is named") {
				t.Errorf("%s: %s reads the group as naming no subnet: %s", v, f.RuleID, f.Message)
			}
		}
	}
}
