# The subnets of the bastion, the group and the quiet instance are module
# inputs without values here, or an ID of a subnet made elsewhere: any of
# them may be a default subnet or one with map_public_ip_on_launch = true.
# The quiet instance says it takes no public address.
variable "subnet_id" {
  type = string
}
variable "subnet_ids" {
  type = list(string)
}

resource "aws_security_group" "ssh" {
  name = "ssh"
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_instance" "bastion" {
  ami                    = "ami-12345678"
  instance_type          = "t3.micro"
  subnet_id              = var.subnet_id
  vpc_security_group_ids = [aws_security_group.ssh.id]
  metadata_options {
    http_tokens = "required"
  }
}

resource "aws_instance" "elsewhere" {
  ami                    = "ami-12345678"
  instance_type          = "t3.micro"
  subnet_id              = "subnet-0123456789abcdef0"
  vpc_security_group_ids = [aws_security_group.ssh.id]
  metadata_options {
    http_tokens = "required"
  }
}

resource "aws_instance" "quiet" {
  ami                         = "ami-12345678"
  instance_type               = "t3.micro"
  subnet_id                   = var.subnet_id
  associate_public_ip_address = false
  vpc_security_group_ids      = [aws_security_group.ssh.id]
  metadata_options {
    http_tokens = "required"
  }
}

resource "aws_launch_template" "web" {
  image_id               = "ami-12345678"
  instance_type          = "t3.micro"
  vpc_security_group_ids = [aws_security_group.ssh.id]
  metadata_options {
    http_tokens = "required"
  }
}

resource "aws_autoscaling_group" "web" {
  min_size            = 1
  max_size            = 2
  vpc_zone_identifier = var.subnet_ids
  launch_template {
    id      = aws_launch_template.web.id
    version = "$Latest"
  }
}

# EKS opens SSH to the world for remote_access without source groups.
resource "aws_eks_node_group" "nodes" {
  cluster_name    = "main"
  node_group_name = "nodes"
  node_role_arn   = "arn:aws:iam::123456789012:role/nodes"
  subnet_ids      = var.subnet_ids
  scaling_config {
    desired_size = 1
    min_size     = 1
    max_size     = 2
  }
  remote_access {
    ec2_ssh_key = "ops"
  }
}
