# A bastion admitting SSH from the office's prefix list, defined here, and
# RDP from a prefix list named by its ID, whose ranges AWS holds.
resource "aws_vpc" "main" {
  cidr_block = "10.90.0.0/16"
}
resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
}
resource "aws_subnet" "public" {
  vpc_id                  = aws_vpc.main.id
  cidr_block              = "10.90.1.0/24"
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
resource "aws_ec2_managed_prefix_list" "office" {
  name           = "office"
  address_family = "IPv4"
  max_entries    = 2
  entry {
    cidr        = "198.51.100.0/24"
    description = "head office"
  }
}
resource "aws_security_group" "bastion" {
  vpc_id = aws_vpc.main.id
}
resource "aws_vpc_security_group_ingress_rule" "ssh" {
  security_group_id = aws_security_group.bastion.id
  prefix_list_id    = aws_ec2_managed_prefix_list.office.id
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
}
resource "aws_vpc_security_group_ingress_rule" "rdp" {
  security_group_id = aws_security_group.bastion.id
  prefix_list_id    = "pl-0a1b2c3d4e5f67890"
  ip_protocol       = "tcp"
  from_port         = 3389
  to_port           = 3389
}
resource "aws_instance" "bastion" {
  ami                    = "ami-0abcdef1234567890"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.public.id
  vpc_security_group_ids = [aws_security_group.bastion.id]
  metadata_options {
    http_tokens = "required"
  }
}
# An origin behind CloudFront: its group admits 8080 from the list of
# CloudFront's origin-facing servers, which AWS manages, looked up by name
# and by a filter; and 9000 from a list found by another filter, which may
# be any list.
data "aws_ec2_managed_prefix_list" "cloudfront" {
  name = "com.amazonaws.global.cloudfront.origin-facing"
}
data "aws_ec2_managed_prefix_list" "cloudfront_filtered" {
  filter {
    name   = "prefix-list-name"
    values = ["com.amazonaws.global.cloudfront.origin-facing"]
  }
}
data "aws_ec2_managed_prefix_list" "tagged" {
  filter {
    name   = "tag:team"
    values = ["edge"]
  }
}
resource "aws_security_group" "origin" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port       = 8080
    to_port         = 8080
    protocol        = "tcp"
    prefix_list_ids = [data.aws_ec2_managed_prefix_list.cloudfront.id]
  }
  ingress {
    from_port       = 8081
    to_port         = 8081
    protocol        = "tcp"
    prefix_list_ids = [data.aws_ec2_managed_prefix_list.cloudfront_filtered.id]
  }
  ingress {
    from_port       = 9000
    to_port         = 9000
    protocol        = "tcp"
    prefix_list_ids = [data.aws_ec2_managed_prefix_list.tagged.id]
  }
}
resource "aws_instance" "origin" {
  ami                    = "ami-0abcdef1234567890"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.public.id
  vpc_security_group_ids = [aws_security_group.origin.id]
  metadata_options {
    http_tokens = "required"
  }
}
