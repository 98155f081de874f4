# The VPC is made by a local module whose range is a variable without a
# value; the module's outputs hand its range and its public subnet on.
# The group admits SSH and an application port from the VPC's range: a
# /16 at most, wherever it is, not the internet.
variable "network" {
  type = string
}

module "net" {
  source  = "./net"
  network = var.network
}

resource "aws_security_group" "internal" {
  vpc_id = module.net.vpc_id
  ingress {
    protocol    = "tcp"
    from_port   = 22
    to_port     = 22
    cidr_blocks = [module.net.vpc_cidr]
  }
  ingress {
    protocol    = "tcp"
    from_port   = 3000
    to_port     = 3000
    cidr_blocks = [module.net.vpc_cidr_try]
  }
}

resource "aws_instance" "app" {
  ami                         = "ami-0fedcba9876543210"
  instance_type               = "t3.small"
  subnet_id                   = module.net.public_subnet
  associate_public_ip_address = true
  vpc_security_group_ids      = [aws_security_group.internal.id]
  metadata_options {
    http_tokens = "required"
  }
}
