resource "aws_cloudtrail" "on" {
  name                       = "on"
  s3_bucket_name             = "audit"
  enable_log_file_validation = true
}
