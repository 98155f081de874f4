# IPv6 ranges: one regional registry's block is wider than any one network
# holds (a /13 at most), and so are a /13 and a /14 together; one network's /32,
# or a /13 alone, is not.
resource "aws_security_group" "registry" {
  vpc_id = "vpc-12345678"
  ingress {
    from_port        = 22
    to_port          = 22
    protocol         = "tcp"
    ipv6_cidr_blocks = ["2600::/12"]
  }
}
resource "aws_vpc_security_group_ingress_rule" "halves" {
  security_group_id = aws_security_group.split.id
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 5432
  cidr_ipv6         = "2a00::/13"
}
resource "aws_vpc_security_group_ingress_rule" "other_half" {
  security_group_id = aws_security_group.split.id
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 5432
  cidr_ipv6         = "2a08::/14"
}
resource "aws_security_group" "split" {
  vpc_id = "vpc-12345678"
}
resource "aws_security_group" "one_network" {
  vpc_id = "vpc-12345678"
  ingress {
    from_port        = 22
    to_port          = 22
    protocol         = "tcp"
    ipv6_cidr_blocks = ["2a00:1450::/32"]
  }
}
resource "aws_security_group" "largest_network" {
  vpc_id = "vpc-12345678"
  ingress {
    from_port        = 22
    to_port          = 22
    protocol         = "tcp"
    ipv6_cidr_blocks = ["2600::/13"]
  }
}
