# Instances with public addresses in subnets given from outside (a module's
# inputs, without values here). A bastion takes its address at launch; a
# NAT instance takes an Elastic IP on the interface it attaches first.
variable "vpc_id" {}
variable "public_subnet_id" {}

resource "aws_security_group" "bastion" {
  vpc_id = var.vpc_id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
  ingress {
    from_port   = 3389
    to_port     = 3389
    protocol    = "tcp"
    cidr_blocks = ["10.0.0.0/8"]
  }
}
resource "aws_instance" "bastion" {
  ami                         = "ami-0abcdef1234567890"
  instance_type               = "t3.micro"
  subnet_id                   = var.public_subnet_id
  associate_public_ip_address = true
  vpc_security_group_ids      = [aws_security_group.bastion.id]
  metadata_options {
    http_tokens = "required"
  }
}

resource "aws_security_group" "nat" {
  vpc_id = var.vpc_id
  ingress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_network_interface" "nat" {
  subnet_id         = var.public_subnet_id
  source_dest_check = false
  security_groups   = [aws_security_group.nat.id]
}
resource "aws_instance" "nat" {
  ami           = "ami-0abcdef1234567890"
  instance_type = "t3.nano"
  network_interface {
    network_interface_id = aws_network_interface.nat.id
    device_index         = 0
  }
  metadata_options {
    http_tokens = "required"
  }
}
resource "aws_eip" "nat" {
  instance = aws_instance.nat.id
  domain   = "vpc"
}
