# Two IPv6 servers without public IPv4 addresses: one in a subnet whose
# IPv6 default route goes to the internet gateway, one behind an
# egress-only gateway, which lets nothing in; and a server with a public
# IPv4 address and no IPv6 one in the dual-stack subnet.
resource "aws_vpc" "main" {
  cidr_block                       = "10.130.0.0/16"
  assign_generated_ipv6_cidr_block = true
}
resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
}
resource "aws_egress_only_internet_gateway" "out" {
  vpc_id = aws_vpc.main.id
}
resource "aws_subnet" "public" {
  vpc_id                          = aws_vpc.main.id
  cidr_block                      = "10.130.1.0/24"
  ipv6_cidr_block                 = "2001:db8:1234:1a00::/64"
  assign_ipv6_address_on_creation = true
}
resource "aws_subnet" "private" {
  vpc_id          = aws_vpc.main.id
  cidr_block      = "10.130.2.0/24"
  ipv6_cidr_block = "2001:db8:1234:1a01::/64"
}
resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  route {
    ipv6_cidr_block = "::/0"
    gateway_id      = aws_internet_gateway.main.id
  }
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.main.id
  }
}
resource "aws_route_table" "private" {
  vpc_id = aws_vpc.main.id
  route {
    ipv6_cidr_block        = "::/0"
    egress_only_gateway_id = aws_egress_only_internet_gateway.out.id
  }
}
resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}
resource "aws_route_table_association" "private" {
  subnet_id      = aws_subnet.private.id
  route_table_id = aws_route_table.private.id
}
resource "aws_security_group" "ssh" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port        = 22
    to_port          = 22
    protocol         = "tcp"
    cidr_blocks      = ["0.0.0.0/0"]
    ipv6_cidr_blocks = ["::/0"]
  }
}
resource "aws_instance" "public" {
  ami                    = "ami-0abcdef1234567890"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.public.id
  vpc_security_group_ids = [aws_security_group.ssh.id]
  metadata_options {
    http_tokens = "required"
  }
}
resource "aws_instance" "private" {
  ami                    = "ami-0abcdef1234567890"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.private.id
  ipv6_address_count     = 1
  vpc_security_group_ids = [aws_security_group.ssh.id]
  metadata_options {
    http_tokens = "required"
  }
}
resource "aws_instance" "v4" {
  ami                         = "ami-0abcdef1234567890"
  instance_type               = "t3.micro"
  subnet_id                   = aws_subnet.public.id
  associate_public_ip_address = true
  ipv6_address_count          = 0
  vpc_security_group_ids      = [aws_security_group.ssh.id]
  metadata_options {
    http_tokens = "required"
  }
}
