# A database reached only through an RDS proxy, which only a Lambda
# function in the VPC may open: each group admits the one before it.
resource "aws_vpc" "app" {
  cidr_block = "10.70.0.0/16"
}

resource "aws_subnet" "a" {
  vpc_id     = aws_vpc.app.id
  cidr_block = "10.70.1.0/24"
}

resource "aws_subnet" "b" {
  vpc_id     = aws_vpc.app.id
  cidr_block = "10.70.2.0/24"
}

resource "aws_security_group" "fn" {
  vpc_id = aws_vpc.app.id
  egress {
    from_port   = 5432
    to_port     = 5432
    protocol    = "tcp"
    cidr_blocks = ["10.70.0.0/16"]
  }
}

resource "aws_security_group" "proxy" {
  vpc_id = aws_vpc.app.id
  ingress {
    from_port       = 5432
    to_port         = 5432
    protocol        = "tcp"
    security_groups = [aws_security_group.fn.id]
  }
}

resource "aws_security_group" "db" {
  vpc_id = aws_vpc.app.id
  ingress {
    from_port       = 5432
    to_port         = 5432
    protocol        = "tcp"
    security_groups = [aws_security_group.proxy.id]
  }
}

resource "aws_db_subnet_group" "db" {
  subnet_ids = [aws_subnet.a.id, aws_subnet.b.id]
}

resource "aws_db_instance" "orders" {
  engine                 = "postgres"
  instance_class         = "db.t4g.micro"
  allocated_storage      = 20
  storage_encrypted      = true
  db_subnet_group_name   = aws_db_subnet_group.db.name
  vpc_security_group_ids = [aws_security_group.db.id]
}

resource "aws_db_proxy" "orders" {
  name                   = "orders"
  engine_family          = "POSTGRESQL"
  role_arn               = "arn:aws:iam::111122223333:role/proxy"
  vpc_subnet_ids         = [aws_subnet.a.id, aws_subnet.b.id]
  vpc_security_group_ids = [aws_security_group.proxy.id]
  auth {
    auth_scheme = "SECRETS"
    secret_arn  = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:orders"
  }
}

resource "aws_lambda_function" "api" {
  function_name = "api"
  role          = "arn:aws:iam::111122223333:role/api"
  runtime       = "nodejs20.x"
  handler       = "index.handler"
  filename      = "api.zip"
  vpc_config {
    subnet_ids         = [aws_subnet.a.id]
    security_group_ids = [aws_security_group.fn.id]
  }
}
