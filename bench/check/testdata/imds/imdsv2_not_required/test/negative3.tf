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
