# An EKS cluster whose API answers both publicly (to one office range) and
# inside its subnets, with a managed node group on EKS's own launch
# template and one on a template naming its own group. EKS puts the
# cluster's interfaces and the first group's nodes in the cluster security
# group it creates, which admits all traffic from its own members; the
# second group's nodes are in their template's group alone.
resource "aws_vpc" "main" {
  cidr_block = "10.40.0.0/16"
}
resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
}
resource "aws_subnet" "public" {
  vpc_id                  = aws_vpc.main.id
  cidr_block              = "10.40.1.0/24"
  map_public_ip_on_launch = true
}
resource "aws_subnet" "private" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.40.11.0/24"
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
resource "aws_security_group" "bastion" {
  vpc_id = aws_vpc.main.id
}
resource "aws_security_group" "api" {
  vpc_id = aws_vpc.main.id
  ingress {
    protocol        = "tcp"
    from_port       = 443
    to_port         = 443
    security_groups = [aws_security_group.bastion.id]
  }
}
resource "aws_security_group" "workers" {
  vpc_id = aws_vpc.main.id
  ingress {
    protocol  = "-1"
    from_port = 0
    to_port   = 0
    self      = true
  }
}
# The bastion may reach the nodes' kubelets through the cluster group.
resource "aws_security_group_rule" "bastion_kubelet" {
  type                     = "ingress"
  protocol                 = "tcp"
  from_port                = 10250
  to_port                  = 10250
  security_group_id        = aws_eks_cluster.main.vpc_config[0].cluster_security_group_id
  source_security_group_id = aws_security_group.bastion.id
}
resource "aws_eks_cluster" "main" {
  name     = "main"
  role_arn = "arn:aws:iam::123456789012:role/eks"
  vpc_config {
    subnet_ids              = [aws_subnet.private.id]
    endpoint_public_access  = true
    endpoint_private_access = true
    public_access_cidrs     = ["198.51.100.0/24"]
    security_group_ids      = [aws_security_group.api.id]
  }
}
resource "aws_eks_node_group" "default" {
  cluster_name    = aws_eks_cluster.main.name
  node_group_name = "default"
  node_role_arn   = "arn:aws:iam::123456789012:role/node"
  subnet_ids      = [aws_subnet.private.id]
  scaling_config {
    desired_size = 2
    max_size     = 3
    min_size     = 1
  }
}
resource "aws_launch_template" "own" {
  name_prefix            = "own"
  vpc_security_group_ids = [aws_security_group.workers.id]
}
resource "aws_eks_node_group" "own" {
  cluster_name    = aws_eks_cluster.main.name
  node_group_name = "own"
  node_role_arn   = "arn:aws:iam::123456789012:role/node"
  subnet_ids      = [aws_subnet.private.id]
  launch_template {
    id      = aws_launch_template.own.id
    version = "$Latest"
  }
  scaling_config {
    desired_size = 2
    max_size     = 3
    min_size     = 1
  }
}
# Public access alone, from anywhere: the API answers on 443 only.
resource "aws_eks_cluster" "public" {
  name     = "public"
  role_arn = "arn:aws:iam::123456789012:role/eks"
  vpc_config {
    subnet_ids = [aws_subnet.private.id]
  }
}
