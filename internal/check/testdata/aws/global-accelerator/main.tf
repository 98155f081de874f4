# A Global Accelerator in front of an instance in a private subnet (no
# route to an internet gateway): its listener on SSH reaches the
# instance, whose group admits every address, with the client's own
# address preserved.
resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
}
resource "aws_subnet" "private" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.1.0/24"
}
resource "aws_security_group" "admin" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_instance" "admin" {
  ami                    = "ami-12345678"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.private.id
  vpc_security_group_ids = [aws_security_group.admin.id]
  metadata_options {
    http_tokens = "required"
  }
}
resource "aws_globalaccelerator_accelerator" "edge" {
  name            = "edge"
  ip_address_type = "IPV4"
  enabled         = true
}
resource "aws_globalaccelerator_listener" "ssh" {
  accelerator_arn = aws_globalaccelerator_accelerator.edge.id
  protocol        = "TCP"
  port_range {
    from_port = 22
    to_port   = 22
  }
}
resource "aws_globalaccelerator_endpoint_group" "admin" {
  listener_arn = aws_globalaccelerator_listener.ssh.id
  endpoint_configuration {
    endpoint_id                    = aws_instance.admin.id
    client_ip_preservation_enabled = true
  }
}
