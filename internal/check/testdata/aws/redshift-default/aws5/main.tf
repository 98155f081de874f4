# A warehouse that leaves publicly_accessible to the AWS provider 5.x:
# before 5.0 it defaults to true, from 5.0 to false.
terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}
resource "aws_redshift_cluster" "dw" {
  cluster_identifier = "dw"
  node_type          = "ra3.xlplus"
  encrypted          = true
}
