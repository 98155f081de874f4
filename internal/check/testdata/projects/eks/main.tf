# An EKS cluster with a public API endpoint open to everyone, and a managed
# node group with SSH remote access and no source groups.
resource "aws_vpc" "eks" {
  cidr_block = "10.50.0.0/16"
}
resource "aws_flow_log" "eks" {
  vpc_id = aws_vpc.eks.id
}
resource "aws_internet_gateway" "eks" {
  vpc_id = aws_vpc.eks.id
}
resource "aws_subnet" "nodes" {
  count                   = 2
  vpc_id                  = aws_vpc.eks.id
  cidr_block              = cidrsubnets(aws_vpc.eks.cidr_block, 4, 4)[count.index]
  map_public_ip_on_launch = true
}
resource "aws_route_table" "public" {
  vpc_id = aws_vpc.eks.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.eks.id
  }
}
resource "aws_route_table_association" "nodes" {
  count          = 2
  subnet_id      = aws_subnet.nodes[count.index].id
  route_table_id = aws_route_table.public.id
}
resource "aws_kms_key" "eks" {
  enable_key_rotation = true
}
resource "aws_eks_cluster" "main" {
  name     = "main"
  role_arn = "arn:aws:iam::123456789012:role/eks"
  vpc_config {
    subnet_ids             = aws_subnet.nodes[*].id
    endpoint_public_access = true
  }
  encryption_config {
    resources = ["secrets"]
    provider {
      key_arn = aws_kms_key.eks.arn
    }
  }
}
resource "aws_eks_node_group" "default" {
  cluster_name    = aws_eks_cluster.main.name
  node_group_name = "default"
  node_role_arn   = "arn:aws:iam::123456789012:role/nodes"
  subnet_ids      = aws_subnet.nodes[*].id
  scaling_config {
    desired_size = 2
    max_size     = 3
    min_size     = 1
  }
  remote_access {
    ec2_ssh_key = "ops"
  }
}
resource "aws_cloudtrail" "main" {
  name                       = "main"
  s3_bucket_name             = "trail"
  is_multi_region_trail      = true
  enable_log_file_validation = true
  kms_key_id                 = aws_kms_key.eks.arn
  cloud_watch_logs_group_arn = "arn:aws:logs:eu-west-1:111122223333:log-group:cloudtrail:*"
  cloud_watch_logs_role_arn  = "arn:aws:iam::111122223333:role/cloudtrail-logs"
}
