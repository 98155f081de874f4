resource "aws_vpc" "main" {
  cidr_block = "10.1.0.0/16"
}

resource "aws_subnet" "private" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.1.8.0/21"
}

resource "aws_eks_cluster" "main" {
  name     = "main"
  role_arn = "arn:aws:iam::111122223333:role/eks"
  vpc_config {
    subnet_ids             = [aws_subnet.private.id]
    endpoint_public_access = false
  }
}

# A key without source_security_group_ids: EKS opens SSH to 0.0.0.0/0.
resource "aws_eks_node_group" "open" {
  cluster_name    = aws_eks_cluster.main.name
  node_group_name = "open"
  node_role_arn   = "arn:aws:iam::111122223333:role/nodes"
  subnet_ids      = [aws_subnet.private.id]
  scaling_config {
    desired_size = 1
    max_size     = 2
    min_size     = 1
  }
  remote_access {
    ec2_ssh_key = "ops"
  }
}

resource "aws_security_group" "bastion" {
  name   = "bastion"
  vpc_id = aws_vpc.main.id
}

resource "aws_eks_node_group" "scoped" {
  cluster_name    = aws_eks_cluster.main.name
  node_group_name = "scoped"
  node_role_arn   = "arn:aws:iam::111122223333:role/nodes"
  subnet_ids      = [aws_subnet.private.id]
  scaling_config {
    desired_size = 1
    max_size     = 2
    min_size     = 1
  }
  remote_access {
    ec2_ssh_key               = "ops"
    source_security_group_ids = [aws_security_group.bastion.id]
  }
}
