# Private REST APIs and their resource policies: one that allows every
# principal with no condition (its ARN, in the policy, is known only once
# applied), one whose separate policy (a heredoc) bounds it by source
# address alone, one whose policy document allows every principal; and
# their closed peers: an allow bounded by aws:SourceVpce, an allow
# denied to every other endpoint, and a regional API, which this rule
# does not judge. An API whose endpoint type is not known statically is
# read as private.
variable "api_type" {
  type = string
}

resource "aws_api_gateway_rest_api" "type_unknown" {
  name = "type-unknown"
  endpoint_configuration {
    types = [var.api_type]
  }
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = "*"
      Action    = "execute-api:Invoke"
      Resource  = "execute-api:/*"
    }]
  })
}
resource "aws_api_gateway_rest_api" "open" {
  name = "open"
  endpoint_configuration {
    types = ["PRIVATE"]
  }
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = "*"
      Action    = "execute-api:Invoke"
      Resource  = "execute-api:/*"
    }]
  })
}

resource "aws_api_gateway_rest_api" "by_ip" {
  name = "by-ip"
  endpoint_configuration {
    types = ["PRIVATE"]
  }
}

resource "aws_api_gateway_rest_api_policy" "by_ip" {
  rest_api_id = aws_api_gateway_rest_api.by_ip.id
  policy      = <<POLICY
{
  "Version": "2012-10-17",
  "Statement": [{
    "Sid": "FromOffice",
    "Effect": "Allow",
    "Principal": {"AWS": "*"},
    "Action": "execute-api:Invoke",
    "Resource": "${aws_api_gateway_rest_api.by_ip.execution_arn}/*",
    "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
  }]
}
POLICY
}

resource "aws_api_gateway_rest_api" "by_document" {
  name = "by-document"
  endpoint_configuration {
    types = ["PRIVATE"]
  }
}

data "aws_iam_policy_document" "by_document" {
  statement {
    sid     = "Everyone"
    actions = ["execute-api:Invoke"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    resources = ["${aws_api_gateway_rest_api.by_document.execution_arn}/*"]
  }
}

resource "aws_api_gateway_rest_api_policy" "by_document" {
  rest_api_id = aws_api_gateway_rest_api.by_document.id
  policy      = data.aws_iam_policy_document.by_document.json
}

resource "aws_api_gateway_rest_api" "vpce" {
  name = "vpce"
  endpoint_configuration {
    types            = ["PRIVATE"]
    vpc_endpoint_ids = ["vpce-0123456789abcdef0"]
  }
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = "*"
      Action    = "execute-api:Invoke"
      Resource  = "execute-api:/*"
      Condition = { StringEquals = { "aws:SourceVpce" = "vpce-0123456789abcdef0" } }
    }]
  })
}

resource "aws_api_gateway_rest_api" "denied" {
  name = "denied"
  endpoint_configuration {
    types = ["PRIVATE"]
  }
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect    = "Allow"
        Principal = "*"
        Action    = "execute-api:Invoke"
        Resource  = "execute-api:/*"
      },
      {
        Effect    = "Deny"
        Principal = "*"
        Action    = "execute-api:Invoke"
        Resource  = "execute-api:/*"
        Condition = { StringNotEquals = { "aws:SourceVpc" = "vpc-0123456789abcdef0" } }
      },
    ]
  })
}

resource "aws_api_gateway_rest_api" "regional" {
  name = "regional"
  endpoint_configuration {
    types = ["REGIONAL"]
  }
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = "*"
      Action    = "execute-api:Invoke"
      Resource  = "execute-api:/*"
    }]
  })
}
