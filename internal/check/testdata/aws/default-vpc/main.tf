# A tutorial's web server in the account's default VPC, which the project
# adopts (aws_default_vpc, aws_default_subnet) rather than makes: AWS made
# it with an internet gateway and subnets that give public addresses.
resource "aws_default_vpc" "default" {}
resource "aws_default_subnet" "a" {
  availability_zone = "eu-west-1a"
}
resource "aws_default_subnet" "b" {
  availability_zone       = "eu-west-1b"
  map_public_ip_on_launch = false
}
resource "aws_security_group" "web" {
  vpc_id = aws_default_vpc.default.id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_instance" "a" {
  ami                    = "ami-0abcdef1234567890"
  instance_type          = "t3.micro"
  subnet_id              = aws_default_subnet.a.id
  vpc_security_group_ids = [aws_security_group.web.id]
  metadata_options {
    http_tokens = "required"
  }
}
resource "aws_instance" "b" {
  ami                    = "ami-0abcdef1234567890"
  instance_type          = "t3.micro"
  subnet_id              = aws_default_subnet.b.id
  vpc_security_group_ids = [aws_security_group.web.id]
  metadata_options {
    http_tokens = "required"
  }
}

# Its default security group, adopted without naming the VPC, opens RDP;
# the Windows server names no group.
resource "aws_default_security_group" "default" {
  ingress {
    from_port   = 3389
    to_port     = 3389
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_instance" "windows" {
  ami           = "ami-0abcdef1234567890"
  instance_type = "t3.micro"
  subnet_id     = aws_default_subnet.a.id
  metadata_options {
    http_tokens = "required"
  }
}
