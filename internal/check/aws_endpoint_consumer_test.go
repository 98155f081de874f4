package check

import (
	"strings"
	"testing"
)

// endpointServiceConsumer is a provider VPC whose instance a network load
// balancer serves through a VPC endpoint service, and a consumer VPC whose
// interface endpoint connects to that service.
const endpointServiceConsumer = `
resource "aws_vpc" "provider" {
  cidr_block = "10.1.0.0/16"
}
resource "aws_subnet" "provider" {
  vpc_id     = aws_vpc.provider.id
  cidr_block = "10.1.1.0/24"
}
resource "aws_security_group" "app" {
  vpc_id = aws_vpc.provider.id
  ingress {
    from_port   = 5432
    to_port     = 5432
    protocol    = "tcp"
    cidr_blocks = ["10.1.0.0/16"]
  }
}
resource "aws_instance" "db" {
  ami                    = "ami-12345678"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.provider.id
  vpc_security_group_ids = [aws_security_group.app.id]
}
resource "aws_lb" "nlb" {
  load_balancer_type = "network"
  internal           = true
  subnets            = [aws_subnet.provider.id]
}
resource "aws_lb_target_group" "db" {
  port     = 5432
  protocol = "TCP"
  vpc_id   = aws_vpc.provider.id
}
resource "aws_lb_target_group_attachment" "db" {
  target_group_arn = aws_lb_target_group.db.arn
  target_id        = aws_instance.db.id
  port             = 5432
}
resource "aws_lb_listener" "db" {
  load_balancer_arn = aws_lb.nlb.arn
  port              = 5432
  protocol          = "TCP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.db.arn
  }
}
resource "aws_vpc_endpoint_service" "db" {
  acceptance_required        = false
  network_load_balancer_arns = [aws_lb.nlb.arn]
}
resource "aws_vpc" "consumer" {
  cidr_block = "10.2.0.0/16"
}
resource "aws_subnet" "consumer" {
  vpc_id     = aws_vpc.consumer.id
  cidr_block = "10.2.1.0/24"
}
`

// TestEndpointServiceConsumerNoted checks that an interface endpoint
// connected to a VPC endpoint service of the project is noted as not
// evaluated: the consumer's network reaches what the service's balancers
// forward to, which the model does not follow, and the endpoint was passed
// over in silence. An endpoint to an AWS service is not noted.
func TestEndpointServiceConsumerNoted(t *testing.T) {
	rep := checkSource(t, endpointServiceConsumer+`
resource "aws_vpc_endpoint" "db" {
  vpc_id            = aws_vpc.consumer.id
  service_name      = aws_vpc_endpoint_service.db.service_name
  vpc_endpoint_type = "Interface"
  subnet_ids        = [aws_subnet.consumer.id]
}
resource "aws_vpc_endpoint" "sqs" {
  vpc_id            = aws_vpc.consumer.id
  service_name      = "com.amazonaws.eu-west-1.sqs"
  vpc_endpoint_type = "Interface"
  subnet_ids        = [aws_subnet.consumer.id]
}
`)
	got := activeOn(rep, RuleNotEvaluated, "aws_vpc_endpoint.db")
	if len(got) != 1 || !strings.Contains(got[0].Message, "VPC endpoint service aws_vpc_endpoint_service.db") || !strings.Contains(got[0].Message, "aws_lb.nlb") {
		t.Errorf("notes on the consumer endpoint: %+v", got)
	}
	if got := activeOn(rep, RuleNotEvaluated, "aws_vpc_endpoint.sqs"); len(got) != 0 {
		t.Errorf("an endpoint to an AWS service is noted: %+v", got)
	}

	// Balancers not known statically are said to be so.
	rep = checkSource(t, strings.Replace(endpointServiceConsumer, "network_load_balancer_arns = [aws_lb.nlb.arn]", "network_load_balancer_arns = var.balancers", 1)+`
variable "balancers" {
  type = list(string)
}
resource "aws_vpc_endpoint" "db" {
  vpc_id            = aws_vpc.consumer.id
  service_name      = aws_vpc_endpoint_service.db.service_name
  vpc_endpoint_type = "Interface"
  subnet_ids        = [aws_subnet.consumer.id]
}
`)
	got = activeOn(rep, RuleNotEvaluated, "aws_vpc_endpoint.db")
	if len(got) != 1 || !strings.Contains(got[0].Message, "its network load balancers (not known statically) forward") {
		t.Errorf("notes on the consumer endpoint of a service whose balancers are not known statically: %+v", got)
	}
}
