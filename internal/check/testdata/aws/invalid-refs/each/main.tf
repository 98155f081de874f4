# each.id in a group without for_each: each exists only in a block with
# for_each, and has only key and value.
resource "aws_security_group" "a" {
  name = "a"
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = [each.id]
  }
}
