# The default group emptied: nothing lands in it with traffic allowed.
resource "aws_default_security_group" "default" {
  vpc_id = "vpc-12345678"
}
