# AWS Transfer Family servers. A PUBLIC one (the default) is an endpoint
# AWS runs that every address reaches on SFTP, no security group in the
# way; a VPC one answers in its subnets behind its groups, reached from the
# internet only through the Elastic IPs it names; an endpoint type the
# provider does not take creates nothing.
resource "aws_vpc" "main" {
  cidr_block = "10.40.0.0/16"
}
resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
}
resource "aws_subnet" "public" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.40.1.0/24"
}
resource "aws_subnet" "private" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.40.2.0/24"
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
resource "aws_security_group" "partners" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["198.51.100.0/24"]
  }
}
resource "aws_security_group" "open" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_eip" "sftp" {
  domain = "vpc"
}
resource "aws_transfer_server" "public" {
  identity_provider_type = "SERVICE_MANAGED"
}
resource "aws_transfer_server" "partners" {
  endpoint_type = "VPC"
  protocols     = ["SFTP"]
  endpoint_details {
    vpc_id                 = aws_vpc.main.id
    subnet_ids             = [aws_subnet.public.id]
    address_allocation_ids = [aws_eip.sftp.id]
    security_group_ids     = [aws_security_group.partners.id]
  }
}
resource "aws_transfer_server" "internal" {
  endpoint_type = "VPC"
  endpoint_details {
    vpc_id             = aws_vpc.main.id
    subnet_ids         = [aws_subnet.private.id]
    security_group_ids = [aws_security_group.open.id]
  }
}
resource "aws_transfer_server" "typo" {
  endpoint_type = "PUBlIC"
}
