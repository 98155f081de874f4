# The VPC's internet gateway is made outside this configuration: one
# table names it by its ID, another takes it from a variable without a
# value. A third table sends to a VPN gateway, which the internet does not
# come in through.
variable "gateway" {
  type = string
}
resource "aws_vpc" "shop" {
  cidr_block = "10.70.0.0/16"
}
resource "aws_security_group" "admin" {
  vpc_id = aws_vpc.shop.id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_subnet" "written" {
  vpc_id     = aws_vpc.shop.id
  cidr_block = "10.70.1.0/24"
}
resource "aws_route_table" "written" {
  vpc_id = aws_vpc.shop.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = "igw-0f1e2d3c4b5a69788"
  }
}
resource "aws_route_table_association" "written" {
  subnet_id      = aws_subnet.written.id
  route_table_id = aws_route_table.written.id
}
resource "aws_instance" "written" {
  ami                         = "ami-12345678"
  instance_type               = "t3.micro"
  subnet_id                   = aws_subnet.written.id
  associate_public_ip_address = true
  vpc_security_group_ids      = [aws_security_group.admin.id]
}

resource "aws_subnet" "given" {
  vpc_id     = aws_vpc.shop.id
  cidr_block = "10.70.2.0/24"
}
resource "aws_route_table" "given" {
  vpc_id = aws_vpc.shop.id
}
resource "aws_route" "given" {
  route_table_id         = aws_route_table.given.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = var.gateway
}
resource "aws_route_table_association" "given" {
  subnet_id      = aws_subnet.given.id
  route_table_id = aws_route_table.given.id
}
resource "aws_instance" "given" {
  ami                         = "ami-12345678"
  instance_type               = "t3.micro"
  subnet_id                   = aws_subnet.given.id
  associate_public_ip_address = true
  vpc_security_group_ids      = [aws_security_group.admin.id]
}

resource "aws_subnet" "office" {
  vpc_id     = aws_vpc.shop.id
  cidr_block = "10.70.3.0/24"
}
resource "aws_route_table" "office" {
  vpc_id = aws_vpc.shop.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = "vgw-0a9b8c7d6e5f40312"
  }
}
resource "aws_route_table_association" "office" {
  subnet_id      = aws_subnet.office.id
  route_table_id = aws_route_table.office.id
}
resource "aws_instance" "office" {
  ami                         = "ami-12345678"
  instance_type               = "t3.micro"
  subnet_id                   = aws_subnet.office.id
  associate_public_ip_address = true
  vpc_security_group_ids      = [aws_security_group.admin.id]
}
