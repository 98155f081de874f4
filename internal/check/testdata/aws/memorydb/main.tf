resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
}

resource "aws_subnet" "data" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.1.0/24"
}

resource "aws_subnet" "app" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.2.0/24"
}

resource "aws_security_group" "cache" {
  name   = "cache"
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = 6379
    to_port     = 6379
    protocol    = "tcp"
    cidr_blocks = ["10.0.2.0/24"]
  }
}

resource "aws_memorydb_subnet_group" "data" {
  name       = "data"
  subnet_ids = [aws_subnet.data.id]
}

resource "aws_memorydb_cluster" "sessions" {
  name               = "sessions"
  acl_name           = "open-access"
  node_type          = "db.t4g.small"
  subnet_group_name  = aws_memorydb_subnet_group.data.id
  security_group_ids = [aws_security_group.cache.id]
}
