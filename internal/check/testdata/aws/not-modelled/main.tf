# Resources that put something in the network which the model does not
# read: a public SFTP endpoint, a database proxy behind a group, an
# Airflow environment whose web server is public. Beside them, a Lambda
# function in the VPC (its interfaces take no connection) and a NAT
# gateway, which the model accounts for.
resource "aws_vpc" "etl" {
  cidr_block = "10.50.0.0/16"
}

resource "aws_subnet" "private" {
  vpc_id     = aws_vpc.etl.id
  cidr_block = "10.50.1.0/24"
}

resource "aws_subnet" "public" {
  vpc_id     = aws_vpc.etl.id
  cidr_block = "10.50.2.0/24"
}

resource "aws_security_group" "proxy" {
  vpc_id = aws_vpc.etl.id
  ingress {
    from_port   = 5432
    to_port     = 5432
    protocol    = "tcp"
    cidr_blocks = ["10.50.0.0/16"]
  }
}

resource "aws_security_group" "jobs" {
  vpc_id = aws_vpc.etl.id
}

resource "aws_transfer_server" "drop" {
  endpoint_type          = "PUBLIC"
  identity_provider_type = "SERVICE_MANAGED"
}

resource "aws_db_proxy" "orders" {
  name                   = "orders"
  engine_family          = "POSTGRESQL"
  role_arn               = "arn:aws:iam::111122223333:role/proxy"
  vpc_subnet_ids         = [aws_subnet.private.id]
  vpc_security_group_ids = [aws_security_group.proxy.id]
  auth {
    auth_scheme = "SECRETS"
    secret_arn  = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:orders"
  }
}

resource "aws_mwaa_environment" "pipelines" {
  name                  = "pipelines"
  dag_s3_path           = "dags/"
  execution_role_arn    = "arn:aws:iam::111122223333:role/airflow"
  source_bucket_arn     = "arn:aws:s3:::pipelines"
  webserver_access_mode = "PUBLIC_ONLY"
  network_configuration {
    subnet_ids         = [aws_subnet.private.id]
    security_group_ids = [aws_security_group.jobs.id]
  }
}

resource "aws_lambda_function" "loader" {
  function_name = "loader"
  role          = "arn:aws:iam::111122223333:role/loader"
  runtime       = "python3.12"
  handler       = "main.handler"
  filename      = "loader.zip"
  vpc_config {
    subnet_ids         = [aws_subnet.private.id]
    security_group_ids = [aws_security_group.jobs.id]
  }
}

resource "aws_eip" "nat" {
  domain = "vpc"
}

resource "aws_nat_gateway" "out" {
  allocation_id     = aws_eip.nat.id
  subnet_id         = aws_subnet.public.id
  connectivity_type = "public"
}
