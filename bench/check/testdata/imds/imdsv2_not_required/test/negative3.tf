# Instances that take required tokens from their AMI or their template.
resource "aws_ami" "v2" {
  name                = "app-v2"
  imds_support        = "v2.0"
  root_device_name    = "/dev/xvda"
  virtualization_type = "hvm"
  ebs_block_device {
    device_name = "/dev/xvda"
    snapshot_id = "snap-0123456789abcdef0"
  }
}

resource "aws_instance" "from_v2_ami" {
  ami                         = aws_ami.v2.id
  instance_type               = "t3.micro"
  associate_public_ip_address = false
}

resource "aws_launch_template" "from_v2_ami" {
  name_prefix = "v2-"
  image_id    = aws_ami.v2.id
}

resource "aws_launch_template" "required" {
  name_prefix = "strict-"
  image_id    = "ami-0123456789abcdef0"
  metadata_options {
    http_tokens = "required"
  }
}

resource "aws_instance" "from_template" {
  associate_public_ip_address = false
  launch_template {
    id      = aws_launch_template.required.id
    version = "$Latest"
  }
}

# Amazon Linux 2023 AMIs are registered with imds_support = "v2.0".
data "aws_ami" "al2023" {
  most_recent = true
  owners      = ["amazon"]
  filter {
    name   = "name"
    values = ["al2023-ami-2023.*-x86_64"]
  }
}

data "aws_ssm_parameter" "al2023" {
  name = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
}

resource "aws_instance" "from_al2023_lookup" {
  ami                         = data.aws_ami.al2023.id
  instance_type               = "t3.micro"
  associate_public_ip_address = false
}

resource "aws_launch_template" "from_al2023_parameter" {
  name_prefix = "al2023-"
  image_id    = data.aws_ssm_parameter.al2023.value
}
