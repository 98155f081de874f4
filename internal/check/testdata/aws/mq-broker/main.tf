# Amazon MQ brokers. A public RabbitMQ broker is reached through an
# endpoint AWS runs, which takes no security group; a public ActiveMQ
# broker has an address in its subnet, behind its groups; a private one
# is reached from its VPC alone. One whose public access is given by a
# variable without a value may be public.
variable "public" {
  type = bool
}
resource "aws_vpc" "main" {
  cidr_block = "10.95.0.0/16"
}
resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
}
resource "aws_subnet" "public" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.95.1.0/24"
}
resource "aws_subnet" "private" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.95.2.0/24"
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
resource "aws_security_group" "broker" {
  vpc_id = aws_vpc.main.id
  ingress {
    protocol    = "tcp"
    from_port   = 61617
    to_port     = 61617
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_mq_broker" "rabbit" {
  broker_name         = "events"
  engine_type         = "RabbitMQ"
  engine_version      = "3.13"
  host_instance_type  = "mq.t3.micro"
  publicly_accessible = true
  user {
    username = "app"
    password = "not-a-real-password-1"
  }
}
resource "aws_mq_broker" "active" {
  broker_name         = "orders"
  engine_type         = "ActiveMQ"
  engine_version      = "5.18"
  host_instance_type  = "mq.t3.micro"
  publicly_accessible = true
  subnet_ids          = [aws_subnet.public.id]
  security_groups     = [aws_security_group.broker.id]
  user {
    username = "app"
    password = "not-a-real-password-1"
  }
}
resource "aws_mq_broker" "internal" {
  broker_name         = "jobs"
  engine_type         = "ActiveMQ"
  engine_version      = "5.18"
  host_instance_type  = "mq.t3.micro"
  subnet_ids          = [aws_subnet.private.id]
  security_groups     = [aws_security_group.broker.id]
  user {
    username = "app"
    password = "not-a-real-password-1"
  }
}
resource "aws_mq_broker" "maybe" {
  broker_name         = "audit"
  engine_type         = "RabbitMQ"
  engine_version      = "3.13"
  host_instance_type  = "mq.t3.micro"
  publicly_accessible = var.public
  user {
    username = "app"
    password = "not-a-real-password-1"
  }
}
