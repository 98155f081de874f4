variable "vpc_id" {
  type = string
}

variable "subnet_ids" {
  type = list(string)
}

data "aws_subnet" "counted" {
  count = length(var.subnet_ids)
  id    = var.subnet_ids[count.index]
}

data "aws_subnet" "keyed" {
  for_each = toset(var.subnet_ids)
  id       = each.value
}

resource "aws_security_group" "ssh" {
  vpc_id = var.vpc_id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

# One instance in the first subnet looked up by count, one in each looked
# up by for_each, and one in a subnet of each list made of them.
resource "aws_instance" "first" {
  ami                         = "ami-12345678"
  instance_type               = "t3.micro"
  subnet_id                   = data.aws_subnet.counted[0].id
  associate_public_ip_address = true
  vpc_security_group_ids      = [aws_security_group.ssh.id]
}

resource "aws_instance" "each" {
  for_each                    = data.aws_subnet.keyed
  ami                         = "ami-12345678"
  instance_type               = "t3.micro"
  subnet_id                   = each.value.id
  associate_public_ip_address = true
  vpc_security_group_ids      = [aws_security_group.ssh.id]
}

resource "aws_instance" "splat" {
  ami                         = "ami-12345678"
  instance_type               = "t3.micro"
  subnet_id                   = element(data.aws_subnet.counted[*].id, 1)
  associate_public_ip_address = true
  vpc_security_group_ids      = [aws_security_group.ssh.id]
}

resource "aws_instance" "listed" {
  ami                         = "ami-12345678"
  instance_type               = "t3.micro"
  subnet_id                   = [for s in data.aws_subnet.keyed : s.id][0]
  associate_public_ip_address = true
  vpc_security_group_ids      = [aws_security_group.ssh.id]
}
