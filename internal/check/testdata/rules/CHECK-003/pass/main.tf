# Network addresses of the right family.
resource "aws_security_group" "admin" {
  name = "admin"

  ingress {
    from_port        = 22
    to_port          = 22
    protocol         = "tcp"
    cidr_blocks      = ["10.0.0.0/8"]
    ipv6_cidr_blocks = ["fd00::/8"]
  }
}
