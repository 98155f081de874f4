package check

import (
	"strings"
	"testing"
)

// TestBareReference: an argument written as a bare name
// (container_name = ecs_service_name, a variable's name without var.)
// crashed the reader; Terraform rejects the reference, and so does the
// check (CHECK-003), naming it.
func TestBareReference(t *testing.T) {
	rep := checkSource(t, `
variable "ecs_service_name" {
  default = "web"
}
resource "aws_ecs_service" "s" {
  name        = var.ecs_service_name
  launch_type = "FARGATE"
  load_balancer {
    container_name   = ecs_service_name
    container_port   = 80
    target_group_arn = "arn:aws:elasticloadbalancing:us-east-1:111122223333:targetgroup/web/0123456789abcdef"
  }
}
`)
	found := false
	for _, f := range active(rep, RuleRejected) {
		found = found || f.Address == "aws_ecs_service.s" && strings.Contains(f.Message, "ecs_service_name")
	}
	if !found {
		t.Errorf("the bare reference is not rejected: %+v", active(rep, RuleRejected))
	}
}
