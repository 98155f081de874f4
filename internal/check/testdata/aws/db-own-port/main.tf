resource "aws_vpc" "main" {
  cidr_block = "10.1.0.0/16"
}

resource "aws_subnet" "data_a" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.1.4.0/24"
}

resource "aws_subnet" "data_b" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.1.5.0/24"
}

resource "aws_db_subnet_group" "data" {
  name       = "data"
  subnet_ids = [aws_subnet.data_a.id, aws_subnet.data_b.id]
}

# The cluster's own port, off its engine's 3306, open to the world.
resource "aws_security_group" "db" {
  name   = "db"
  vpc_id = aws_vpc.main.id
  ingress {
    protocol    = "tcp"
    from_port   = 3307
    to_port     = 3307
    cidr_blocks = ["0.0.0.0/0"]
  }
  ingress {
    protocol    = "tcp"
    from_port   = 8080
    to_port     = 8080
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_rds_cluster" "app" {
  cluster_identifier     = "app"
  engine                 = "aurora-mysql"
  port                   = 3307
  storage_encrypted      = true
  db_subnet_group_name   = aws_db_subnet_group.data.name
  vpc_security_group_ids = [aws_security_group.db.id]
}

resource "aws_rds_cluster_instance" "app" {
  count              = 2
  cluster_identifier = aws_rds_cluster.app.id
  instance_class     = "db.t3.medium"
  engine             = aws_rds_cluster.app.engine
}
