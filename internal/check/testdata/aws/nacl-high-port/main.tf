# A public subnet whose network ACL admits the world on the ephemeral
# range, as return traffic needs, and by a rule of its own on PostgreSQL's
# port; Redis only from the company range.
resource "aws_vpc" "edge" {
  cidr_block = "10.70.0.0/16"
}
resource "aws_internet_gateway" "edge" {
  vpc_id = aws_vpc.edge.id
}
resource "aws_route_table" "public" {
  vpc_id = aws_vpc.edge.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.edge.id
  }
}
resource "aws_subnet" "public" {
  vpc_id                  = aws_vpc.edge.id
  cidr_block              = "10.70.1.0/24"
  map_public_ip_on_launch = true
}
resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}
resource "aws_network_acl" "public" {
  vpc_id     = aws_vpc.edge.id
  subnet_ids = [aws_subnet.public.id]
  ingress {
    rule_no    = 100
    action     = "allow"
    protocol   = "tcp"
    from_port  = 1024
    to_port    = 65535
    cidr_block = "0.0.0.0/0"
  }
  ingress {
    rule_no    = 110
    action     = "allow"
    protocol   = "tcp"
    from_port  = 5432
    to_port    = 5432
    cidr_block = "0.0.0.0/0"
  }
  ingress {
    rule_no    = 120
    action     = "allow"
    protocol   = "tcp"
    from_port  = 6379
    to_port    = 6379
    cidr_block = "172.20.0.0/16"
  }
  ingress {
    rule_no    = 130
    action     = "allow"
    protocol   = "tcp"
    from_port  = 443
    to_port    = 443
    cidr_block = "0.0.0.0/0"
  }
  egress {
    rule_no    = 100
    action     = "allow"
    protocol   = "-1"
    from_port  = 0
    to_port    = 0
    cidr_block = "0.0.0.0/0"
  }
}
resource "aws_security_group" "web" {
  vpc_id = aws_vpc.edge.id
  ingress {
    protocol    = "tcp"
    from_port   = 443
    to_port     = 443
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_instance" "web" {
  ami                    = "ami-0a0b0c0d0e0f01234"
  instance_type          = "t3.small"
  subnet_id              = aws_subnet.public.id
  vpc_security_group_ids = [aws_security_group.web.id]
  metadata_options {
    http_tokens = "required"
  }
}
