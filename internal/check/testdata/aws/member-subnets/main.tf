# A group of workers spread over two subnets, and a queue store whose
# subnet's network ACL admits only the second of them. The store's group
# admits the workers' group.
resource "aws_vpc" "core" {
  cidr_block = "10.40.0.0/16"
}
resource "aws_subnet" "east" {
  vpc_id     = aws_vpc.core.id
  cidr_block = "10.40.10.0/24"
}
resource "aws_subnet" "west" {
  vpc_id     = aws_vpc.core.id
  cidr_block = "10.40.20.0/24"
}
resource "aws_subnet" "store" {
  vpc_id     = aws_vpc.core.id
  cidr_block = "10.40.30.0/24"
}
resource "aws_network_acl" "store" {
  vpc_id     = aws_vpc.core.id
  subnet_ids = [aws_subnet.store.id]
  ingress {
    rule_no    = 10
    action     = "allow"
    protocol   = "tcp"
    from_port  = 6379
    to_port    = 6379
    cidr_block = "10.40.20.0/24"
  }
  egress {
    rule_no    = 10
    action     = "allow"
    protocol   = "tcp"
    from_port  = 1024
    to_port    = 65535
    cidr_block = "10.40.0.0/16"
  }
}
resource "aws_security_group" "workers" {
  vpc_id = aws_vpc.core.id
}
resource "aws_security_group" "store" {
  vpc_id = aws_vpc.core.id
  ingress {
    protocol        = "tcp"
    from_port       = 6379
    to_port         = 6379
    security_groups = [aws_security_group.workers.id]
  }
}
resource "aws_launch_template" "workers" {
  image_id               = "ami-0fedcba9876543210"
  instance_type          = "t3.medium"
  vpc_security_group_ids = [aws_security_group.workers.id]
  metadata_options {
    http_tokens = "required"
  }
}
resource "aws_autoscaling_group" "workers" {
  min_size            = 2
  max_size            = 4
  vpc_zone_identifier = [aws_subnet.east.id, aws_subnet.west.id]
  launch_template {
    id = aws_launch_template.workers.id
  }
}
resource "aws_elasticache_subnet_group" "store" {
  name       = "store"
  subnet_ids = [aws_subnet.store.id]
}
resource "aws_elasticache_cluster" "store" {
  cluster_id         = "store"
  engine             = "redis"
  node_type          = "cache.t3.small"
  num_cache_nodes    = 1
  port               = 6379
  subnet_group_name  = aws_elasticache_subnet_group.store.name
  security_group_ids = [aws_security_group.store.id]
}
