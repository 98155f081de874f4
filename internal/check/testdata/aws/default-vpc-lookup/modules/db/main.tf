variable "subnet_ids" {
  type = list(string)
}

variable "sg_id" {
  type = string
}

resource "aws_db_subnet_group" "this" {
  name       = "app"
  subnet_ids = var.subnet_ids
}

resource "aws_db_instance" "this" {
  identifier                  = "app"
  engine                      = "postgres"
  instance_class              = "db.t3.micro"
  allocated_storage           = 20
  username                    = "app"
  manage_master_user_password = true
  storage_encrypted           = true
  publicly_accessible         = true
  db_subnet_group_name        = aws_db_subnet_group.this.name
  vpc_security_group_ids      = [var.sg_id]
  skip_final_snapshot         = true
}
