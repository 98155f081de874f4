# The group names no subnet: its launch template's network interface
# places its instances in a subnet that maps public addresses and is routed
# to an internet gateway, behind a group that opens SSH to the world.
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

resource "aws_launch_template" "web" {
  image_id      = "ami-12345678"
  instance_type = "t3.micro"
  network_interfaces {
    subnet_id       = aws_subnet.public.id
    security_groups = [aws_security_group.ssh.id]
  }
  metadata_options {
    http_tokens = "required"
  }
}

resource "aws_autoscaling_group" "web" {
  min_size = 1
  max_size = 2
  launch_template {
    id      = aws_launch_template.web.id
    version = "$Latest"
  }
}

resource "aws_instance" "web" {
  launch_template {
    id = aws_launch_template.web.id
  }
}

# The interface's subnet is a module input without a value: it may map
# public addresses. The quiet template's interface says it takes none.
variable "subnet_id" {
  type = string
}

resource "aws_launch_template" "input" {
  image_id      = "ami-12345678"
  instance_type = "t3.micro"
  network_interfaces {
    subnet_id       = var.subnet_id
    security_groups = [aws_security_group.ssh.id]
  }
  metadata_options {
    http_tokens = "required"
  }
}

resource "aws_autoscaling_group" "input" {
  min_size = 1
  max_size = 2
  launch_template {
    id = aws_launch_template.input.id
  }
}

resource "aws_launch_template" "quiet" {
  image_id      = "ami-12345678"
  instance_type = "t3.micro"
  network_interfaces {
    subnet_id                   = aws_subnet.public.id
    security_groups             = [aws_security_group.ssh.id]
    associate_public_ip_address = "false"
  }
  metadata_options {
    http_tokens = "required"
  }
}

resource "aws_autoscaling_group" "quiet" {
  min_size = 1
  max_size = 2
  launch_template {
    id = aws_launch_template.quiet.id
  }
}
