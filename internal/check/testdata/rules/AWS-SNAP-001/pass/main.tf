# A cluster snapshot shared with one account, and an image with one
# organization.
resource "aws_db_cluster_snapshot" "nightly" {
  db_cluster_identifier          = "orders"
  db_cluster_snapshot_identifier = "orders-nightly"
  shared_accounts                = ["444455556666"]
}

resource "aws_ami_launch_permission" "golden" {
  image_id         = "ami-0123456789abcdef0"
  organization_arn = "arn:aws:organizations::111122223333:organization/o-a1b2c3d4e5"
}
