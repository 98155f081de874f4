# A public network load balancer forwards SSH and RDP to instances in a
# private subnet. It has no security group and keeps the client's address,
# so the targets' groups decide: the SSH target admits the VPC alone, the
# RDP target every address.
resource "aws_vpc" "main" {
  cidr_block = "10.97.0.0/16"
}
resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
}
resource "aws_subnet" "public" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.97.1.0/24"
}
resource "aws_subnet" "private" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.97.2.0/24"
}
resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.main.id
  }
}
resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}
resource "aws_security_group" "ssh" {
  vpc_id = aws_vpc.main.id
  ingress {
    protocol    = "tcp"
    from_port   = 22
    to_port     = 22
    cidr_blocks = ["10.97.0.0/16"]
  }
}
resource "aws_security_group" "rdp" {
  vpc_id = aws_vpc.main.id
  ingress {
    protocol    = "tcp"
    from_port   = 3389
    to_port     = 3389
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_instance" "linux" {
  ami                    = "ami-0abcdef1234567890"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.private.id
  vpc_security_group_ids = [aws_security_group.ssh.id]
  metadata_options {
    http_tokens = "required"
  }
}
resource "aws_instance" "windows" {
  ami                    = "ami-0abcdef1234567890"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.private.id
  vpc_security_group_ids = [aws_security_group.rdp.id]
  metadata_options {
    http_tokens = "required"
  }
}
resource "aws_lb" "nlb" {
  load_balancer_type = "network"
  subnets            = [aws_subnet.public.id]
}
resource "aws_lb_target_group" "ssh" {
  port     = 22
  protocol = "TCP"
  vpc_id   = aws_vpc.main.id
}
resource "aws_lb_target_group" "rdp" {
  port     = 3389
  protocol = "TCP"
  vpc_id   = aws_vpc.main.id
}
resource "aws_lb_listener" "ssh" {
  load_balancer_arn = aws_lb.nlb.arn
  port              = 22
  protocol          = "TCP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.ssh.arn
  }
}
resource "aws_lb_listener" "rdp" {
  load_balancer_arn = aws_lb.nlb.arn
  port              = 3389
  protocol          = "TCP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.rdp.arn
  }
}
resource "aws_lb_target_group_attachment" "linux" {
  target_group_arn = aws_lb_target_group.ssh.arn
  target_id        = aws_instance.linux.id
}
resource "aws_lb_target_group_attachment" "windows" {
  target_group_arn = aws_lb_target_group.rdp.arn
  target_id        = aws_instance.windows.id
}
