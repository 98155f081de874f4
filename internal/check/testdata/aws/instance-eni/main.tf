# A VPN server whose primary network interface is a resource of its own,
# with an Elastic IP, and a second interface attached by an attachment
# resource: --reach on the instance lists what reaches its interfaces.
resource "aws_vpc" "vpn" {
  cidr_block = "10.9.0.0/16"
}

resource "aws_internet_gateway" "gw" {
  vpc_id = aws_vpc.vpn.id
}

resource "aws_subnet" "edge" {
  vpc_id     = aws_vpc.vpn.id
  cidr_block = "10.9.1.0/24"
}

resource "aws_route_table" "edge" {
  vpc_id = aws_vpc.vpn.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.gw.id
  }
}

resource "aws_route_table_association" "edge" {
  subnet_id      = aws_subnet.edge.id
  route_table_id = aws_route_table.edge.id
}

resource "aws_security_group" "vpn" {
  name   = "vpn"
  vpc_id = aws_vpc.vpn.id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_security_group" "inside" {
  name   = "inside"
  vpc_id = aws_vpc.vpn.id
  ingress {
    from_port   = 9100
    to_port     = 9100
    protocol    = "tcp"
    cidr_blocks = ["10.9.0.0/16"]
  }
}

resource "aws_network_interface" "primary" {
  subnet_id       = aws_subnet.edge.id
  security_groups = [aws_security_group.vpn.id]
}

resource "aws_network_interface" "second" {
  subnet_id       = aws_subnet.edge.id
  security_groups = [aws_security_group.inside.id]
}

resource "aws_eip" "vpn" {
  domain            = "vpc"
  network_interface = aws_network_interface.primary.id
}

resource "aws_instance" "vpn" {
  ami           = "ami-12345678"
  instance_type = "t3.small"
  network_interface {
    device_index         = 0
    network_interface_id = aws_network_interface.primary.id
  }
}

resource "aws_network_interface_attachment" "second" {
  instance_id          = aws_instance.vpn.id
  network_interface_id = aws_network_interface.second.id
  device_index         = 1
}
