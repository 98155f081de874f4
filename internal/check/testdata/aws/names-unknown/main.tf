# A public MySQL database whose subnet group is named from the account's ID,
# known only at apply time: it is still that subnet group, in a public
# subnet.
data "aws_caller_identity" "current" {}

locals {
  prefix = "${data.aws_caller_identity.current.account_id}-shop"
}

resource "aws_db_instance" "app" {
  identifier             = "${local.prefix}-orders"
  engine                 = "mysql"
  instance_class         = "db.t3.micro"
  storage_encrypted      = true
  publicly_accessible    = true
  db_subnet_group_name   = aws_db_subnet_group.db.name
  vpc_security_group_ids = [aws_security_group.db.id]
}

resource "aws_vpc" "main" {
  cidr_block = "10.50.0.0/16"
}
resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
}
resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.main.id
  }
}
resource "aws_subnet" "a" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.50.1.0/24"
}
resource "aws_subnet" "b" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.50.2.0/24"
}
resource "aws_route_table_association" "a" {
  subnet_id      = aws_subnet.a.id
  route_table_id = aws_route_table.public.id
}
resource "aws_route_table_association" "b" {
  subnet_id      = aws_subnet.b.id
  route_table_id = aws_route_table.public.id
}
resource "aws_db_subnet_group" "db" {
  name       = "${local.prefix}-db"
  subnet_ids = [aws_subnet.a.id, aws_subnet.b.id]
}
resource "aws_security_group" "db" {
  name   = "${local.prefix}-db"
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = 3306
    to_port     = 3306
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
