# DocumentDB clusters and the cluster parameter groups that set their tls
# parameter: disabled takes plaintext; AWS's default groups and one that
# leaves tls alone require TLS; one named outside the code, or whose tls is
# an input, may not.
variable "tls" {
  type = string
}

resource "aws_docdb_cluster_parameter_group" "plain" {
  family = "docdb5.0"
  name   = "plain"
  parameter {
    name  = "tls"
    value = "disabled"
  }
}

resource "aws_docdb_cluster_parameter_group" "tls" {
  family = "docdb5.0"
  name   = "tls"
  parameter {
    name  = "tls"
    value = "enabled"
  }
}

resource "aws_docdb_cluster_parameter_group" "audit" {
  family = "docdb5.0"
  name   = "audit"
  parameter {
    name  = "audit_logs"
    value = "enabled"
  }
}

resource "aws_docdb_cluster_parameter_group" "input" {
  family = "docdb5.0"
  name   = "input"
  parameter {
    name  = "tls"
    value = var.tls
  }
}

resource "aws_docdb_cluster" "plain" {
  cluster_identifier              = "plain"
  master_username                 = "app"
  master_password                 = "placeholder-password"
  db_cluster_parameter_group_name = aws_docdb_cluster_parameter_group.plain.name
}

resource "aws_docdb_cluster" "by_name" {
  cluster_identifier              = "by-name"
  master_username                 = "app"
  master_password                 = "placeholder-password"
  db_cluster_parameter_group_name = "plain"
}

resource "aws_docdb_cluster" "tls" {
  cluster_identifier              = "tls"
  master_username                 = "app"
  master_password                 = "placeholder-password"
  db_cluster_parameter_group_name = aws_docdb_cluster_parameter_group.tls.name
}

resource "aws_docdb_cluster" "audit" {
  cluster_identifier              = "audit"
  master_username                 = "app"
  master_password                 = "placeholder-password"
  db_cluster_parameter_group_name = aws_docdb_cluster_parameter_group.audit.name
}

resource "aws_docdb_cluster" "default_group" {
  cluster_identifier              = "default-group"
  master_username                 = "app"
  master_password                 = "placeholder-password"
  db_cluster_parameter_group_name = "default.docdb5.0"
}

resource "aws_docdb_cluster" "unset" {
  cluster_identifier = "unset"
  master_username    = "app"
  master_password    = "placeholder-password"
}

resource "aws_docdb_cluster" "elsewhere" {
  cluster_identifier              = "elsewhere"
  master_username                 = "app"
  master_password                 = "placeholder-password"
  db_cluster_parameter_group_name = "shared-docdb-params"
}

resource "aws_docdb_cluster" "input" {
  cluster_identifier              = "input"
  master_username                 = "app"
  master_password                 = "placeholder-password"
  db_cluster_parameter_group_name = aws_docdb_cluster_parameter_group.input.name
}
