# An instance in a public subnet that names its VPC's default security
# group by the VPC's default_security_group_id, a group the project adopts
# (aws_default_security_group) to admit HTTPS from anywhere and its own
# members, nothing else.
resource "aws_vpc" "web" {
  cidr_block = "10.60.0.0/16"
}

resource "aws_internet_gateway" "web" {
  vpc_id = aws_vpc.web.id
}

resource "aws_subnet" "public" {
  vpc_id     = aws_vpc.web.id
  cidr_block = "10.60.1.0/24"
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.web.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.web.id
  }
}

resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}

resource "aws_default_security_group" "web" {
  vpc_id = aws_vpc.web.id
  ingress {
    protocol  = "-1"
    self      = true
    from_port = 0
    to_port   = 0
  }
  ingress {
    protocol    = "tcp"
    from_port   = 443
    to_port     = 443
    cidr_blocks = ["0.0.0.0/0"]
  }
  egress {
    protocol    = "-1"
    from_port   = 0
    to_port     = 0
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_instance" "web" {
  ami                         = "ami-0123456789abcdef0"
  instance_type               = "t3.micro"
  subnet_id                   = aws_subnet.public.id
  associate_public_ip_address = true
  vpc_security_group_ids      = [aws_vpc.web.default_security_group_id]
  metadata_options {
    http_tokens = "required"
  }
}
