variable "vpc" {}
variable "range" {}

resource "aws_security_group" "admin" {
  vpc_id = var.vpc
  ingress {
    protocol    = "tcp"
    from_port   = 3389
    to_port     = 3389
    cidr_blocks = [var.range]
  }
}
