# A public Redshift cluster and an instance in a public subnet whose
# security groups are not in the scanned code: one named by its ID, one
# looked up by a data source. Either may admit anything.
resource "aws_vpc" "main" {
  cidr_block = "10.94.0.0/16"
}
resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
}
resource "aws_subnet" "public" {
  vpc_id                  = aws_vpc.main.id
  cidr_block              = "10.94.1.0/24"
  map_public_ip_on_launch = true
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
resource "aws_redshift_subnet_group" "main" {
  name       = "warehouse"
  subnet_ids = [aws_subnet.public.id]
}
resource "aws_redshift_cluster" "warehouse" {
  cluster_identifier        = "warehouse"
  node_type                 = "ra3.xlplus"
  master_username           = "admin"
  manage_master_password    = true
  encrypted                 = true
  publicly_accessible       = true
  cluster_subnet_group_name = aws_redshift_subnet_group.main.name
  vpc_security_group_ids    = ["sg-0a1b2c3d4e5f67890"]
}
data "aws_security_group" "shared" {
  name = "shared-admin"
}
resource "aws_instance" "jump" {
  ami                    = "ami-0abcdef1234567890"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.public.id
  vpc_security_group_ids = [data.aws_security_group.shared.id]
  metadata_options {
    http_tokens = "required"
  }
}
# Named by the name every VPC's default group has: that group, which
# admits only its own members, not one outside the code.
resource "aws_instance" "plain" {
  ami             = "ami-0abcdef1234567890"
  instance_type   = "t3.micro"
  subnet_id       = aws_subnet.public.id
  security_groups = ["default"]
  metadata_options {
    http_tokens = "required"
  }
}
