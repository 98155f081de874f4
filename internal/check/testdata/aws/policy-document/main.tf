# Resource policies written with aws_iam_policy_document, which the
# provider renders from these arguments alone.
resource "aws_s3_bucket" "site" {
  bucket = "shop-site-assets"
}
data "aws_iam_policy_document" "site_read" {
  statement {
    sid       = "PublicRead"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.site.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
  }
}
resource "aws_s3_bucket_policy" "site" {
  bucket = aws_s3_bucket.site.id
  policy = data.aws_iam_policy_document.site_read.json
}

# Everyone, but only through the shop's CDN distribution.
resource "aws_s3_bucket" "media" {
  bucket = "shop-media"
}
data "aws_iam_policy_document" "media_read" {
  statement {
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.media.arn}/*"]
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceArn"
      values   = ["arn:aws:cloudfront::111122223333:distribution/EDFDVBD6EXAMPLE"]
    }
  }
}
resource "aws_s3_bucket_policy" "media" {
  bucket = aws_s3_bucket.media.id
  policy = data.aws_iam_policy_document.media_read.json
}

# A public search domain whose policy admits every AWS principal.
resource "aws_opensearch_domain" "logs" {
  domain_name    = "shop-logs"
  engine_version = "OpenSearch_2.11"
  encrypt_at_rest {
    enabled = true
  }
  domain_endpoint_options {
    enforce_https = true
  }
}
data "aws_iam_policy_document" "logs" {
  statement {
    actions   = ["es:*"]
    resources = ["${aws_opensearch_domain.logs.arn}/*"]
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
  }
}
resource "aws_opensearch_domain_policy" "logs" {
  domain_name     = aws_opensearch_domain.logs.domain_name
  access_policies = data.aws_iam_policy_document.logs.json
}
