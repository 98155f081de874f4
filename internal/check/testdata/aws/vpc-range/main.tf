# A VPC whose range is a variable without a value, and a peer VPC looked
# up by ID. In the public subnet, a build host whose group admits SSH
# from its own VPC's range and the peer's, and a relay whose group admits
# SSH from the ranges of the app subnets. Each such range is a VPC's or a
# subnet's: a /16 at most, wherever it is.
variable "network" {
  type = string
}
variable "peer_vpc" {
  type = string
}
data "aws_vpc" "peer" {
  id = var.peer_vpc
}
resource "aws_vpc" "build" {
  cidr_block = var.network
}
resource "aws_internet_gateway" "build" {
  vpc_id = aws_vpc.build.id
}
resource "aws_subnet" "edge" {
  vpc_id                  = aws_vpc.build.id
  cidr_block              = cidrsubnet(var.network, 4, 0)
  map_public_ip_on_launch = true
}
resource "aws_subnet" "app" {
  count      = 2
  vpc_id     = aws_vpc.build.id
  cidr_block = cidrsubnet(var.network, 4, count.index + 1)
}
resource "aws_route_table" "edge" {
  vpc_id = aws_vpc.build.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.build.id
  }
}
resource "aws_route_table_association" "edge" {
  subnet_id      = aws_subnet.edge.id
  route_table_id = aws_route_table.edge.id
}
resource "aws_security_group" "builder" {
  vpc_id = aws_vpc.build.id
  ingress {
    protocol    = "tcp"
    from_port   = 22
    to_port     = 22
    cidr_blocks = [aws_vpc.build.cidr_block, data.aws_vpc.peer.cidr_block]
  }
}
resource "aws_security_group" "relay" {
  vpc_id = aws_vpc.build.id
  ingress {
    protocol    = "tcp"
    from_port   = 22
    to_port     = 22
    cidr_blocks = aws_subnet.app[*].cidr_block
  }
}
resource "aws_instance" "builder" {
  ami                    = "ami-0fedcba9876543210"
  instance_type          = "t3.small"
  subnet_id              = aws_subnet.edge.id
  vpc_security_group_ids = [aws_security_group.builder.id]
  metadata_options {
    http_tokens = "required"
  }
}
resource "aws_instance" "relay" {
  ami                    = "ami-0fedcba9876543210"
  instance_type          = "t3.small"
  subnet_id              = aws_subnet.edge.id
  vpc_security_group_ids = [aws_security_group.relay.id]
  metadata_options {
    http_tokens = "required"
  }
}
