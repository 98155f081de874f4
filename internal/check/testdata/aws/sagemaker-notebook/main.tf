# SageMaker notebook instances: direct internet access left at the
# provider's default (Enabled) with no subnet (SageMaker's own network,
# which reaches the internet), written Enabled in a VPC, turned off with
# no subnet (which SageMaker refuses), not known statically, written in a
# case the provider refuses, and one that is closed: Disabled, in a
# subnet of the code.
variable "notebook_access" {
  type = string
}

resource "aws_vpc" "ml" {
  cidr_block = "10.20.0.0/16"
}

resource "aws_subnet" "ml" {
  vpc_id     = aws_vpc.ml.id
  cidr_block = "10.20.1.0/24"
}

resource "aws_security_group" "notebook" {
  vpc_id = aws_vpc.ml.id
}

resource "aws_sagemaker_notebook_instance" "default" {
  name          = "default"
  role_arn      = "arn:aws:iam::111122223333:role/sagemaker"
  instance_type = "ml.t3.medium"
}

resource "aws_sagemaker_notebook_instance" "vpc_enabled" {
  name                   = "vpc-enabled"
  role_arn               = "arn:aws:iam::111122223333:role/sagemaker"
  instance_type          = "ml.t3.medium"
  subnet_id              = aws_subnet.ml.id
  security_groups        = [aws_security_group.notebook.id]
  direct_internet_access = "Enabled"
}

resource "aws_sagemaker_notebook_instance" "no_subnet" {
  name                   = "no-subnet"
  role_arn               = "arn:aws:iam::111122223333:role/sagemaker"
  instance_type          = "ml.t3.medium"
  direct_internet_access = "Disabled"
}

resource "aws_sagemaker_notebook_instance" "unknown" {
  name                   = "unknown"
  role_arn               = "arn:aws:iam::111122223333:role/sagemaker"
  instance_type          = "ml.t3.medium"
  subnet_id              = aws_subnet.ml.id
  security_groups        = [aws_security_group.notebook.id]
  direct_internet_access = var.notebook_access
}

resource "aws_sagemaker_notebook_instance" "lower_case" {
  name                   = "lower-case"
  role_arn               = "arn:aws:iam::111122223333:role/sagemaker"
  instance_type          = "ml.t3.medium"
  subnet_id              = aws_subnet.ml.id
  security_groups        = [aws_security_group.notebook.id]
  direct_internet_access = "disabled"
}

resource "aws_sagemaker_notebook_instance" "closed" {
  name                   = "closed"
  role_arn               = "arn:aws:iam::111122223333:role/sagemaker"
  instance_type          = "ml.t3.medium"
  subnet_id              = aws_subnet.ml.id
  security_groups        = [aws_security_group.notebook.id]
  direct_internet_access = "Disabled"
}
