# One group per web server, counted by a variable the configuration does
# not give: each server takes the group of its own index. The groups admit
# HTTPS from the VPC alone.
variable "servers" {
  type = number
}
resource "aws_vpc" "main" {
  cidr_block = "10.80.0.0/16"
}
resource "aws_internet_gateway" "gw" {
  vpc_id = aws_vpc.main.id
}
resource "aws_subnet" "web" {
  vpc_id                  = aws_vpc.main.id
  cidr_block              = "10.80.1.0/24"
  map_public_ip_on_launch = true
}
resource "aws_route_table" "web" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.gw.id
  }
}
resource "aws_route_table_association" "web" {
  subnet_id      = aws_subnet.web.id
  route_table_id = aws_route_table.web.id
}
resource "aws_security_group" "web" {
  count  = var.servers
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["10.80.0.0/16"]
  }
}
resource "aws_instance" "web" {
  count                  = var.servers
  ami                    = "ami-12345678"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.web.id
  vpc_security_group_ids = [aws_security_group.web[count.index].id]
}
