resource "aws_elb" "web" {
  name               = "web"
  availability_zones = ["eu-west-1a"]
  listener {
    instance_port      = 8080
    instance_protocol  = "http"
    lb_port            = 443
    lb_protocol        = "https"
    ssl_certificate_id = "arn:aws:iam::123456789012:server-certificate/web"
  }
}
