# An App Runner service's VPC connector: interfaces in the private subnet,
# behind the connector's group, that open the service's connections into
# the VPC and take none. The database admits the connector's group; the
# connector's own group, open to the world on SSH, guards no listener.
resource "aws_vpc" "main" {
  cidr_block = "10.30.0.0/16"
}
resource "aws_subnet" "private" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.30.1.0/24"
}
resource "aws_security_group" "connector" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_security_group" "db" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port       = 5432
    to_port         = 5432
    protocol        = "tcp"
    security_groups = [aws_security_group.connector.id]
  }
}
resource "aws_apprunner_vpc_connector" "app" {
  vpc_connector_name = "app"
  subnets            = [aws_subnet.private.id]
  security_groups    = [aws_security_group.connector.id]
}
resource "aws_db_subnet_group" "db" {
  subnet_ids = [aws_subnet.private.id]
}
resource "aws_db_instance" "orders" {
  engine                 = "postgres"
  instance_class         = "db.t3.micro"
  storage_encrypted      = true
  db_subnet_group_name   = aws_db_subnet_group.db.name
  vpc_security_group_ids = [aws_security_group.db.id]
}
