# Buckets whose names are made from an input without a value. One's public
# access block names it by its name (.bucket) and its public policy by its
# ID: the block stops the policy. The other has the same policy and a
# block that turns S3's defaults off: it is open to everyone.
variable "prefix" {
  type = string
}

resource "aws_s3_bucket" "blocked" {
  bucket = "${var.prefix}-blocked"
}

resource "aws_s3_bucket_public_access_block" "blocked" {
  bucket                  = aws_s3_bucket.blocked.bucket
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_policy" "blocked" {
  bucket = aws_s3_bucket.blocked.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = "*"
      Action    = "s3:GetObject"
      Resource  = "${aws_s3_bucket.blocked.arn}/*"
    }]
  })
}

resource "aws_s3_bucket" "open" {
  bucket = "${var.prefix}-open"
}

resource "aws_s3_bucket_public_access_block" "open" {
  bucket                  = aws_s3_bucket.open.id
  block_public_acls       = false
  block_public_policy     = false
  ignore_public_acls      = false
  restrict_public_buckets = false
}

resource "aws_s3_bucket_policy" "open" {
  bucket = aws_s3_bucket.open.bucket
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = "*"
      Action    = "s3:GetObject"
      Resource  = "${aws_s3_bucket.open.arn}/*"
    }]
  })
}
