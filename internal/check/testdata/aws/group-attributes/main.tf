# Security groups attached by attributes whose names qualify the usual
# ones: an EMR studio's engine and workspace groups, an EMR cluster's
# managed master, core and service-access groups. None is unused.
resource "aws_vpc" "data" {
  cidr_block = "10.40.0.0/16"
}

resource "aws_subnet" "private" {
  vpc_id     = aws_vpc.data.id
  cidr_block = "10.40.1.0/24"
}

resource "aws_security_group" "engine" {
  vpc_id = aws_vpc.data.id
}

resource "aws_security_group" "workspace" {
  vpc_id = aws_vpc.data.id
}

resource "aws_security_group" "master" {
  vpc_id = aws_vpc.data.id
}

resource "aws_security_group" "core" {
  vpc_id = aws_vpc.data.id
}

resource "aws_security_group" "service" {
  vpc_id = aws_vpc.data.id
}

resource "aws_security_group" "spare" {
  vpc_id = aws_vpc.data.id
}

resource "aws_emr_studio" "notebooks" {
  name                        = "notebooks"
  auth_mode                   = "IAM"
  default_s3_location         = "s3://notebooks/studio"
  service_role                = "arn:aws:iam::111122223333:role/studio"
  vpc_id                      = aws_vpc.data.id
  subnet_ids                  = [aws_subnet.private.id]
  engine_security_group_id    = aws_security_group.engine.id
  workspace_security_group_id = aws_security_group.workspace.id
}

resource "aws_emr_cluster" "batch" {
  name          = "batch"
  release_label = "emr-7.0.0"
  service_role  = "arn:aws:iam::111122223333:role/emr"
  ec2_attributes {
    subnet_id                         = aws_subnet.private.id
    instance_profile                  = "emr"
    emr_managed_master_security_group = aws_security_group.master.id
    emr_managed_slave_security_group  = aws_security_group.core.id
    service_access_security_group     = aws_security_group.service.id
  }
}
