# Text from an untrusted repository that would act on a terminal: a
# right-to-left override (U+202E), a C1 CSI (U+009B), ESC and a line
# break, in resource names (block labels, which Terraform would refuse
# but moat check reads, and for_each keys, which may be any string), in a
# value a message quotes, and in a suppression's reason. moat check shows
# them all as escapes.
resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
}

resource "aws_internet_gateway" "gw" {
  vpc_id = aws_vpc.main.id
}

resource "aws_subnet" "public" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.1.0/24"
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.gw.id
  }
}

resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}

resource "aws_security_group" "ssh" {
  for_each = toset(["exe.\u202egnp\u009b2J\u001b]0;x\u0007\nforged"])
  vpc_id   = aws_vpc.main.id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0", "10.0.0.0/8\u202e\u009b2J"]
  }
}

resource "aws_instance" "nimda‮admin" {
  ami                         = "ami-12345678"
  instance_type               = "t3.micro"
  subnet_id                   = aws_subnet.public.id
  vpc_security_group_ids      = [aws_security_group.ssh["exe.\u202egnp\u009b2J\u001b]0;x\u0007\nforged"].id]
  associate_public_ip_address = true
}

resource "aws_instance" "bastion\u009b2J\u001b[31m\nforged" {
  ami                         = "ami-12345678"
  instance_type               = "t3.micro"
  subnet_id                   = aws_subnet.public.id
  vpc_security_group_ids      = [aws_security_group.ssh["exe.\u202egnp\u009b2J\u001b]0;x\u0007\nforged"].id]
  associate_public_ip_address = true
}

# moat:ignore AWS-NET-008 kept ‮2J for the switch
resource "aws_security_group" "spare" {
  vpc_id = aws_vpc.main.id
}
