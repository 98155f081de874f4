# Prod's MySQL admits one dev host over a peering.
resource "aws_vpc" "prod" {
  cidr_block = "10.0.0.0/16"
}
resource "aws_vpc" "dev" {
  cidr_block = "10.1.0.0/16"
}
resource "aws_flow_log" "prod" {
  vpc_id = aws_vpc.prod.id
}
resource "aws_flow_log" "dev" {
  vpc_id = aws_vpc.dev.id
}
resource "aws_vpc_peering_connection" "dev_prod" {
  vpc_id      = aws_vpc.dev.id
  peer_vpc_id = aws_vpc.prod.id
  auto_accept = true
}
resource "aws_subnet" "prod_db" {
  vpc_id     = aws_vpc.prod.id
  cidr_block = "10.0.20.0/24"
}
resource "aws_subnet" "prod_db_b" {
  vpc_id     = aws_vpc.prod.id
  cidr_block = "10.0.21.0/24"
}
resource "aws_route_table" "prod" {
  vpc_id = aws_vpc.prod.id
  route {
    cidr_block                = aws_vpc.dev.cidr_block
    vpc_peering_connection_id = aws_vpc_peering_connection.dev_prod.id
  }
}
resource "aws_route_table_association" "prod_db" {
  subnet_id      = aws_subnet.prod_db.id
  route_table_id = aws_route_table.prod.id
}
resource "aws_route_table" "dev" {
  vpc_id = aws_vpc.dev.id
  route {
    cidr_block                = aws_vpc.prod.cidr_block
    vpc_peering_connection_id = aws_vpc_peering_connection.dev_prod.id
  }
}
resource "aws_security_group" "db" {
  vpc_id = aws_vpc.prod.id
  ingress {
    from_port   = 3306
    to_port     = 3306
    protocol    = "tcp"
    cidr_blocks = ["10.1.5.10/32"]
  }
}
resource "aws_db_subnet_group" "prod" {
  subnet_ids = [aws_subnet.prod_db.id, aws_subnet.prod_db_b.id]
}
resource "aws_kms_key" "db" {
  enable_key_rotation = true
}
resource "aws_db_instance" "orders" {
  engine                 = "mysql"
  instance_class         = "db.t3.micro"
  db_subnet_group_name   = aws_db_subnet_group.prod.name
  vpc_security_group_ids = [aws_security_group.db.id]
  storage_encrypted      = true
  kms_key_id             = aws_kms_key.db.arn
}
resource "aws_cloudtrail" "main" {
  name                       = "main"
  s3_bucket_name             = "trail"
  is_multi_region_trail      = true
  enable_log_file_validation = true
  kms_key_id                 = aws_kms_key.db.arn
  cloud_watch_logs_group_arn = "arn:aws:logs:eu-west-1:111122223333:log-group:cloudtrail:*"
  cloud_watch_logs_role_arn  = "arn:aws:iam::111122223333:role/cloudtrail-logs"
}
