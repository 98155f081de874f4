# An instance that names no subnet and lists a group read from a data
# source beside one of its own: its subnet is a default VPC's and its
# groups are not known statically.
data "aws_security_group" "shared" {
  name = "shared"
}
resource "aws_security_group" "web" {
  ingress {
    protocol    = "tcp"
    from_port   = 443
    to_port     = 443
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_instance" "app" {
  ami                    = "ami-0123456789abcdef0"
  instance_type          = "t3.small"
  vpc_security_group_ids = [aws_security_group.web.id, data.aws_security_group.shared.id]
  metadata_options {
    http_tokens = "required"
  }
}
