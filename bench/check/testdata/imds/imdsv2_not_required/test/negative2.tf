# The account and region require tokens for every instance that sets none.
resource "aws_ec2_instance_metadata_defaults" "this" {
  http_tokens                 = "required"
  http_put_response_hop_limit = 2
}

resource "aws_instance" "unset" {
  ami                         = "ami-0123456789abcdef0"
  instance_type               = "t3.micro"
  associate_public_ip_address = false
}

resource "aws_launch_template" "unset" {
  name_prefix = "app-"
  image_id    = "ami-0123456789abcdef0"
}
