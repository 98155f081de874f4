variable "vpc_id" {
  type = string
}

variable "subnet_id" {
  type = string
}

variable "ops_sg_id" {
  type = string
}

data "aws_vpc" "this" {
  id = var.vpc_id
}

data "aws_subnet" "this" {
  id = var.subnet_id
}

data "aws_security_group" "ops" {
  id = var.ops_sg_id
}

resource "aws_security_group" "app" {
  vpc_id = data.aws_vpc.this.id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_instance" "this" {
  ami                         = "ami-12345678"
  instance_type               = "t3.micro"
  subnet_id                   = data.aws_subnet.this.id
  associate_public_ip_address = true
  vpc_security_group_ids      = [aws_security_group.app.id, data.aws_security_group.ops.id]
}
