# A NAT instance in a subnet another configuration makes, admitting SSH
# from one office address.
variable "public_subnet_id" {
  type = string
}

variable "vpc_id" {
  type = string
}

resource "aws_security_group" "nat" {
  vpc_id = var.vpc_id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["198.51.100.7/32"]
  }
}

resource "aws_instance" "nat" {
  ami                         = "ami-0123456789abcdef0"
  instance_type               = "t3.micro"
  subnet_id                   = var.public_subnet_id
  associate_public_ip_address = true
  source_dest_check           = false
  vpc_security_group_ids      = [aws_security_group.nat.id]
  metadata_options {
    http_tokens = "required"
  }
}
