# A module that adds a public subnet and a bastion to a VPC it is given:
# the VPC, its main route table and its internet gateway are elsewhere.
variable "vpc_id" {}

resource "aws_subnet" "bastion" {
  vpc_id                  = var.vpc_id
  cidr_block              = "10.140.9.0/24"
  map_public_ip_on_launch = true
}
resource "aws_security_group" "bastion" {
  vpc_id = var.vpc_id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_instance" "bastion" {
  ami                    = "ami-0abcdef1234567890"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.bastion.id
  vpc_security_group_ids = [aws_security_group.bastion.id]
  metadata_options {
    http_tokens = "required"
  }
}
