# Two VPCs peered in one region: the database's group in b admits the
# application's group in a by its ID. The app's subnet routes b's range
# through the peering; the isolated subnet, in the same group, does not.
resource "aws_vpc" "a" {
  cidr_block = "10.1.0.0/16"
}
resource "aws_vpc" "b" {
  cidr_block = "10.2.0.0/16"
}
resource "aws_subnet" "a" {
  vpc_id     = aws_vpc.a.id
  cidr_block = "10.1.1.0/24"
}
resource "aws_subnet" "isolated" {
  vpc_id     = aws_vpc.a.id
  cidr_block = "10.1.2.0/24"
}
resource "aws_subnet" "b" {
  vpc_id     = aws_vpc.b.id
  cidr_block = "10.2.1.0/24"
}
resource "aws_vpc_peering_connection" "ab" {
  vpc_id      = aws_vpc.a.id
  peer_vpc_id = aws_vpc.b.id
  auto_accept = true
}
resource "aws_route_table" "a" {
  vpc_id = aws_vpc.a.id
  route {
    cidr_block                = "10.2.0.0/16"
    vpc_peering_connection_id = aws_vpc_peering_connection.ab.id
  }
}
resource "aws_route_table_association" "a" {
  subnet_id      = aws_subnet.a.id
  route_table_id = aws_route_table.a.id
}
resource "aws_route_table" "isolated" {
  vpc_id = aws_vpc.a.id
}
resource "aws_route_table_association" "isolated" {
  subnet_id      = aws_subnet.isolated.id
  route_table_id = aws_route_table.isolated.id
}
resource "aws_route_table" "b" {
  vpc_id = aws_vpc.b.id
  route {
    cidr_block                = "10.1.0.0/16"
    vpc_peering_connection_id = aws_vpc_peering_connection.ab.id
  }
}
resource "aws_route_table_association" "b" {
  subnet_id      = aws_subnet.b.id
  route_table_id = aws_route_table.b.id
}
resource "aws_security_group" "app" {
  vpc_id = aws_vpc.a.id
}
resource "aws_instance" "app" {
  ami                    = "ami-12345678"
  subnet_id              = aws_subnet.a.id
  vpc_security_group_ids = [aws_security_group.app.id]
}
resource "aws_instance" "isolated" {
  ami                    = "ami-12345678"
  subnet_id              = aws_subnet.isolated.id
  vpc_security_group_ids = [aws_security_group.app.id]
}
resource "aws_security_group" "db" {
  vpc_id = aws_vpc.b.id
  ingress {
    from_port       = 5432
    to_port         = 5432
    protocol        = "tcp"
    security_groups = [aws_security_group.app.id]
  }
}
resource "aws_db_subnet_group" "b" {
  subnet_ids = [aws_subnet.b.id]
}
resource "aws_db_instance" "orders" {
  engine                 = "postgres"
  instance_class         = "db.t3.micro"
  db_subnet_group_name   = aws_db_subnet_group.b.name
  vpc_security_group_ids = [aws_security_group.db.id]
  storage_encrypted      = true
}
