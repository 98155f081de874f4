# A rule for each group, written with a splat on the resource type, which
# Terraform rejects: it takes a resource's name after its type.
resource "aws_security_group" "a" {
  name = "a"
}
resource "aws_security_group_rule" "r" {
  for_each          = toset(aws_security_group.*.id)
  type              = "ingress"
  from_port         = 22
  to_port           = 22
  protocol          = "tcp"
  cidr_blocks       = ["10.0.0.0/8"]
  security_group_id = each.value
}
