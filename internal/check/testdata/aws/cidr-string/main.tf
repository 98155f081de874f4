# cidr_blocks given one string: the provider takes a list, and Terraform
# refuses the plan.
resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
}
resource "aws_security_group" "web" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = "203.0.113.0/24"
  }
}
resource "aws_security_group_rule" "db" {
  type              = "ingress"
  security_group_id = aws_security_group.web.id
  from_port         = 5432
  to_port           = 5432
  protocol          = "tcp"
  ipv6_cidr_blocks  = "2001:db8::/32"
}
