# Fleets launch instances as a scaling group does, from inline launch
# specifications or from launch templates.
resource "aws_vpc" "main" {
  cidr_block = "10.60.0.0/16"
}
resource "aws_internet_gateway" "gw" {
  vpc_id = aws_vpc.main.id
}
resource "aws_subnet" "edge" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.60.1.0/24"
}
resource "aws_subnet" "inner" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.60.2.0/24"
}
resource "aws_route_table" "edge" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.gw.id
  }
}
resource "aws_route_table_association" "edge" {
  subnet_id      = aws_subnet.edge.id
  route_table_id = aws_route_table.edge.id
}
resource "aws_security_group" "ssh_world" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

# Spot workers with public addresses in the routed subnet.
resource "aws_spot_fleet_request" "workers" {
  iam_fleet_role  = "arn:aws:iam::123456789012:role/fleet"
  target_capacity = 2
  launch_specification {
    ami                         = "ami-12345678"
    instance_type               = "t3.small"
    subnet_id                   = aws_subnet.edge.id
    vpc_security_group_ids      = [aws_security_group.ssh_world.id]
    associate_public_ip_address = true
  }
}

# A batch fleet from a template, kept in the unrouted subnet.
resource "aws_launch_template" "batch" {
  image_id               = "ami-12345678"
  vpc_security_group_ids = [aws_security_group.ssh_world.id]
}
resource "aws_ec2_fleet" "batch" {
  launch_template_config {
    launch_template_specification {
      launch_template_id = aws_launch_template.batch.id
      version            = "$Latest"
    }
    override {
      subnet_id = aws_subnet.inner.id
    }
  }
  target_capacity_specification {
    default_target_capacity_type = "on-demand"
    total_target_capacity        = 1
  }
}

# A template that names no subnet: the default VPC's.
resource "aws_ec2_fleet" "loose" {
  launch_template_config {
    launch_template_specification {
      launch_template_id = aws_launch_template.batch.id
      version            = "$Latest"
    }
  }
  target_capacity_specification {
    default_target_capacity_type = "spot"
    total_target_capacity        = 1
  }
}
