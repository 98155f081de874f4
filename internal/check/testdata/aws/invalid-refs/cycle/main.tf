# Two groups whose inline rules name each other: Terraform cannot order
# them and rejects the configuration (a cycle).
resource "aws_security_group" "a" {
  name = "a"
  ingress {
    from_port       = 5432
    to_port         = 5432
    protocol        = "tcp"
    security_groups = [aws_security_group.b.id]
  }
}
resource "aws_security_group" "b" {
  name = "b"
  egress {
    from_port       = 5432
    to_port         = 5432
    protocol        = "tcp"
    security_groups = [aws_security_group.a.id]
  }
}
