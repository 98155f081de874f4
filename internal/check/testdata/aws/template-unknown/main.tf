# The instance and the groups launch from templates not known statically:
# a module input without a value, or a template made elsewhere. Such a
# template may say anything of public addresses and security groups. The
# public subnet maps public addresses and is routed to an internet gateway;
# the private one does neither.
variable "lt_id" {
  type = string
}

resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
}

resource "aws_internet_gateway" "igw" {
  vpc_id = aws_vpc.main.id
}

resource "aws_subnet" "public" {
  vpc_id                  = aws_vpc.main.id
  cidr_block              = "10.0.1.0/24"
  map_public_ip_on_launch = true
}

resource "aws_subnet" "private" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.2.0/24"
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.igw.id
  }
}

resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}

resource "aws_security_group" "ssh" {
  name   = "ssh"
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_instance" "web" {
  subnet_id              = aws_subnet.public.id
  vpc_security_group_ids = [aws_security_group.ssh.id]
  launch_template {
    id = var.lt_id
  }
}

resource "aws_autoscaling_group" "web" {
  min_size            = 1
  max_size            = 2
  vpc_zone_identifier = [aws_subnet.public.id]
  launch_template {
    id = var.lt_id
  }
}

resource "aws_autoscaling_group" "elsewhere" {
  min_size            = 1
  max_size            = 2
  vpc_zone_identifier = [aws_subnet.public.id]
  launch_template {
    name = "web-template"
  }
}

resource "aws_autoscaling_group" "private" {
  min_size            = 1
  max_size            = 2
  vpc_zone_identifier = [aws_subnet.private.id]
  launch_template {
    id = var.lt_id
  }
}
