# TLS policies given at apply time: each is read at its worst, TLS 1.0.
variable "policy" {
  type = string
}
resource "aws_lb" "web" {
  load_balancer_type = "application"
  internal           = true
  subnets            = ["subnet-0a1b2c3d"]
}
resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.web.arn
  port              = 443
  protocol          = "HTTPS"
  certificate_arn   = "arn:aws:acm:eu-west-1:123456789012:certificate/abc"
  ssl_policy        = var.policy
  default_action {
    type = "fixed-response"
    fixed_response {
      content_type = "text/plain"
      status_code  = "200"
    }
  }
}
resource "aws_opensearch_domain" "search" {
  domain_name = "search"
  domain_endpoint_options {
    enforce_https       = true
    tls_security_policy = var.policy
  }
}
