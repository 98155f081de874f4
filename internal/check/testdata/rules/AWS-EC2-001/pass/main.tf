resource "aws_launch_template" "web" {
  image_id = "ami-12345678"
  network_interfaces {
    associate_public_ip_address = false
  }
  metadata_options {
    http_tokens = "required"
  }
}
