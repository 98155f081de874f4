# A template outside the scanned code may require tokens: not guessed at.
resource "aws_instance" "from_outside_template" {
  launch_template {
    name = "made-elsewhere"
  }
}
