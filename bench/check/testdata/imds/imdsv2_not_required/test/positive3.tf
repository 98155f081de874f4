# An account default without preference leaves instances to their AMI; an
# AMI found by a lookup that may return images not registered for IMDSv2
# only (here Canonical's Ubuntu) is not known to require tokens.
resource "aws_ec2_instance_metadata_defaults" "this" {
  http_tokens = "no-preference"
}

data "aws_ami" "ubuntu" {
  most_recent = true
  owners      = ["099720109477"]
  filter {
    name   = "name"
    values = ["ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*"]
  }
}

resource "aws_instance" "from_data_ami" {
  ami                         = data.aws_ami.ubuntu.id
  instance_type               = "t3.micro"
  associate_public_ip_address = false
}
