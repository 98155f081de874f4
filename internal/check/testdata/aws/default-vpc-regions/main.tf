# The default VPCs of two regions: the database in us-east-1 admits its
# own default VPC's range; the workers in us-west-2's default VPC, looked
# up there by the root and by a module given that region's provider,
# hold addresses of the same range but are another network.

provider "aws" {
  region = "us-east-1"
}

provider "aws" {
  alias  = "west"
  region = "us-west-2"
}

data "aws_vpc" "east" {
  default = true
}

data "aws_vpc" "west" {
  provider = aws.west
  default  = true
}

data "aws_subnets" "west" {
  provider = aws.west
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.west.id]
  }
}

resource "aws_security_group" "db" {
  name   = "db"
  vpc_id = data.aws_vpc.east.id
  ingress {
    from_port   = 5432
    to_port     = 5432
    protocol    = "tcp"
    cidr_blocks = [data.aws_vpc.east.cidr_block]
  }
}

resource "aws_db_instance" "db" {
  identifier                  = "db"
  engine                      = "postgres"
  instance_class              = "db.t3.micro"
  allocated_storage           = 20
  username                    = "app"
  manage_master_user_password = true
  storage_encrypted           = true
  vpc_security_group_ids      = [aws_security_group.db.id]
}

resource "aws_security_group" "worker" {
  provider = aws.west
  name     = "worker"
  vpc_id   = data.aws_vpc.west.id
}

resource "aws_instance" "worker" {
  provider               = aws.west
  ami                    = "ami-12345678"
  instance_type          = "t3.micro"
  subnet_id              = data.aws_subnets.west.ids[0]
  vpc_security_group_ids = [aws_security_group.worker.id]
}

module "west" {
  source    = "./modules/worker"
  providers = { aws = aws.west }
}

module "east" {
  source = "./modules/worker"
}
