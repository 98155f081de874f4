# An admin's instance in a public subnet admits SSH and every other port
# from "my IP": a /32 the http data source finds at plan time, not known
# statically. Beside it, one admitting SSH from a variable without a value,
# which may be any range, and an ACL admitting SSH from an office's /24
# whose address is a variable's.
variable "admin_cidr" {
  type = string
}
variable "office" {
  type = string
}
data "http" "myip" {
  url = "https://checkip.amazonaws.com"
}
locals {
  my_ip = "${chomp(data.http.myip.response_body)}/32"
}
resource "aws_vpc" "main" {
  cidr_block = "10.93.0.0/16"
}
resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
}
resource "aws_subnet" "public" {
  vpc_id                  = aws_vpc.main.id
  cidr_block              = "10.93.1.0/24"
  map_public_ip_on_launch = true
}
resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.main.id
  }
}
resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}
resource "aws_network_acl" "public" {
  vpc_id     = aws_vpc.main.id
  subnet_ids = [aws_subnet.public.id]
  ingress {
    rule_no    = 100
    action     = "allow"
    protocol   = "tcp"
    from_port  = 22
    to_port    = 22
    cidr_block = "${var.office}.0/24"
  }
  ingress {
    rule_no    = 200
    action     = "allow"
    protocol   = "-1"
    from_port  = 0
    to_port    = 0
    cidr_block = local.my_ip
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
resource "aws_security_group" "mine" {
  vpc_id = aws_vpc.main.id
  ingress {
    protocol    = "-1"
    from_port   = 0
    to_port     = 0
    cidr_blocks = [local.my_ip]
  }
}
resource "aws_security_group" "any" {
  vpc_id = aws_vpc.main.id
  ingress {
    protocol    = "tcp"
    from_port   = 22
    to_port     = 22
    cidr_blocks = [var.admin_cidr]
  }
}
resource "aws_instance" "mine" {
  ami                    = "ami-0abcdef1234567890"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.public.id
  vpc_security_group_ids = [aws_security_group.mine.id]
  metadata_options {
    http_tokens = "required"
  }
}
resource "aws_instance" "any" {
  ami                    = "ami-0abcdef1234567890"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.public.id
  vpc_security_group_ids = [aws_security_group.any.id]
  metadata_options {
    http_tokens = "required"
  }
}
# A cluster whose public API endpoint admits "my IP" alone.
resource "aws_eks_cluster" "mine" {
  name     = "mine"
  role_arn = "arn:aws:iam::123456789012:role/eks"
  vpc_config {
    subnet_ids          = [aws_subnet.public.id]
    public_access_cidrs = [local.my_ip]
  }
}
# In a public subnet under the VPC's default ACL, an instance behind the
# group admitting "my IP" and a group given by a variable, which may admit
# anything.
variable "extra_sg" {
  type = string
}
resource "aws_subnet" "open" {
  vpc_id                  = aws_vpc.main.id
  cidr_block              = "10.93.2.0/24"
  map_public_ip_on_launch = true
}
resource "aws_route_table_association" "open" {
  subnet_id      = aws_subnet.open.id
  route_table_id = aws_route_table.public.id
}
resource "aws_instance" "mixed" {
  ami                    = "ami-0abcdef1234567890"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.open.id
  vpc_security_group_ids = [aws_security_group.mine.id, var.extra_sg]
  metadata_options {
    http_tokens = "required"
  }
}
