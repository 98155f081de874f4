variable "subnet_ids" {}

variable "sg_id" {}

locals {
  name = "orders"
}

resource "aws_db_subnet_group" "this" {
  name       = local.name
  subnet_ids = var.subnet_ids
}

resource "aws_kms_key" "this" {
  enable_key_rotation = true
}

resource "aws_db_instance" "this" {
  identifier             = local.name
  engine                 = "postgres"
  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [var.sg_id]
  storage_encrypted      = true
  kms_key_id             = aws_kms_key.this.arn
}

output "endpoint" {
  value = aws_db_instance.this.id
}
