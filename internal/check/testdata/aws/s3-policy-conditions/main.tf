# Bucket policies that allow every principal under a condition. A
# condition bounds who is let in only where it tests who sent the request
# or where from (the calling network, endpoint, account or organization,
# or an address range no wider than one network's) against fixed values;
# one on the Referer header, which any client writes, or on TLS does not.

locals {
  buckets = ["referer", "tls", "vpce", "org", "ip_world", "ip_office", "if_exists", "arn_like_any", "not_vpce", "vpce_unknown", "ip_unknown", "user_variable"]
}

resource "aws_s3_bucket" "b" {
  for_each = toset(local.buckets)
  bucket   = "assets-${each.key}"
}

# Each bucket's public access block is off, as S3's defaults would
# otherwise refuse a public policy.
resource "aws_s3_bucket_public_access_block" "b" {
  for_each                = aws_s3_bucket.b
  bucket                  = each.value.id
  block_public_acls       = false
  block_public_policy     = false
  ignore_public_acls      = false
  restrict_public_buckets = false
}

variable "endpoint_id" {
  type = string
}

variable "office_range" {
  type = string
}

locals {
  conditions = {
    referer      = { StringLike = { "aws:Referer" = "https://shop.example.com/*" } }
    tls          = { Bool = { "aws:SecureTransport" = "true" } }
    vpce         = { StringEquals = { "aws:SourceVpce" = "vpce-0a1b2c3d4e5f60718" } }
    org          = { StringEquals = { "aws:PrincipalOrgID" = "o-a1b2c3d4e5" } }
    ip_world     = { IpAddress = { "aws:SourceIp" = ["0.0.0.0/0"] } }
    ip_office    = { IpAddress = { "aws:SourceIp" = ["198.51.100.0/24"] } }
    if_exists    = { StringEqualsIfExists = { "aws:SourceVpce" = "vpce-0a1b2c3d4e5f60718" } }
    arn_like_any = { ArnLike = { "aws:SourceArn" = "arn:aws:cloudfront::*" } }
    not_vpce     = { StringNotEquals = { "aws:SourceVpce" = "vpce-0a1b2c3d4e5f60718" } }
    vpce_unknown = { StringEquals = { "aws:SourceVpce" = var.endpoint_id } }
    ip_unknown   = { IpAddress = { "aws:SourceIp" = var.office_range } }
    # A policy variable is no fixed value: every caller matches its own.
    user_variable = { StringEquals = { "aws:userid" = "$${aws:userid}" } }
  }
}

resource "aws_s3_bucket_policy" "b" {
  for_each = aws_s3_bucket.b
  bucket   = each.value.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "Read"
      Effect    = "Allow"
      Principal = "*"
      Action    = "s3:GetObject"
      Resource  = "${each.value.arn}/*"
      Condition = local.conditions[each.key]
    }]
  })
}

# The policy argument of the bucket itself, which the AWS provider still
# takes beside aws_s3_bucket_policy.
resource "aws_s3_bucket" "inline" {
  bucket = "assets-inline"
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { AWS = "*" }
      Action    = "s3:GetObject"
      Resource  = "arn:aws:s3:::assets-inline/*"
    }]
  })
}

# A public search domain whose policy admits every address by its
# aws:SourceIp condition, and one that admits an office's range alone.
resource "aws_opensearch_domain" "logs" {
  for_each       = toset(["world", "office"])
  domain_name    = "logs-${each.key}"
  engine_version = "OpenSearch_2.11"
  domain_endpoint_options {
    enforce_https = true
  }
}

resource "aws_opensearch_domain_policy" "logs" {
  for_each    = aws_opensearch_domain.logs
  domain_name = each.value.domain_name
  access_policies = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = "*"
      Action    = "es:*"
      Resource  = "${each.value.arn}/*"
      Condition = { IpAddress = { "aws:SourceIp" = each.key == "world" ? "0.0.0.0/0" : "198.51.100.0/24" } }
    }]
  })
}
