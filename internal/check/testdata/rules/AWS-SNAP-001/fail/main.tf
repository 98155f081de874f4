# A database snapshot and an image shared with every AWS account.
resource "aws_db_snapshot" "nightly" {
  db_instance_identifier = "orders"
  db_snapshot_identifier = "orders-nightly"
  shared_accounts        = ["all"]
}

resource "aws_ami_launch_permission" "golden" {
  image_id = "ami-0123456789abcdef0"
  group    = "all"
}
