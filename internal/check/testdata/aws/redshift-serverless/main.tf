# A Redshift Serverless workgroup made public in a subnet routed to the
# internet gateway, its group admitting 5439 from everywhere; another,
# private (the default), in the same subnet.
resource "aws_vpc" "main" {
  cidr_block = "192.168.0.0/16"
}
resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
}
resource "aws_subnet" "public" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "192.168.101.0/24"
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
resource "aws_security_group" "redshift" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = 5439
    to_port     = 5439
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_redshiftserverless_namespace" "main" {
  namespace_name = "analytics"
}
resource "aws_redshiftserverless_workgroup" "public" {
  namespace_name      = aws_redshiftserverless_namespace.main.namespace_name
  workgroup_name      = "public"
  subnet_ids          = [aws_subnet.public.id]
  security_group_ids  = [aws_security_group.redshift.id]
  publicly_accessible = true
}
resource "aws_redshiftserverless_workgroup" "private" {
  namespace_name     = aws_redshiftserverless_namespace.main.namespace_name
  workgroup_name     = "private"
  subnet_ids         = [aws_subnet.public.id]
  security_group_ids = [aws_security_group.redshift.id]
}
