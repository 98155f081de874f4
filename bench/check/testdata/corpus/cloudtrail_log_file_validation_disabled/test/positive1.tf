resource "aws_cloudtrail" "unset" {
  name           = "unset"
  s3_bucket_name = "audit"
}

resource "aws_cloudtrail" "off" {
  name                       = "off"
  s3_bucket_name             = "audit"
  enable_log_file_validation = false
}
