# The public subnet's own network ACL admits HTTPS alone. An association
# gives an ACL that admits everything to a subnet from a variable the
# project does not set: that may be the public subnet, which SSH then
# reaches.
variable "subnet_id" { type = string }
resource "aws_vpc" "main" {
  cidr_block = "10.73.0.0/16"
}
resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
}
resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.main.id
  }
}
resource "aws_subnet" "public" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.73.1.0/24"
}
resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}
resource "aws_network_acl" "strict" {
  vpc_id     = aws_vpc.main.id
  subnet_ids = [aws_subnet.public.id]
  ingress {
    rule_no    = 100
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
resource "aws_network_acl" "open" {
  vpc_id = aws_vpc.main.id
  ingress {
    rule_no    = 100
    action     = "allow"
    protocol   = "-1"
    from_port  = 0
    to_port    = 0
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
resource "aws_network_acl_association" "open" {
  network_acl_id = aws_network_acl.open.id
  subnet_id      = var.subnet_id
}
resource "aws_security_group" "ssh" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_instance" "bastion" {
  ami                         = "ami-12345678"
  instance_type               = "t3.micro"
  subnet_id                   = aws_subnet.public.id
  associate_public_ip_address = true
  vpc_security_group_ids      = [aws_security_group.ssh.id]
}

# In another VPC, an association names a strict ACL for a subnet the
# project does not set: it can only narrow, never admit more than the
# edge subnet's own ACL, which turns SSH away; SSH stays blocked there.
resource "aws_vpc" "other" {
  cidr_block = "10.74.0.0/16"
}
resource "aws_internet_gateway" "other" {
  vpc_id = aws_vpc.other.id
}
resource "aws_route_table" "edge" {
  vpc_id = aws_vpc.other.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.other.id
  }
}
resource "aws_subnet" "edge" {
  vpc_id     = aws_vpc.other.id
  cidr_block = "10.74.1.0/24"
}
resource "aws_route_table_association" "edge" {
  subnet_id      = aws_subnet.edge.id
  route_table_id = aws_route_table.edge.id
}
resource "aws_network_acl" "edge" {
  vpc_id     = aws_vpc.other.id
  subnet_ids = [aws_subnet.edge.id]
  ingress {
    rule_no    = 100
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
resource "aws_network_acl" "stricter" {
  vpc_id = aws_vpc.other.id
}
resource "aws_network_acl_association" "stricter" {
  network_acl_id = aws_network_acl.stricter.id
  subnet_id      = var.subnet_id
}
resource "aws_security_group" "edge_ssh" {
  vpc_id = aws_vpc.other.id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_instance" "edge" {
  ami                         = "ami-12345678"
  instance_type               = "t3.micro"
  subnet_id                   = aws_subnet.edge.id
  associate_public_ip_address = true
  vpc_security_group_ids      = [aws_security_group.edge_ssh.id]
}
