# TCP listeners pass bytes through unread: what they carry is read from
# the port. plain (NLB, TCP 80 to port 80 targets) and old (classic, TCP
# 80 to instance port 80) carry HTTP in the clear; tls (NLB, TCP 443) and
# passthrough (classic, TCP 443) carry TLS; to_tls (NLB, TCP 8080 to port
# 443 targets) can only carry TLS; dyn, on a port not known statically,
# may be on 80.
variable "port" {
  type = number
}
resource "aws_lb" "nlb" {
  load_balancer_type = "network"
  internal           = true
  subnets            = ["subnet-0a1b2c3d"]
}
resource "aws_lb_target_group" "http" {
  port     = 80
  protocol = "TCP"
  vpc_id   = "vpc-0a1b2c3d"
}
resource "aws_lb_target_group" "https" {
  port     = 443
  protocol = "TCP"
  vpc_id   = "vpc-0a1b2c3d"
}
resource "aws_lb_listener" "plain" {
  load_balancer_arn = aws_lb.nlb.arn
  port              = 80
  protocol          = "TCP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.http.arn
  }
}
resource "aws_lb_listener" "tls" {
  load_balancer_arn = aws_lb.nlb.arn
  port              = 443
  protocol          = "TCP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.https.arn
  }
}
resource "aws_lb_listener" "to_tls" {
  load_balancer_arn = aws_lb.nlb.arn
  port              = 8080
  protocol          = "TCP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.https.arn
  }
}
resource "aws_lb_listener" "dyn" {
  load_balancer_arn = aws_lb.nlb.arn
  port              = var.port
  protocol          = "TCP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.http.arn
  }
}
resource "aws_elb" "old" {
  internal = true
  subnets  = ["subnet-0a1b2c3d"]
  listener {
    lb_port           = 80
    lb_protocol       = "TCP"
    instance_port     = 80
    instance_protocol = "TCP"
  }
}
resource "aws_elb" "passthrough" {
  internal = true
  subnets  = ["subnet-0a1b2c3d"]
  listener {
    lb_port           = 443
    lb_protocol       = "TCP"
    instance_port     = 443
    instance_protocol = "TCP"
  }
}
