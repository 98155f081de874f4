# A bastion admitting SSH from the office's prefix list. An entry for the
# whole internet is added to a list chosen by a variable without a value:
# it may be the office's, so SSH may be open to every address.
variable "list_id" {
  type = string
}
resource "aws_vpc" "main" {
  cidr_block = "10.91.0.0/16"
}
resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
}
resource "aws_subnet" "public" {
  vpc_id                  = aws_vpc.main.id
  cidr_block              = "10.91.1.0/24"
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
  max_entries    = 4
  entry {
    cidr = "198.51.100.0/24"
  }
}
resource "aws_ec2_managed_prefix_list" "vendors" {
  name           = "vendors"
  address_family = "IPv4"
  max_entries    = 4
}
resource "aws_ec2_managed_prefix_list_entry" "anywhere" {
  prefix_list_id = var.list_id
  cidr           = "0.0.0.0/0"
}
resource "aws_security_group" "bastion" {
  vpc_id = aws_vpc.main.id
  ingress {
    protocol        = "tcp"
    from_port       = 22
    to_port         = 22
    prefix_list_ids = [aws_ec2_managed_prefix_list.office.id]
  }
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
