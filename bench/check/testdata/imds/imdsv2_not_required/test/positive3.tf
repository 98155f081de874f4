# An account default without preference leaves instances to their AMI; an
# AMI from outside the project is not known to require tokens.
resource "aws_ec2_instance_metadata_defaults" "this" {
  http_tokens = "no-preference"
}

data "aws_ami" "al2023" {
  most_recent = true
  owners      = ["amazon"]
  filter {
    name   = "name"
    values = ["al2023-ami-*-x86_64"]
  }
}

resource "aws_instance" "from_data_ami" {
  ami                         = data.aws_ami.al2023.id
  instance_type               = "t3.micro"
  associate_public_ip_address = false
}
