# A Client VPN endpoint whose one authorization rule admits its clients to
# the data subnet alone: the database there is reached through it, the
# build server in the ops subnet is not, though its group admits the
# endpoint's.
resource "aws_vpc" "main" {
  cidr_block = "10.16.0.0/16"
}
resource "aws_subnet" "vpn" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.16.1.0/24"
}
resource "aws_subnet" "data" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.16.2.0/24"
}
resource "aws_subnet" "ops" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.16.3.0/24"
}
resource "aws_security_group" "vpn" {
  vpc_id = aws_vpc.main.id
}
resource "aws_security_group" "inside" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port       = 0
    to_port         = 65535
    protocol        = "tcp"
    security_groups = [aws_security_group.vpn.id]
  }
}
resource "aws_ec2_client_vpn_endpoint" "vpn" {
  client_cidr_block      = "10.20.0.0/22"
  server_certificate_arn = "arn:aws:acm:eu-west-1:111122223333:certificate/server"
  vpc_id                 = aws_vpc.main.id
  security_group_ids     = [aws_security_group.vpn.id]
  authentication_options {
    type                       = "certificate-authentication"
    root_certificate_chain_arn = "arn:aws:acm:eu-west-1:111122223333:certificate/root"
  }
  connection_log_options {
    enabled = false
  }
}
resource "aws_ec2_client_vpn_network_association" "vpn" {
  client_vpn_endpoint_id = aws_ec2_client_vpn_endpoint.vpn.id
  subnet_id              = aws_subnet.vpn.id
}
resource "aws_ec2_client_vpn_authorization_rule" "data" {
  client_vpn_endpoint_id = aws_ec2_client_vpn_endpoint.vpn.id
  target_network_cidr    = aws_subnet.data.cidr_block
  access_group_id        = "S-1-5-21-dba"
}
resource "aws_instance" "db" {
  ami                    = "ami-12345678"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.data.id
  vpc_security_group_ids = [aws_security_group.inside.id]
  metadata_options {
    http_tokens = "required"
  }
}
resource "aws_instance" "build" {
  ami                    = "ami-12345678"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.ops.id
  vpc_security_group_ids = [aws_security_group.inside.id]
  metadata_options {
    http_tokens = "required"
  }
}
