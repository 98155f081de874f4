resource "aws_instance" "app" {
  ami           = "ami-12345678"
  instance_type = "t3.micro"
  associate_public_ip_address = false
  metadata_options {
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }
  root_block_device {
    encrypted = true
  }
}
