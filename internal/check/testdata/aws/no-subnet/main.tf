# An instance that names no subnet, behind a group that names no VPC: AWS
# launches it in a default subnet of the default VPC, which the project
# does not adopt.
resource "aws_security_group" "ssh" {
  ingress {
    protocol    = "tcp"
    from_port   = 22
    to_port     = 22
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_instance" "box" {
  ami                    = "ami-0abcdef1234567890"
  instance_type          = "t3.micro"
  vpc_security_group_ids = [aws_security_group.ssh.id]
  metadata_options {
    http_tokens = "required"
  }
}
