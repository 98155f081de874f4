# Two instances that name no security group: AWS puts each in its VPC's
# default group, which admits all traffic from its own members. A database
# admits PostgreSQL from the members of that default group, by its ID.
resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
}
resource "aws_subnet" "app" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.1.0/24"
}
resource "aws_subnet" "data" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.2.0/24"
}
resource "aws_instance" "web" {
  ami       = "ami-12345678"
  subnet_id = aws_subnet.app.id
}
resource "aws_instance" "worker" {
  ami       = "ami-12345678"
  subnet_id = aws_subnet.app.id
}
resource "aws_security_group" "db" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port       = 5432
    to_port         = 5432
    protocol        = "tcp"
    security_groups = [aws_vpc.main.default_security_group_id]
  }
}
resource "aws_db_subnet_group" "db" {
  subnet_ids = [aws_subnet.data.id]
}
resource "aws_db_instance" "db" {
  engine                 = "postgres"
  instance_class         = "db.t3.micro"
  storage_encrypted      = true
  db_subnet_group_name   = aws_db_subnet_group.db.name
  vpc_security_group_ids = [aws_security_group.db.id]
}
