# IMDSv1 still answers: http_tokens is "optional".
resource "aws_instance" "app" {
  ami           = "ami-12345678"
  instance_type = "t3.micro"
  associate_public_ip_address = false
  metadata_options {
    http_tokens = "optional"
  }
  root_block_device {
    encrypted = true
  }
}
