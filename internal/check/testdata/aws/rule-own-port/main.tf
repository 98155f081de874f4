# One group opened to the world by two rule resources, SSH and the
# Kubernetes API, on a public instance: each rule's finding shows the
# instance reached on that rule's own port.
resource "aws_vpc" "k8s" {
  cidr_block = "10.240.0.0/16"
}

resource "aws_internet_gateway" "gw" {
  vpc_id = aws_vpc.k8s.id
}

resource "aws_subnet" "nodes" {
  vpc_id     = aws_vpc.k8s.id
  cidr_block = "10.240.0.0/24"
}

resource "aws_route_table" "nodes" {
  vpc_id = aws_vpc.k8s.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.gw.id
  }
}

resource "aws_route_table_association" "nodes" {
  subnet_id      = aws_subnet.nodes.id
  route_table_id = aws_route_table.nodes.id
}

resource "aws_security_group" "nodes" {
  name   = "nodes"
  vpc_id = aws_vpc.k8s.id
}

resource "aws_security_group_rule" "ssh" {
  type              = "ingress"
  from_port         = 22
  to_port           = 22
  protocol          = "tcp"
  cidr_blocks       = ["0.0.0.0/0"]
  security_group_id = aws_security_group.nodes.id
}

resource "aws_security_group_rule" "api" {
  type              = "ingress"
  from_port         = 6443
  to_port           = 6443
  protocol          = "tcp"
  cidr_blocks       = ["0.0.0.0/0"]
  security_group_id = aws_security_group.nodes.id
}

resource "aws_instance" "controller" {
  ami                         = "ami-12345678"
  instance_type               = "t3.small"
  subnet_id                   = aws_subnet.nodes.id
  associate_public_ip_address = true
  vpc_security_group_ids      = [aws_security_group.nodes.id]
}
