# An instance whose image, zone, start-up script, tags and description come
# from sources the files do not show, and one security group rule whose
# source range does too. Only the range feeds the network model; a local
# and an output pass unknowns on to where they are read, or to nothing.
variable "image" {}
variable "zone" {}
variable "owner" {}
variable "admin_range" {}

data "aws_ami" "base" {
  most_recent = true
  owners      = ["amazon"]
}

resource "aws_vpc" "app" {
  cidr_block = "10.20.0.0/16"
  tags       = { Owner = var.owner }
}

resource "aws_subnet" "app" {
  vpc_id            = aws_vpc.app.id
  cidr_block        = "10.20.1.0/24"
  availability_zone = var.zone
  tags              = { Owner = var.owner }
}

resource "aws_security_group" "app" {
  vpc_id      = aws_vpc.app.id
  description = "app servers of ${var.owner}"
  tags        = { Owner = var.owner }
}

resource "aws_security_group_rule" "ssh" {
  security_group_id = aws_security_group.app.id
  type              = "ingress"
  protocol          = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_blocks       = [var.admin_range]
  description       = "admins of ${var.owner}"
}

resource "aws_instance" "app" {
  ami                    = data.aws_ami.base.id
  instance_type          = "t3.micro"
  availability_zone      = var.zone
  subnet_id              = aws_subnet.app.id
  vpc_security_group_ids = [aws_security_group.app.id]
  user_data              = templatefile("${path.module}/boot.sh", { owner = var.owner })
  metadata_options {
    http_tokens = "required"
  }
  tags = { Name = local.label }
}

locals {
  label = "app-${var.owner}"
}

output "app_address" {
  value = aws_instance.app.private_ip
}

output "label" {
  value = local.label
}

resource "aws_instance" "spare" {
  ami           = var.image
  instance_type = "t3.micro"
  subnet_id     = aws_subnet.app.id
  metadata_options {
    http_tokens = "required"
  }
}

module "admin" {
  source = "./admin"
  vpc    = aws_vpc.app.id
  range  = var.admin_range
}
