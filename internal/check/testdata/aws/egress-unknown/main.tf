# A group whose rules take their ranges from an input without a value:
# the ingress rule's source and the egress rules' destinations.
variable "allowed" {
  type = string
}

resource "aws_security_group" "app" {
  name = "app"
  ingress {
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = [var.allowed]
  }
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = [var.allowed]
  }
}

resource "aws_vpc_security_group_egress_rule" "extra" {
  security_group_id = aws_security_group.app.id
  cidr_ipv4         = var.allowed
  ip_protocol       = "-1"
}
